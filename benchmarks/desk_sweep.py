#!/usr/bin/env python
"""How the online routers' settings do on the validation split: the sweep their defaults were chosen by.

    python benchmarks/desk_sweep.py checkpoints/default [--seeds 0 1 2] [--split validation]

For every seed's best checkpoint the experts' sleeves are built once on the split, then every setting
below runs as its own fund through the fund profile's gate (all of them stepped together), and the
table gives each setting's Sharpe ratio (mean and standard error over seeds) and worst max drawdown.
Fixed Share over its learning rate (eta) and share rate (alpha), AdaHedge, and the expert meeting over
its agreement threshold. Run it on validation only: the test split is for the final look.
"""

from __future__ import annotations

import argparse
import logging
from itertools import product

import numpy as np
import pandas as pd

from wealtharena.config import HedgeConfig, coerce_config
from wealtharena.ensemble.experts import build_experts
from wealtharena.ensemble.fund import run_funds
from wealtharena.ensemble.routers.base import Router
from wealtharena.ensemble.routers.baselines import EqualCapital
from wealtharena.ensemble.routers.hedge import FixedShare
from wealtharena.ensemble.routers.meeting import ExpertMeeting
from wealtharena.ensemble.signals import build_signals
from wealtharena.envs.data import load_env_data
from wealtharena.evaluation.backtest import backtest
from wealtharena.portfolio import metrics
from wealtharena.training.checkpoints import best_or_latest, config_of_checkpoint, seed_runs
from wealtharena.training.inference import TrainedPolicy

RATES: list[float | str] = [0.5, 2.0, 10.0, 50.0, "adahedge"]
SHARES = [0.001, 0.01, 0.05]
THRESHOLDS = [0.5, 0.75, 0.9, 1.0]


def settings(cfg, experts, tickers) -> list[tuple[str, Router]]:
    names = experts.names
    out: list[tuple[str, Router]] = []
    for rate, share in product(RATES, SHARES):
        router = FixedShare(HedgeConfig(learning_rate=rate, share=share), names)
        out.append((f"hedge eta={rate} alpha={share}", router))
    for threshold in THRESHOLDS:
        meeting = cfg.ensemble.meeting.model_copy(update={"agreement_threshold": threshold})
        out.append((f"meeting threshold={threshold}", ExpertMeeting(meeting, names, tickers)))
    agents = experts.agents()
    counts = [len(experts.members[e]) for e in agents]
    out.append(
        ("equal capital (agents)", EqualCapital(agents, counts, experts.n, names, cfg.ensemble.meeting.round_days))
    )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment")
    p.add_argument("--seeds", type=int, nargs="+", default=None)
    p.add_argument("--split", default="validation", choices=["train", "validation"])
    p.add_argument("--experts", nargs="+", default=None, help="override ensemble.experts (e.g. agents cash)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, force=True)
    runs = seed_runs(args.experiment)
    rows: dict[str, list[tuple[float, float]]] = {}
    for seed in args.seeds or list(runs):
        checkpoint = best_or_latest(runs[seed])
        overrides = {"evaluation.tearsheets": False, **({"ensemble.experts": args.experts} if args.experts else {})}
        cfg = coerce_config(config_of_checkpoint(checkpoint), overrides)
        data = load_env_data(cfg)
        bt = backtest(cfg, data, TrainedPolicy.from_checkpoint(checkpoint, cfg), args.split)
        experts = build_experts(cfg, data, args.split, bt.agents())
        named = settings(cfg, experts, data.market.tickers)
        funds = run_funds(
            cfg,
            data,
            experts,
            build_signals(data.market, cfg.ensemble.volatility),
            [r for _, r in named],
            cfg.ensemble.fund_profile,
        )
        for (name, _), fund in zip(named, funds):
            rows.setdefault(name, []).append((metrics.sharpe(fund.returns), metrics.max_drawdown(fund.returns)))
        print(f"seed {seed} done", flush=True)
    table = pd.DataFrame(
        {
            name: {
                "Sharpe mean": np.mean([s for s, _ in v]),
                "Sharpe SE": np.std([s for s, _ in v], ddof=1) / np.sqrt(len(v)) if len(v) > 1 else np.nan,
                "max DD worst": min(d for _, d in v),
                "seeds": len(v),
            }
            for name, v in rows.items()
        }
    ).T
    print(f"\n{args.split} split, experts {args.experts or 'as configured'}, fund profile balanced, costs included:")
    print(table.round(3).to_string())


if __name__ == "__main__":
    main()
