"""`EnvData`: everything an env needs that depends on the date alone, built once and handed down.

    market   = load_market_data(cfg.data)              # providers -> validation -> cache -> panel
    features = build_features(market, cfg.features)    # causal TA-Lib features, z-scored on train
    data     = build_env_data(cfg, market, features)    # + market risk, momentum, observation block

`train.py` builds it once and passes it to every env, validation run, backtest and the desk; on a
Ray cluster the driver puts it in the object store once (`training.data_service`). An env built
without it (`gymnasium.make("WealthArena-v0")`) loads its own with `load_env_data`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace

import numpy as np

from wealtharena.config import SHARED_RISK_KEYS, Config, ServiceSettings
from wealtharena.data import load_market_data
from wealtharena.data.features import FeatureSet, build_features
from wealtharena.data.market_data import MarketData
from wealtharena.envs.observation import agent_names
from wealtharena.envs.rewards import momentum_signal
from wealtharena.portfolio import MarketRisk


@dataclass(frozen=True)
class EnvData:
    """Date-only arrays shared by every env of a process (read-only: never written after the build)."""

    market: MarketData
    features: FeatureSet
    market_risk: MarketRisk
    momentum: np.ndarray  # [T, N] centred 21-day momentum per day
    block: np.ndarray  # [T, Dm] float32: the market part of every observation
    block_names: tuple[str, ...]
    first_row: int  # first row whose features (and window) are all valid
    key: str  # data_key of the config it was built for
    origin: str = "loaded"  # "loaded" (provider / cache) or "object_store" (shared by the driver)

    def with_origin(self, origin: str) -> EnvData:
        return replace(self, origin=origin)

    def observation_names(self, desk: bool) -> tuple[str, ...]:
        """Every column of one agent's observation, in order (see envs.observation)."""
        tickers = self.market.tickers
        return self.block_names + agent_names(tickers) + (tuple(f"desk.{t}" for t in tickers) if desk else ())

    def usable_rows(self, split: str) -> tuple[int, int]:
        """(first decision row, last markable row) of a split, after the indicators' warm-up."""
        a, b = self.market.splits[split]
        lo, hi = max(a, self.first_row), b - 1
        if hi - lo < 2:
            raise ValueError(f"split '{split}' has no rows after the indicators' warm-up")
        return lo, hi

    def fingerprint(self) -> dict[str, str]:
        """Provider, tickers, dates and checksum of the market data: the data version a run records."""
        market = self.market
        return {
            "provider": market.provider,
            "source": market.source,
            "tickers": ",".join(market.tickers),
            "start": str(market.dates[0]),
            "end": str(market.dates[-1]),
            "fields": ",".join(market.fields),
            "sha256": market.fingerprint(),
        }


def data_key(cfg: Config) -> str:
    """What `EnvData` depends on in a config: the data (not where it is cached), features, the shared risk
    windows and the observation window."""
    shared = {k: getattr(cfg.risk, k) for k in SHARED_RISK_KEYS}
    data = cfg.data.model_dump(mode="json", exclude={"cache"})
    data["quality"]["warn_only"] = list(cfg.data.quality.allowed(cfg.data.provider))
    blob = json.dumps([data, cfg.features.model_dump(mode="json"), shared, cfg.env.window], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def build_env_data(cfg: Config, market: MarketData, features: FeatureSet | None = None) -> EnvData:
    """Market risk, momentum and the observation's market block for `market` (and its features)."""
    features = features if features is not None else build_features(market, cfg.features)
    market_risk = MarketRisk.build(market, cfg.risk, features.regime)
    w = cfg.env.window
    n, f = market.n_assets, features.n_asset_features
    t_len = market.n_dates
    block = np.zeros((t_len, w * n * f + features.n_market_features), dtype=np.float32)
    names: list[str] = []
    for lag in range(w):
        block[lag:, lag * n * f : (lag + 1) * n * f] = features.asset[: t_len - lag].reshape(t_len - lag, n * f)
        names += [f"{feat}.{ticker}.t-{lag}" for ticker in market.tickers for feat in features.asset_names]
    block[:, w * n * f :] = features.market
    names += [f"market.{m}" for m in features.market_names]
    return EnvData(
        market=market,
        features=features,
        market_risk=market_risk,
        momentum=momentum_signal(market.close),
        block=block,
        block_names=tuple(names),
        first_row=features.first_valid + w - 1,
        key=data_key(cfg),
    )


def load_env_data(cfg: Config, services: ServiceSettings | None = None) -> EnvData:
    """Load the configured market data (through the cache) and build its `EnvData`."""
    return build_env_data(cfg, load_market_data(cfg.data, services))


def check_data(cfg: Config, data: EnvData) -> EnvData:
    """`data` if it was built for `cfg`'s data, features and risk windows, else a clear error."""
    if data.key != data_key(cfg):
        raise ValueError(
            "the EnvData handed to this env was built for another data / features / risk-window config; "
            "build it with build_env_data(cfg, ...) for this config"
        )
    return data
