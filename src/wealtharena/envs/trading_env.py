"""TradingEnv: one agent managing a long-only portfolio of N real stocks, as a `gymnasium.Env`."""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np

from wealtharena.config import Config
from wealtharena.envs.core import TradingCore
from wealtharena.envs.data import EnvData
from wealtharena.envs.spec import EnvOptions, EnvShell
from wealtharena.errors import ActionError


class TradingEnv(EnvShell, gym.Env):
    """Manage a long-only portfolio of the configured universe, one trading day per step.

    ## Options
    Those of every shell (`wealtharena.envs.spec`): `config` (a Config, dict, path or name), `overrides`
    (dotted keys, e.g. `{"env.episode_length": 63}`), `split`, `profile`, `random_start`, `data`.

    ## Observation
    `Box(-b, b, (D,), float32)` with b = max(`features.clip`, 10) (the features are clipped at
    `features.clip` z-scores, the portfolio and risk values at +-10; unbounded when `features.normalize`
    is off); `env.observation_names[i]` names column i. For the default
    config (20 stocks, closes only, window 1) D = 700 asset features + 14 market features + 51
    portfolio/risk/time values = 765. Every value is known at the close of day t (see
    `wealtharena.envs.observation` for the table: feature, range, lag).

    ## Action
    `Box(-1, 1, (N + 1,), float32)`: one score per asset and a last one for cash. Any real score
    is accepted: scores are squashed with tanh and mapped to target weights
    w = softmax(action_scale * tanh(a))[:N]; the rest is cash, so weights are >= 0 and sum to at
    most 1. (tanh instead of clipping keeps a Gaussian policy's gradient alive past the bounds.)
    With `env.rebalance_speed` s < 1 the target moves a fraction s of the way from the current
    weights to w each day. The risk manager then cuts them to the
    profile's limits (`info["risk_events"]` says why). Orders fill at the next open (or close).

    ## Reward
    The composite reward of the agent's profile (`wealtharena.envs.rewards`):
    `scale * (2.0 profit - 0.5 risk - 0.1 cost - 0.05 stability + 1.0 sharpe + 0.3 momentum
    + 0.2 diversification)` with the profile's weights; `info["reward_terms"]` holds each signed,
    weighted term and they add up to the reward.

    ## Episode
    Training (`random_start`): a random start inside the split, `episode_length` steps.
    Evaluation (`random_start=False`, or `options={"full": True}`): the whole split.
    With `env.shuffle_assets`, each training episode shows the assets in a random order (the
    observation's asset columns and the action's asset slots permuted together; `info["weights"]`
    stays in universe order); evaluation episodes keep the universe's order.
    `terminated`: ruin (value <= ruin_fraction of the start) or, with `terminate_on_halt`, the
    risk manager's drawdown halt. `truncated`: the episode's window of data ran out.

    ## Info
    `portfolio_value`, `weights` (after risk), `drawdown`, `costs`, `risk_events`, `risk_state`,
    `reward_terms`, `date` (of the close the observation is taken at); see `wealtharena.envs.infos`.

    ## Data
    `data` (an `EnvData`, `wealtharena.envs.data`) is the market data, features and observation block
    the env runs on; without it the env loads its own from the config (through the Redis cache).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        config: Config | dict | str | os.PathLike[str] | None = None,
        split: str = "train",
        profile: str = "balanced",
        render_mode: str | None = None,
        data: EnvData | None = None,
        **options: Any,
    ):
        opts = EnvOptions.parse(options, config=config, split=split, profile=profile)
        self._setup(opts, TradingCore(opts.config, [opts.profile], opts.split, data=data))
        self.profile = opts.profile
        self.render_mode = render_mode
        self.observation_space, self.action_space = self.single_obs_space, self.single_act_space
        self.tickers = self.core.data.market.tickers

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        length = self._episode(options)
        obs = self.core.reset(self.np_random if length else None, length)
        return obs[0].copy(), self.core.info(0)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = np.asarray(action)
        if action.shape != self.action_space.shape:
            raise ActionError(
                f"action must have shape {self.action_space.shape} (one score per asset, then cash); got {action.shape}"
            )
        obs, rewards, terminated, truncated = self.core.step(action[None, :])
        term, trunc = bool(terminated[0]), bool(truncated[0] and not terminated[0])
        return obs[0].copy(), float(rewards[0]), term, trunc, self.core.info(0, final=term or trunc)
