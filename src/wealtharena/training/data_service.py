"""How every env runner gets the driver's `EnvData`: the whole protocol, in one place.

The driver builds the run's `EnvData` once (`train.py`) and `publish`es it: one object-store copy,
held by a small named actor whose name comes from the data config. The env creators RLlib calls in
every runner process (`make_env` for RLlib's own runner, `VectorEnvRunner.make_env`) ask
`env_data_for(env_config)` for it: from the object store when the driver published it (on any node
of a cluster: nothing is downloaded twice), else built locally from the config (a restored
algorithm without a publishing driver). The env itself only takes an `EnvData`.
"""

from __future__ import annotations

import logging
from typing import Any

import ray

from wealtharena.envs.data import EnvData, data_key, load_env_data
from wealtharena.envs.multi_agent_env import MultiAgentTradingEnv
from wealtharena.envs.spec import EnvOptions

log = logging.getLogger(__name__)


def actor_name(key: str) -> str:
    return f"wealtharena-env-data-{key[:16]}"


@ray.remote(num_cpus=0)
class EnvDataHolder:
    """Keeps the published object alive and hands out its reference."""

    def __init__(self, data_ref: list[Any]):
        self.ref = data_ref[0]  # inside a list: the reference itself, not its value, is kept

    def get(self) -> Any:
        return self.ref


def publish(data: EnvData) -> Any:
    """Put `data` in the object store under a name derived from its data config. Returns the holder's
    handle: keep it for as long as env runners may start (the holder dies with its last handle)."""
    name = actor_name(data.key)
    try:
        return ray.get_actor(name)
    except ValueError:
        pass
    ref = ray.put(data.with_origin("object_store"))
    holder = EnvDataHolder.options(name=name, lifetime=None).remote([ref])  # type: ignore[attr-defined]
    log.info(
        "env data (%d tickers x %d days) published to the object store as '%s'",
        data.market.n_assets,
        data.market.n_dates,
        name,
    )
    return holder


def env_data_for(env_config: dict[str, Any] | None) -> EnvData:
    """The published `EnvData` for the config in `env_config`, else one built from the config here."""
    cfg = EnvOptions.parse(env_config).config
    if ray.is_initialized():
        try:
            holder = ray.get_actor(actor_name(data_key(cfg)))
        except ValueError:
            holder = None
        if holder is not None:
            value = ray.get(holder.get.remote(), timeout=120)
            data = ray.get(value, timeout=120) if isinstance(value, ray.ObjectRef) else value
            if isinstance(data, EnvData):
                return data
    log.info("no published env data for this config: loading it in this process")
    return load_env_data(cfg)


def make_env(env_config: dict[str, Any]) -> MultiAgentTradingEnv:
    """RLlib's env creator (registered under `training.algorithms.ENV_NAME`)."""
    return MultiAgentTradingEnv(dict(env_config), data=env_data_for(env_config))
