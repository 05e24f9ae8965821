"""MultiAgentTradingEnv: 5 agents (by default) on one market clock, as an RLlib `MultiAgentEnv`."""
from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pydantic import BaseModel, ConfigDict, field_validator
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from wealtharena.config import Config, coerce_config
from wealtharena.envs.core import TradingCore, data_key, load_env_data
from wealtharena.errors import ActionError, ConfigError


class EnvOptions(BaseModel):
    """What RLlib's `env_config` dict may hold: the run config (object, dict, path or name), the split."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    config: Config
    split: str = "train"
    random_start: bool | None = None

    @field_validator("config", mode="before")
    @classmethod
    def _coerce(cls, value: Any) -> Config:
        return coerce_config(value)

    @field_validator("split")
    @classmethod
    def _split(cls, value: str) -> str:
        if value not in ("train", "validation", "test"):
            raise ValueError(f"split must be train, validation or test, got {value!r}")
        return value

    @classmethod
    def from_env_config(cls, env_config: dict[str, Any] | None) -> EnvOptions:
        raw = dict(env_config or {})
        raw.setdefault("config", None)
        try:
            return cls.model_validate(raw)
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"env_config of MultiAgentTradingEnv: {exc}") from None


class MultiAgentTradingEnv(MultiAgentEnv):
    """The agents of `config.agents` (ids like `conservative_0`), each with its profile's reward
    weights and risk limits, trade independent portfolios on one shared market view.

    Observations, actions, rewards, episodes and infos are those of `TradingEnv` (see its
    docstring), per agent, plus a shared "desk" block: `desk.<TICKER>`, the other agents' mean
    weight in each asset, so agents can see crowding and diversify. An agent that is terminated
    (ruin, drawdown halt) leaves the episode; the others go on. `"__all__"` ends the episode
    when every agent is done or the data window ran out.

    `env_config`: `{"config": <Config | dict | path | name>, "split": "train", "random_start": None}`.
    """

    def __init__(self, env_config: dict[str, Any] | None = None):
        opts = EnvOptions.from_env_config(env_config)
        super().__init__()
        self.cfg = opts.config
        self.split = opts.split
        self.random_start = self.cfg.env.random_start if opts.random_start is None else opts.random_start
        self.agent_ids = [a.id for a in self.cfg.agents]
        self.core = TradingCore(self.cfg, [a.profile for a in self.cfg.agents], self.split,
                                data=load_env_data(self.cfg, market=shared_market(self.cfg)),
                                desk=self.cfg.env.desk_observation)
        self.possible_agents = list(self.agent_ids)
        self.agents = list(self.agent_ids)
        obs_space = spaces.Box(-self.core.obs_bound, self.core.obs_bound, (self.core.dim,), np.float32)
        act_space = spaces.Box(-1.0, 1.0, (self.core.n + 1,), np.float32)
        self.observation_spaces = {a: obs_space for a in self.agent_ids}
        self.action_spaces = {a: act_space for a in self.agent_ids}
        self.observation_names = self.core.names
        self._actions = np.zeros((self.core.k, self.core.n + 1))
        self._rng = np.random.default_rng()

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        full = bool((options or {}).get("full")) or not self.random_start
        obs = self.core.reset(None if full else self._rng, None if full else self.cfg.env.episode_length)
        self.agents = list(self.agent_ids)
        return ({a: obs[k].copy() for k, a in enumerate(self.agent_ids)},
                {a: self.core.info(k) for k, a in enumerate(self.agent_ids)})

    def step(self, action_dict: dict[str, np.ndarray]) -> tuple[dict, dict, dict, dict, dict]:
        actions = self._actions
        actions.fill(0.0)
        for k, agent in enumerate(self.agent_ids):
            if self.core.done[k]:
                continue
            if agent not in action_dict:
                raise ActionError(f"no action for active agent '{agent}' (active: {self.agents})")
            actions[k] = action_dict[agent] if np.shape(action_dict[agent]) == actions[k].shape else _bad(agent, action_dict[agent], actions[k].shape)
        was_active = ~self.core.done
        obs, rewards, terminated, truncated = self.core.step(actions)
        out_obs, out_rew, out_term, out_trunc, out_info = {}, {}, {}, {}, {}
        for k, agent in enumerate(self.agent_ids):
            if not was_active[k]:
                continue
            out_obs[agent] = obs[k].copy()
            out_rew[agent] = float(rewards[k])
            out_term[agent] = bool(terminated[k])
            out_trunc[agent] = bool(truncated and not terminated[k])
            out_info[agent] = self.core.info(k, final=out_term[agent] or out_trunc[agent])
        all_done = bool(self.core.done.all()) or truncated
        out_term["__all__"] = bool(self.core.done.all())
        out_trunc["__all__"] = bool(truncated)
        self.agents = [a for k, a in enumerate(self.agent_ids) if not self.core.done[k]] if not all_done else []
        return out_obs, out_rew, out_term, out_trunc, out_info


def market_actor_name(cfg: Config) -> str:
    return f"wealtharena-market-{data_key(cfg)[:16]}"


def shared_market(cfg: Config) -> Any:
    """The MarketData the driver put in the Ray object store (training.data_service), or None.
    On a cluster every env runner gets the panel from the object store instead of downloading it."""
    try:
        import ray

        if not ray.is_initialized():
            return None
        holder = ray.get_actor(market_actor_name(cfg))
        value = ray.get(holder.get.remote(), timeout=120)
        return ray.get(value, timeout=120) if isinstance(value, ray.ObjectRef) else value
    except Exception:  # no holder (a plain local run, or a restored algorithm): load as usual
        return None


def _bad(agent: str, action: Any, shape: tuple[int, ...]) -> np.ndarray:
    raise ActionError(f"action of agent '{agent}' must have shape {shape} (one score per asset, then cash); "
                      f"got {np.shape(action)}")
