"""The data every run starts from: market data (through the cache), causal features, the env data."""

from __future__ import annotations

import logging

from wealtharena.config import Config
from wealtharena.data import load_market_data
from wealtharena.data.features import build_features
from wealtharena.envs.data import EnvData, build_env_data

log = logging.getLogger("wealtharena.app")


def prepare_data(cfg: Config) -> EnvData:
    """Market data (providers -> quality rules -> cache -> aligned panel), TA-Lib features z-scored on the
    train split, then what every env shares (market risk, momentum, the observation's market block)."""
    market = load_market_data(cfg.data)
    log.info(
        "data: %d tickers x %d days (%s .. %s) from %s; splits %s",
        market.n_assets,
        market.n_dates,
        market.dates[0],
        market.dates[-1],
        market.source,
        ", ".join(f"{s} {' .. '.join(map(str, market.split_dates(s)))}" for s in market.splits),
    )
    return build_env_data(cfg, market, build_features(market, cfg.features))
