#!/usr/bin/env python
"""The desk: what it costs in an evaluation, and what it earns on the test split over several seeds.

    python benchmarks/bench_ensemble.py checkpoints/default [--seeds 0 1 2] [--split test] [--repeats 2]

1. Time. `train.py --mode evaluate` on the first seed's best checkpoint, tearsheets off, with the desk
   and without it (`ensemble.enabled: false`), alternating, `--repeats` times each: the wall time of the
   whole command, and the median share the desk adds. Target: all routers together add under 20%.
2. Figures. For every seed's best checkpoint: the agents, the baselines and every desk row on `--split`
   (deterministic, costs included), then per row the Sharpe ratio's mean and standard error over seeds,
   annual return, worst max drawdown, turnover and costs; and which routers beat both the agent chosen on
   validation and equal capital across the agents on mean Sharpe with every seed's max drawdown within
   the fund's limit.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from wealtharena.config import PROJECT_ROOT, coerce_config
from wealtharena.ensemble.desk import run_desk
from wealtharena.envs.data import load_env_data
from wealtharena.evaluation.backtest import backtest
from wealtharena.training.checkpoints import best_or_latest, config_of_checkpoint, seed_runs
from wealtharena.training.inference import TrainedPolicy


def wall_time(checkpoint: Path, config: Path, workdir: Path) -> float:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "train.py"),
            "--mode",
            "evaluate",
            "--checkpoint",
            str(checkpoint),
            "--config",
            str(config),
            "--split",
            "test",
        ],
        cwd=workdir,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - t0


def time_the_desk(checkpoint: Path, repeats: int) -> pd.DataFrame:
    cfg = config_of_checkpoint(checkpoint).model_dump(mode="json")
    cfg["evaluation"] = {"tearsheets": False}
    cfg["tracking"] = {"mlflow": {"enabled": False}}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for on in (True, False):
            cfg["ensemble"] = {**cfg.get("ensemble", {}), "enabled": on}
            paths[on] = Path(tmp) / f"desk-{on}.yaml"
            paths[on].write_text(yaml.safe_dump(cfg))
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(repeats):
            for on in (False, True):
                times[on].append(wall_time(checkpoint, paths[on], Path(tmp)))
    without, with_desk = statistics.median(times[False]), statistics.median(times[True])
    rows.append(
        {
            "evaluate-mode wall time": "without the desk",
            "seconds (median)": round(without, 1),
            "runs": ", ".join(f"{t:.1f}" for t in times[False]),
        }
    )
    rows.append(
        {
            "evaluate-mode wall time": "with every router and baseline",
            "seconds (median)": round(with_desk, 1),
            "runs": ", ".join(f"{t:.1f}" for t in times[True]),
        }
    )
    rows.append(
        {
            "evaluate-mode wall time": "share the desk adds",
            "seconds (median)": f"{with_desk / without - 1:+.1%}",
            "runs": "target: under +20%",
        }
    )
    return pd.DataFrame(rows)


def desk_tables(experiment: Path, seeds: list[int], split: str) -> dict[int, pd.DataFrame]:
    runs = seed_runs(experiment)
    tables = {}
    for seed in seeds:
        checkpoint = best_or_latest(runs[seed])
        cfg = coerce_config(config_of_checkpoint(checkpoint), {"evaluation.tearsheets": False})
        data = load_env_data(cfg)
        policy = TrainedPolicy.from_checkpoint(checkpoint, cfg)
        bt = backtest(cfg, data, policy, split)
        with tempfile.TemporaryDirectory() as tmp:
            desk = run_desk(cfg, data, policy, split, bt, Path(tmp) / f"eval-{split}")
        bt.tracks += desk.tracks
        table = bt.metrics_table()
        table["chosen"] = desk.chosen_agent
        tables[seed] = table
        logging.getLogger("bench").info("seed %d: %d rows", seed, len(table))
    return tables


def summary(tables: dict[int, pd.DataFrame], max_drawdown: float) -> tuple[pd.DataFrame, list[str]]:
    stacked = pd.concat(tables, names=["seed", "strategy"])
    g = stacked.groupby(level="strategy", sort=False)
    n = len(tables)
    out = pd.DataFrame(
        {
            "kind": g["kind"].first(),
            "Sharpe mean": g["sharpe"].mean().round(2),
            "Sharpe SE": (g["sharpe"].std(ddof=1) / np.sqrt(n)).round(2) if n > 1 else np.nan,
            "annual return": g["annual_return"].mean().map(lambda v: f"{v:+.1%}"),
            "max DD worst": g["max_drawdown"].min().map(lambda v: f"{v:+.1%}"),
            "turnover": g["turnover"].mean().map(lambda v: "" if pd.isna(v) else f"{v:.1%}"),
            "costs": g["costs_paid"].mean().map(lambda v: f"{v:,.0f}"),
        }
    )
    chosen = out.loc["desk baseline: agent chosen on validation", "Sharpe mean"]
    equal = out.loc["desk baseline: equal capital (agents)", "Sharpe mean"]
    winners = [
        name
        for name, row in out.iterrows()
        if row["kind"] == "desk"
        and row["Sharpe mean"] > max(chosen, equal)
        and g["max_drawdown"].min()[name] >= -max_drawdown
    ]
    return out, winners


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", type=Path, help="an experiment folder with one run per seed (train.py --seeds)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default: every seed in the folder")
    p.add_argument("--split", default="test", choices=["validation", "test"])
    p.add_argument("--repeats", type=int, default=2, help="evaluate-mode runs with and without the desk")
    p.add_argument("--no-timing", action="store_true", help="only the figures")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S", force=True)
    seeds = args.seeds or list(seed_runs(args.experiment))
    if not args.no_timing:
        print(time_the_desk(best_or_latest(seed_runs(args.experiment)[seeds[0]]), args.repeats).to_string(index=False))
    tables = desk_tables(args.experiment, seeds, args.split)
    cfg = config_of_checkpoint(best_or_latest(seed_runs(args.experiment)[seeds[0]]))
    limit = cfg.profile_risk(cfg.ensemble.fund_profile).max_drawdown
    table, winners = summary(tables, limit)
    chosen = {s: t["chosen"].iloc[0] for s, t in tables.items()}
    print(
        f"\n{args.split} split, {len(seeds)} seeds {seeds} (costs included; agent chosen on validation per seed: "
        f"{chosen}):"
    )
    print(table.to_string())
    print(
        f"\nrouters beating both the validation-chosen agent and equal capital on mean Sharpe, with every seed's "
        f"max drawdown within {limit:.0%}: {', '.join(winners) if winners else 'none'}"
    )


if __name__ == "__main__":
    main()
