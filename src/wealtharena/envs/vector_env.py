"""Many episodes stepped as one array: `TradingVectorEnv` (Gymnasium) and
`MultiAgentTradingVectorEnv` (RLlib's `VectorMultiAgentEnv`, in envs/multi_agent_env.py).

Both run B independent episodes through one `TradingCore` (K = B x agents portfolios): each
episode has its own start day, clock, book, risk state and reward statistics, exactly as B
separate envs would (tests/envs/test_vector_env.py checks this against single envs step by
step), but a step is one pass of numpy over [K, N] arrays instead of B Python calls. That is
what a Python step costs least as: a single env pays ~100 small numpy calls per step whatever
its size (see benchmarks/bench_env.py for both figures).

Autoreset is Gymnasium's default, `NEXT_STEP`: the step after an episode ends ignores that
episode's action and returns its first observation (reward 0, not done).

    envs = gymnasium.make_vec("WealthArena-v0", num_envs=64, vectorization_mode="vector_entry_point")
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from wealtharena.config import Config
from wealtharena.envs.core import TradingCore
from wealtharena.envs.data import EnvData
from wealtharena.envs.rewards import TERMS
from wealtharena.envs.spec import EnvOptions, EnvShell
from wealtharena.errors import ActionError
from wealtharena.portfolio.risk import STATES

_STATE_NAMES = np.array(STATES, dtype=object)


class TradingVectorEnv(EnvShell, gym.vector.VectorEnv):
    """`num_envs` copies of `TradingEnv` (same options, observation, action, reward, episodes; see its
    docstring) stepped together.

    `infos` follow Gymnasium's vector convention (an array per key, with a `_key` mask):
    `portfolio_value` [B], `weights` [B, N] (after risk), `drawdown` [B], `costs` [B],
    `risk_events` [B, len(REASONS)] bool (column j is `wealtharena.portfolio.risk.REASONS[j]`),
    `risk_state` [B] (str), `reward_terms` {term: [B]}, `date` [B] (datetime64), and, on the
    step that ends an episode, `episode_reward_terms` {term: [B]} for the envs that ended.
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 8,
        config: Config | dict | str | os.PathLike[str] | None = None,
        split: str = "train",
        profile: str = "balanced",
        data: EnvData | None = None,
        **options: Any,
    ):
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        opts = EnvOptions.parse(options, config=config, split=split, profile=profile)
        self.num_envs = int(num_envs)
        self._setup(opts, TradingCore(opts.config, [opts.profile], opts.split, data=data, n_envs=self.num_envs))
        self.single_observation_space, self.single_action_space = self.single_obs_space, self.single_act_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._pending = np.zeros(self.num_envs, dtype=bool)
        self._length: int | None = None
        self._all = np.ones(self.num_envs, dtype=bool)

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        if isinstance(seed, (list, tuple)):
            seed = seed[0]
        super().reset(seed=seed)
        self._length = self._episode(options)
        obs = self.core.reset(self._rng(), self._length)
        self._pending.fill(False)
        return obs.copy(), self._infos(None)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        actions = np.asarray(actions)
        if actions.shape != self.action_space.shape:
            raise ActionError(
                f"actions must have shape {self.action_space.shape} (envs, one score per asset, "
                f"then cash); got {actions.shape}"
            )
        restart = self._pending if self._pending.any() else None
        obs, rewards, terminated, truncated = self.core.step(actions, restart, self._rng(), self._length)
        truncated = truncated & ~terminated
        ended = terminated | truncated
        self._pending = ended
        return obs.copy(), rewards.copy(), terminated.copy(), truncated, self._infos(ended if ended.any() else None)

    def _rng(self) -> np.random.Generator | None:
        return self.np_random if self._length else None

    def _infos(self, ended: np.ndarray | None) -> dict:
        rec = self.core.record
        all_ = self._all
        infos = {
            "portfolio_value": rec.value.copy(),
            "_portfolio_value": all_,
            "weights": rec.weights.copy(),
            "_weights": all_,
            "drawdown": rec.drawdown.copy(),
            "_drawdown": all_,
            "costs": rec.costs.copy(),
            "_costs": all_,
            "risk_events": rec.risk_flags.copy(),
            "_risk_events": all_,
            "risk_state": _STATE_NAMES[rec.risk_state],
            "_risk_state": all_,
            "reward_terms": {t: rec.reward_terms[:, j].copy() for j, t in enumerate(TERMS)},
            "_reward_terms": all_,
            "date": self.core.data.market.dates[rec.clock],
            "_date": all_,
        }
        if ended is not None:
            infos["episode_reward_terms"] = {
                t: np.where(ended, rec.episode_terms[:, j], 0.0) for j, t in enumerate(TERMS)
            }
            infos["_episode_reward_terms"] = ended.copy()
        return infos
