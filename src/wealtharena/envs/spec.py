"""What every env shell takes and shares: `EnvOptions` (one spec, one convention) and `EnvShell`.

All four shells (`TradingEnv`, `TradingVectorEnv`, `MultiAgentTradingEnv`, `MultiAgentTradingVectorEnv`)
take the same options by the same names, as keyword arguments (Gymnasium: `gymnasium.make("WealthArena-v0",
split="test", overrides={"env.episode_length": 63})`) or as RLlib's `env_config` dict with the same keys:

| option            | default      | meaning                                                                  |
|-------------------|--------------|--------------------------------------------------------------------------|
| `config`          | default.yaml | a `Config`, its dict, a YAML path or a name under config/                 |
| `overrides`       | {}           | dotted config keys applied on top (`{"env.episode_length": 63}`)          |
| `split`           | train        | train, validation or test                                                |
| `profile`         | balanced     | the single-agent envs' profile (the multi-agent envs take `agents`)      |
| `random_start`    | the config's | episodes start on a random day (training) or at the split's first (False) |
| `step_infos`      | True         | False: infos only on an agent's last step (training runners)             |
| `critic_horizons` | None         | training runners: infos carry the value function's forward returns       |

`EnvShell` holds what the shells share: the typed options, the core's spaces and how a reset chooses
between a random training episode and the whole split (`reset(options={"full": True})`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from wealtharena.config import Config, coerce_config
from wealtharena.envs.core import TradingCore
from wealtharena.errors import ConfigError

SPLITS = ("train", "validation", "test")


class EnvOptions(BaseModel):
    """The options of every env shell (see the module docstring); the config comes resolved with its overrides."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    config: Config
    split: str = "train"
    profile: str = "balanced"
    random_start: bool | None = None
    # False: per-step infos only on an agent's last step (with the episode summary). RLlib does not
    # read infos to learn, and building and storing them costs about a fifth of training throughput.
    step_infos: bool = True
    # Training runners only: every info also holds `critic`, the market's realised returns over the
    # next h days (TradingCore.enable_critic_inputs), for the value function's input-driven
    # baseline. Never set for evaluation: it is future data, and only the critic may see it.
    critic_horizons: list[int] | None = None

    @field_validator("split")
    @classmethod
    def _split(cls, value: str) -> str:
        if value not in SPLITS:
            raise ValueError(f"split must be train, validation or test, got {value!r}")
        return value

    @classmethod
    def parse(cls, options: dict[str, Any] | None = None, **kwargs: Any) -> EnvOptions:
        """From RLlib's `env_config` dict and/or keyword arguments (the same keys); `overrides` are applied to
        the config here. A bad option is a `ConfigError` naming it."""
        raw = {**dict(options or {}), **kwargs}
        overrides = raw.pop("overrides", None) or {}
        raw["config"] = coerce_config(raw.get("config"), dict(overrides))
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = [
                f"unknown option '{e['loc'][0]}'"
                if e["type"] == "extra_forbidden"
                else f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            ]
            known = ", ".join(["overrides", *cls.model_fields])
            raise ConfigError(f"env options: {'; '.join(problems)} (the options: {known})") from None

    @property
    def starts_at_random(self) -> bool:
        return self.config.env.random_start if self.random_start is None else self.random_start


class EnvShell:
    """What the four shells share: options, the core, its spaces and the reset's choice of episode."""

    opts: EnvOptions
    cfg: Config
    core: TradingCore

    def _setup(self, opts: EnvOptions, core: TradingCore) -> None:
        self.opts, self.cfg, self.core = opts, opts.config, core
        self.split = opts.split
        self.random_start = opts.starts_at_random
        if opts.critic_horizons:
            core.enable_critic_inputs(opts.critic_horizons)
        self.observation_names = core.names
        self.single_obs_space = spaces.Box(-core.obs_bound, core.obs_bound, (core.dim,), np.float32)
        self.single_act_space = spaces.Box(-1.0, 1.0, (core.n + 1,), np.float32)

    def _episode(self, reset_options: dict | None) -> int | None:
        """The episode length of a reset: the config's for a random training episode, None (the whole split)
        with `options={"full": True}` or without random starts."""
        full = bool((reset_options or {}).get("full")) or not self.random_start
        return None if full else self.cfg.env.episode_length
