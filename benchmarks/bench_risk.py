#!/usr/bin/env python
"""Risk manager + book step for K portfolios: steps/s on N=20 (the sample set) and N=500 (synthetic).

    python benchmarks/bench_risk.py [--steps 3000]

One step = risk gate + rebalance with costs + mark-to-market, for all K portfolios together.
Random Dirichlet target weights (every asset held, so the correlation gate is busy).
"K=64, own days" is what a TradingVectorEnv of 64 episodes runs (every portfolio on its own day);
"K=32x5" what a MultiAgentTradingVectorEnv of 32 five-agent episodes runs. Compare "us per
portfolio-step" with bench_env.py's us/step of the matching env to see the gate's share.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import pandas as pd

from wealtharena.config import Config, config_from_dict
from wealtharena.data import load_market_data
from wealtharena.data.market_data import MarketData
from wealtharena.portfolio import PortfolioManager


def synthetic(n_assets: int, n_days: int = 3000, seed: int = 0) -> MarketData:
    rng = np.random.default_rng(seed)
    factor = rng.normal(0, 0.01, (n_days, 1))
    r = 0.6 * factor + rng.normal(0.0003, 0.015, (n_days, n_assets))
    close = 50 * np.exp(np.cumsum(r, axis=0))
    dates = pd.bdate_range("2000-01-03", periods=n_days).to_numpy().astype("datetime64[D]")
    a, b = int(n_days * 0.6), int(n_days * 0.8)
    return MarketData(
        dates=dates,
        tickers=tuple(f"S{i}" for i in range(n_assets)),
        fields=("close",),
        values=close[:, :, None],
        benchmark=None,
        benchmark_name=None,
        splits={"train": (0, a), "validation": (a, b), "test": (b, n_days)},
        source="synthetic",
        provider="synthetic",
    )


def measure(market: MarketData, cfg: Config, k: int, steps: int, start: int, group: int = 0) -> tuple[float, float]:
    """steps/s of one PortfolioManager over K portfolios; `group` > 0: K / group episodes of
    `group` portfolios, each episode on its own day (as the vector envs run them)."""
    agents = [cfg.profile_risk(a.profile) for a in cfg.agents]
    risks = [agents[i % len(agents)] for i in range(k)]
    t0 = time.perf_counter()
    pm = PortfolioManager(market, risks, cfg.env.execution, cfg.env.initial_cash, clock_group=group or 1)
    build = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    targets = rng.dirichlet(np.ones(market.n_assets + 1), size=(steps, k))[:, :, : market.n_assets]
    last = market.n_dates - 2
    starts = start if not group else np.repeat(rng.integers(start, last - steps // 4, k // group), group)
    pm.reset(starts)
    t0 = time.perf_counter()
    for i in range(steps):
        if np.max(pm.t) >= last:
            pm.reset(starts)
        pm.step(targets[i], check=False)
    return steps / (time.perf_counter() - t0), build


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=3000)
    args = p.parse_args()
    logging.disable(logging.WARNING)
    cfg = config_from_dict({})
    sample = load_market_data(cfg.data)
    rows = []
    for label, market, start in (
        ("sample, N=20", sample, sample.splits["validation"][0]),
        ("synthetic, N=500", synthetic(500), 300),
    ):
        small = market.n_assets < 100
        for name, k, group in (("1", 1, 0), ("5, one day", 5, 0), ("64, own days", 64, 1), ("32x5, own days", 160, 5)):
            if not small and k > 5:
                continue
            sps, build = measure(
                market, cfg, k, (args.steps if small else args.steps // 5) // max(1, k // 16), max(start, 300), group
            )
            rows.append(
                {
                    "data": label,
                    "K": name,
                    "steps/s": round(sps),
                    "portfolio-steps/s": round(sps * k),
                    "us/step": round(1e6 / sps, 1),
                    "us per portfolio-step": round(1e6 / sps / k, 1),
                    "build s": round(build, 2),
                }
            )
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
