#!/usr/bin/env python
"""Fill the market-data cache and print what was loaded.

    python download_data.py                                   # the default config's data
    python download_data.py --config production_config.yaml --refresh
    python download_data.py --source yfinance --tickers AAPL MSFT --start 2015-01-01 --end 2024-12-31

Prints one row per ticker (rows, first and last date, days forward-filled, warnings, cache hit
or miss) and where the cache lives.
"""

from __future__ import annotations

import argparse
import logging
import sys

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from wealtharena.cli import run_cli, setup_logging
from wealtharena.config import ServiceSettings, load_config
from wealtharena.data import load_market_data
from wealtharena.data.providers import SampleProvider

log = logging.getLogger("wealtharena.download")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--config", default=None, help="YAML config (path, or a name under config/); default: config/default.yaml"
    )
    p.add_argument("--source", choices=["sample", "yfinance", "csv"], help="override data.provider")
    p.add_argument("--tickers", nargs="+", help="override data.tickers")
    p.add_argument("--start", help="override data.start (YYYY-MM-DD)")
    p.add_argument("--end", help="override data.end (YYYY-MM-DD)")
    p.add_argument("--refresh", action="store_true", help="ignore cached values and download again")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    overrides = {
        k: v
        for k, v in {
            "data.provider": args.source,
            "data.tickers": args.tickers,
            "data.start": args.start,
            "data.end": args.end,
        }.items()
        if v is not None
    }
    cfg = load_config(args.config, overrides)
    expected = (
        len(cfg.data.tickers)
        if cfg.data.tickers
        else (len(SampleProvider.universe) if cfg.data.provider == "sample" else None)
    )
    # a bar on a terminal only, with the log lines printed above it (piped output gets the log lines alone)
    with (
        logging_redirect_tqdm(),
        tqdm(
            total=expected,
            desc=f"loading {cfg.data.provider}",
            unit="ticker",
            file=sys.stderr,
            disable=not sys.stderr.isatty(),
        ) as bar,
    ):
        market = load_market_data(cfg.data, ServiceSettings.from_env(), refresh=args.refresh, progress=bar.update)
    table = market.report.table()
    table["cache"] = market.report.cache
    print(table.to_string(index=False))
    print(
        f"\n{market.n_assets} tickers x {market.n_dates} days, fields: {', '.join(market.fields)}; "
        f"benchmark: {market.benchmark_name or 'none'}; source: {market.source}"
    )
    for name in market.splits:
        a, b = market.split_dates(name)
        lo, hi = market.splits[name]
        print(f"  {name:<10} {a} .. {b}  ({hi - lo} days)")
    quality = market.report.quality
    print(
        f"days forward-filled: {market.report.filled_total}; data-quality events allowed by the config "
        f"(data.quality.warn_only): {len(quality.warnings)}"
    )
    for line in quality.warnings:
        print(f"  {line}")
    print(f"cache: {market.report.cache} ({market.report.cache_location or 'not cached'})")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
