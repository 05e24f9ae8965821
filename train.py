#!/usr/bin/env python
"""Train, evaluate or tune the WealthArena agents.

    python train.py                                          # config/default.yaml: train, then validate
    python train.py --config production_config.yaml          # the full system
    python train.py --algorithm sac --iterations 50 --seed 1
    python train.py --seeds 0 1 2                            # one run per seed, then mean ± std
    python train.py --mode evaluate --checkpoint checkpoints/default/<run>/best [--split test]
    python train.py --mode evaluate --checkpoint checkpoints/default --seeds 0 1 2
    python train.py --checkpoint checkpoints/default/<run>   # resume training from its latest checkpoint
    python train.py --mode tune                              # Ray Tune + ASHA over training.tune.search_space
    python train.py --address auto                           # an existing Ray cluster

The flow reads top to bottom: arguments -> config -> seed and name the run -> Ray -> train ->
evaluate -> report. User errors print one line and exit with code 2.
"""
from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime, timezone
from pathlib import Path

from wealtharena.cli import fixed_hash_seed, run_cli, setup_logging
from wealtharena.config import load_config
from wealtharena.errors import CheckpointError, ConfigError

log = logging.getLogger("wealtharena.train")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None,
                   help="YAML config: a path, or a name under config/ (default: config/default.yaml; with "
                        "--mode evaluate, the checkpoint's own config)")
    p.add_argument("--mode", choices=["train", "evaluate", "tune"], default="train",
                   help="train (default; resumes when --checkpoint is given), evaluate a checkpoint, or tune")
    p.add_argument("--algorithm", choices=["ppo", "a2c", "sac"], help="override training.algorithm")
    p.add_argument("--checkpoint", help="checkpoint folder (or run folder) to evaluate or to resume from; with "
                                        "--mode evaluate --seeds, the experiment folder")
    p.add_argument("--experiment", help="experiment name: checkpoints/<experiment>/ and the MLflow experiment "
                                        "(default: the config's name)")
    p.add_argument("--iterations", type=int, help="training iterations to run (override training.iterations)")
    p.add_argument("--seed", type=int, help="override the config's seed")
    p.add_argument("--seeds", type=int, nargs="+", help="train (or evaluate) one run per seed and report "
                                                        "mean ± std and the spread")
    p.add_argument("--split", choices=["train", "validation", "test"], default=None,
                   help="split to evaluate on (default: validation after training, test in evaluate mode)")
    p.add_argument("--local", action="store_true", help="single machine, small Ray footprint (the default "
                                                        "unless --address is given)")
    p.add_argument("--address", help="an existing Ray cluster: auto, HOST:PORT or ray://HOST:10001")
    p.add_argument("--wandb", action="store_true", help="also log to Weights & Biases (online with "
                                                        "WANDB_API_KEY, else offline)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    if args.iterations is not None and args.iterations < 1:
        raise ConfigError("--iterations must be at least 1")
    if args.seeds and args.seed is not None:
        raise ConfigError("give --seed or --seeds, not both")
    if args.seeds and args.checkpoint and args.mode == "train":
        raise ConfigError("--seeds trains new runs; resume them one at a time with --checkpoint")
    overrides = {k: v for k, v in {"training.algorithm": args.algorithm, "seed": args.seed}.items() if v is not None}

    if args.mode == "evaluate":
        if not args.checkpoint:
            raise CheckpointError("--mode evaluate needs --checkpoint PATH (a run folder or one of its checkpoints)")
        split = args.split or "test"
        if args.seeds:
            return evaluate_seeds(Path(args.checkpoint), args.seeds, split, args.config, overrides)
        evaluate_checkpoint(args.checkpoint, split, args.config, overrides)
        return 0

    cfg = load_config(args.config, overrides)
    experiment = args.experiment or cfg.name
    from wealtharena.training.trainer import ray_session

    if args.mode == "tune":
        from wealtharena.training.tune import run_tune

        with ray_session(cfg, args.address, local=not args.address):
            best = run_tune(cfg, experiment)
        print(f"best trial checkpoint: {best}\nevaluate it with: python train.py --mode evaluate --checkpoint '{best}'")
        return 0

    split = args.split or "validation"
    with ray_session(cfg, args.address, local=not args.address):
        if not args.seeds:
            train_and_report(cfg, experiment, args, split)
            return 0
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        tables = {}
        for seed in args.seeds:
            cfg_s = load_config(args.config, {**overrides, "seed": seed})
            tables[seed] = train_and_report(cfg_s, experiment, args, split, run_name=f"{stamp}-s{seed}")
    report_seeds(tables, Path(cfg.training.checkpoint_dir) / experiment, split)
    return 0


def train_and_report(cfg, experiment: str, args: argparse.Namespace, split: str, run_name: str | None = None):
    """One training run (with MLflow, W&B if asked), its learning curve and its evaluation table."""
    from wealtharena.training.tracking import make_trackers
    from wealtharena.training.trainer import train

    tracker = make_trackers(cfg, experiment, wandb=args.wandb)
    status = "FAILED"
    try:
        result = train(cfg, experiment, iterations=args.iterations, checkpoint=args.checkpoint,
                       run_name=run_name, progress=not args.no_progress, tracker=tracker)
        chosen = result.best_checkpoint or result.last_checkpoint
        print(learning_curve(result))
        curve = plot_training(result)
        table, out = evaluate(cfg, chosen, split, tracker=tracker)
        tracker.log_artifacts([p for p in [curve] if p is not None], "training")
        tracker.log_policies(chosen, cfg.policy_ids)
        status = "FINISHED"
    finally:
        tracker.finish(status)
    print(f"\ncheckpoints: {result.run_dir}\n  latest: {result.last_checkpoint}\n  best:   {result.best_checkpoint}"
          f"\nreport:      {out / 'report.html'}")
    if tracker.mlflow is not None and tracker.mlflow.run_id:
        print(f"MLflow:      experiment '{tracker.mlflow.experiment}', run {tracker.mlflow.run_id}\n"
              f"             open with: mlflow ui --backend-store-uri {tracker.mlflow.uri}")
    return table


def learning_curve(result) -> str:
    """Validation episode reward per policy at each evaluation: learning should be visible here."""
    import pandas as pd

    rows = [{"iteration": v["iteration"], **{p: round(r, 2) for p, r in v["policy_episode_reward"].items()},
             "mean Sharpe": round(v["mean_sharpe"], 2)} for v in result.validation]
    if not rows:
        return "no validation run yet"
    table = pd.DataFrame(rows).set_index("iteration")
    last = result.validation[-1]
    se = ", ".join(f"{p} {v:.2f}" for p, v in last.get("policy_episode_reward_se", {}).items())
    text = (f"Validation split, deterministic actions, costs included (iteration 0 = untrained): mean reward of "
            f"the {last.get('episodes', '?')} {last.get('episode_length', '?')}-day episodes starting every "
            f"{last.get('stride', '?')} days, per policy; mean Sharpe of the whole-split backtest\n"
            + table.to_string() + (f"\nstandard error of the last row's means: {se}" if se else ""))
    if len(table) > 1:
        change = (table.iloc[-1] - table.iloc[0]).round(2)
        se = change_se(result.validation[0], last)
        text += "\nchange since iteration %d: %s" % (table.index[0], ", ".join(
            f"{c} {v:+.2f}" + (f" (SE {se[c]:.2f})" if c in se else "") for c, v in change.items()))
        if se:
            text += ("\n(SE of a change: over the same episodes, paired; a change beyond about twice its SE "
                     "is unlikely to be window noise, though another seed may still differ)")
    return text


def change_se(first: dict, last: dict) -> dict[str, float]:
    """Standard error of each policy's change in mean episode reward between two validations on
    the same windows (paired: window by window), where both recorded their per-window rewards."""
    from wealtharena.evaluation.backtest import paired_change

    a, b = first.get("policy_window_rewards") or {}, last.get("policy_window_rewards") or {}
    return {p: paired_change(a[p], b[p])[1] for p in a.keys() & b.keys() if len(a[p]) == len(b[p]) > 1}


def plot_training(result):
    """Reward terms and returns per policy over training, saved next to the checkpoints."""
    from wealtharena.evaluation.report import plot_training_history

    return plot_training_history(result.history, result.run_dir / "training.png")


def evaluate(cfg, checkpoint: Path, split: str, tracker=None):
    """Load the policies without Ray, run them over `split`, print and write the report."""
    from wealtharena.evaluation.backtest import backtest
    from wealtharena.evaluation.report import render, write_results
    from wealtharena.training.inference import PolicyActor
    from wealtharena.training.trainer import check_compatible, read_meta

    check_compatible(cfg, read_meta(checkpoint), checkpoint)
    actor = PolicyActor.from_checkpoint(checkpoint, cfg)
    bt = backtest(cfg, actor, split)
    print(render(bt, survivorship=cfg.data.provider == "sample"))
    out = checkpoint / f"eval-{split}"
    paths = write_results(bt, out, {"checkpoint": str(checkpoint), "config_fingerprint": cfg.fingerprint()},
                          tearsheets=cfg.evaluation.tearsheets, survivorship=cfg.data.provider == "sample")
    print(f"\nwrote {len(paths)} files to {out} (report.html, results.json, tearsheets, plots)")
    table = bt.metrics_table()
    if tracker is not None:
        tracker.log_metrics({f"{split}/{name}/{k}": v for name, row in table.iterrows()
                             for k, v in row.items() if k != "kind"}, step=0)
        tracker.log_artifacts(list(paths.values()), f"eval-{split}")
    return table, out


def evaluate_checkpoint(path, split: str, config: str | None, overrides: dict):
    """--mode evaluate: the checkpoint's own config unless --config; results also go to its MLflow run."""
    from wealtharena.training.tracking import MlflowTracker
    from wealtharena.training.trainer import config_of_checkpoint, read_meta, resolve_checkpoint

    checkpoint = resolve_checkpoint(path)
    cfg = load_config(config, overrides) if config else config_of_checkpoint(checkpoint)
    record = read_meta(checkpoint).get("mlflow")
    tracker = MlflowTracker.attach(cfg, record, checkpoint.parent) if record and cfg.tracking.mlflow.enabled else None
    table, out = evaluate(cfg, checkpoint, split, tracker=tracker)
    if tracker is not None:
        print(f"logged to MLflow run {tracker.run_id} at {tracker.uri}")
    print(f"report: {out / 'report.html'}")
    return table


def evaluate_seeds(experiment_dir: Path, seeds: list[int], split: str, config: str | None, overrides: dict) -> int:
    """Evaluate the newest run of each seed in an experiment folder (runs are named <stamp>-s<seed>)."""
    if not experiment_dir.is_dir():
        raise CheckpointError(f"{experiment_dir} is not an experiment folder (checkpoints/<experiment>)")
    from wealtharena.training.learning import seed_runs

    runs = seed_runs(experiment_dir)
    tables = {}
    for seed in seeds:
        if seed not in runs:
            raise CheckpointError(f"no run for seed {seed} in {experiment_dir} (run folders end in -s<seed>)")
        run = runs[seed]
        tables[seed] = evaluate_checkpoint(run / "best" if (run / "best").is_dir() else run, split, config, overrides)
    report_seeds(tables, experiment_dir, split)
    return 0


def report_seeds(tables: dict, folder: Path, split: str) -> None:
    from wealtharena.evaluation.seeds import aggregate, render

    agg = aggregate(tables)
    print("\n" + render(agg, f"{split} split, costs included"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"seeds-{split}.csv"
    agg.to_csv(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    fixed_hash_seed()                 # bit-identical runs for a seed: see wealtharena.cli.fixed_hash_seed
    sys.exit(run_cli(main))
