"""Market data reaches the cluster once: the driver loads it (through the Redis cache) and a small
named actor hands the same object-store copy to every env runner, on every node."""
from __future__ import annotations

import logging
from typing import Any

import ray

from wealtharena.config import Config
from wealtharena.envs.core import load_env_data
from wealtharena.envs.multi_agent_env import market_actor_name

log = logging.getLogger(__name__)


@ray.remote(num_cpus=0)
class MarketDataHolder:
    def __init__(self, market_ref: list[Any]):
        self.ref = market_ref[0]                     # keep the object alive while the driver runs

    def get(self) -> Any:
        return self.ref


def publish_market_data(cfg: Config) -> Any:
    """Put the panel in the object store and register its holder under a name derived from the
    data config. Returns the actor handle: keep it for as long as env runners may start."""
    name = market_actor_name(cfg)
    try:
        return ray.get_actor(name)
    except ValueError:
        pass
    market = load_env_data(cfg).market
    ref = ray.put(market)
    holder = MarketDataHolder.options(name=name, lifetime=None).remote([ref])
    log.info("market data (%d tickers x %d days) published to the object store as '%s'",
             market.n_assets, market.n_dates, name)
    return holder
