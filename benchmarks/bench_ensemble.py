#!/usr/bin/env python
"""The desk: what it costs in an evaluation, and what it earns on the test split over several seeds.

    python benchmarks/bench_ensemble.py checkpoints/default [--seeds 0 1 2] [--split test] [--repeats 2]

1. Time. The evaluation `train.py --mode evaluate` runs (`app.evaluate.evaluate`, in this process, data
   loaded once) on a copy of the first seed's best checkpoint, tearsheets off, without the desk
   (`ensemble.enabled: false`), with it reusing the agents' validation tracks that the desk stores beside
   a checkpoint (training's own evaluation leaves them with `best`), and with it running the agents on
   validation first, alternating, `--repeats` times each: its wall time, the median share the desk adds,
   and the desk's own timings (`DeskResult.timings`: the routers and baselines through the fund, and
   their plots). Target: all routers together add under 20%.
2. Figures. For every seed's best checkpoint: the agents, the baselines and every desk row on `--split`
   (deterministic, costs included), then per row the Sharpe ratio's mean and standard error over seeds,
   annual return, worst max drawdown, turnover and costs; then each desk row's Sharpe paired with each
   seed's agent chosen on validation, held by the fund and trading alone under its own limits, with 95%
   bootstrap intervals (seeds resampled, and 21-day blocks within each); last, which routers beat both
   equal capital across the agents and that agent (either way) on mean Sharpe with every seed's max
   drawdown within the fund's limit. `seeds` is the number of seeds that have the row (agents that act
   identically are one row in the seeds where they do).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from wealtharena.app.evaluate import evaluate
from wealtharena.cli import setup_logging
from wealtharena.config import coerce_config
from wealtharena.ensemble.desk import CHOSEN, CHOSEN_ALONE, EQUAL_CAPITAL, run_desk
from wealtharena.ensemble.report import desk_seed_table, render_desk_seed_table
from wealtharena.envs.data import load_env_data
from wealtharena.evaluation.backtest import Backtest, backtest
from wealtharena.training.checkpoints import best_or_latest, config_of_checkpoint, seed_runs
from wealtharena.training.inference import TrainedPolicy


def time_the_desk(checkpoint: Path, repeats: int) -> pd.DataFrame:
    """`evaluate` wall time on a copy of `checkpoint` (the user's folder is left alone): without the desk,
    with it reusing the agents' validation tracks stored beside the checkpoint (what a checkpoint that
    training evaluated has), and with it running the agents on validation first (any other checkpoint)."""
    base_cfg = coerce_config(
        config_of_checkpoint(checkpoint), {"evaluation.tearsheets": False, "tracking.mlflow.enabled": False}
    )
    configs = {on: coerce_config(base_cfg, {"ensemble.enabled": on}) for on in (True, False)}
    data = load_env_data(base_cfg)
    cases = {"without the desk": False, "with the desk, validation tracks stored": True, "with the desk, run": True}
    times: dict[str, list[float]] = {case: [] for case in cases}
    parts: dict[str, list[dict[str, float]]] = {case: [] for case in cases}
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "checkpoint"
        shutil.copytree(checkpoint, copy, ignore=shutil.ignore_patterns("eval-*", "desk_*"))

        def once(on: bool) -> tuple[float, dict[str, float]]:
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # the tables it prints
                result = evaluate(configs[on], data, copy, "test")
            return time.perf_counter() - t0, (result.desk.timings if result.desk is not None else {})

        once(True)  # stores the validation tracks (and warms the caches)
        for _ in range(repeats):
            for case, on in cases.items():
                if case == "with the desk, run":
                    for stored in copy.glob("desk_agents-*.npz"):
                        stored.unlink()
                wall, timings = once(on)
                times[case].append(wall)
                if timings:
                    parts[case].append(timings)
    base = statistics.median(times["without the desk"])
    rows = []
    for case, runs in times.items():
        median = statistics.median(runs)
        row = {
            "evaluation wall time": case,
            "seconds (median)": round(median, 1),
            "desk adds": "" if case == "without the desk" else f"{median / base - 1:+.1%}",
        }
        for part in ("routers and baselines", "plots"):
            values = [p[part] for p in parts[case] if part in p]
            row[f"{part} (s)"] = f"{statistics.median(values):.2f}" if values else ""
        rows.append(row | {"runs": ", ".join(f"{t:.1f}" for t in runs)})
    return pd.DataFrame(rows)


def desk_tables(experiment: Path, seeds: list[int], split: str) -> tuple[dict[int, pd.DataFrame], dict[int, Backtest]]:
    runs = seed_runs(experiment)
    tables, backtests = {}, {}
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
        table["key"] = [t.key for t in bt.tracks]
        table["chosen"] = desk.chosen_agent
        tables[seed] = table
        backtests[seed] = bt
        logging.getLogger("bench").info("seed %d: %d rows", seed, len(table))
    return tables, backtests


def summary(tables: dict[int, pd.DataFrame], max_drawdown: float) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    stacked = pd.concat(tables, names=["seed", "strategy"])
    g = stacked.groupby(level="strategy", sort=False)
    out = pd.DataFrame(
        {
            "kind": g["kind"].first(),
            "Sharpe mean": g["sharpe"].mean().round(2),
            "Sharpe SE": (g["sharpe"].std(ddof=1) / np.sqrt(g.size())).round(2),
            "annual return": g["annual_return"].mean().map(lambda v: f"{v:+.1%}"),
            "max DD worst": g["max_drawdown"].min().map(lambda v: f"{v:+.1%}"),
            "turnover": g["turnover"].mean().map(lambda v: "" if pd.isna(v) else f"{v:.1%}"),
            "costs": g["costs_paid"].mean().map(lambda v: f"{v:,.0f}"),
            "seeds": g.size(),
        }
    )
    key = g["key"].first()

    def mean_sharpe(k) -> float:
        return float(out.loc[key[key == k].index[0], "Sharpe mean"])

    equal = mean_sharpe(EQUAL_CAPITAL)
    winners = {}
    for what, ref in (("", CHOSEN), (", own limits", CHOSEN_ALONE)):
        chosen = mean_sharpe(ref)
        winners[what] = [
            name
            for name, row in out.iterrows()
            if row["kind"] == "router"
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
    setup_logging()  # the project's log format, without RLlib 2.60's RLModuleConfig notice
    seeds = args.seeds or list(seed_runs(args.experiment))
    if not args.no_timing:
        print(time_the_desk(best_or_latest(seed_runs(args.experiment)[seeds[0]]), args.repeats).to_string(index=False))
    tables, backtests = desk_tables(args.experiment, seeds, args.split)
    cfg = config_of_checkpoint(best_or_latest(seed_runs(args.experiment)[seeds[0]]))
    limit = cfg.profile_risk(cfg.ensemble.fund_profile).max_drawdown
    table, winners = summary(tables, limit)
    chosen = {s: t["chosen"].iloc[0] for s, t in tables.items()}
    print(
        f"\n{args.split} split, {len(seeds)} seeds {seeds} (costs included; agent chosen on validation per seed: "
        f"{chosen}):"
    )
    print(table.to_string())
    paired = desk_seed_table(backtests)
    if paired is not None:
        print("\n" + render_desk_seed_table(paired, args.split))
    print()
    for what, held in (("", "held by the fund"), (", own limits", "trading alone under its own limits")):
        print(
            f"routers beating both equal capital and the validation-chosen agent {held} on mean Sharpe, with "
            f"every seed's max drawdown within {limit:.0%}: {', '.join(winners[what]) or 'none'}"
        )


if __name__ == "__main__":
    main()
