#!/usr/bin/env python
"""Train, evaluate or tune the WealthArena agents.

    python train.py                                          # config/default.yaml: train, then validate
    python train.py --config production_config.yaml          # the full system
    python train.py --algorithm sac --iterations 50 --seed 1
    python train.py --mode evaluate --checkpoint checkpoints/default/<run>/best [--split test]
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
from pathlib import Path

from wealtharena.cli import run_cli, setup_logging
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
    p.add_argument("--checkpoint", help="checkpoint folder (or run folder) to evaluate or to resume from")
    p.add_argument("--experiment", help="experiment name: checkpoints/<experiment>/ (default: the config's name)")
    p.add_argument("--iterations", type=int, help="training iterations to run (override training.iterations)")
    p.add_argument("--seed", type=int, help="override the config's seed")
    p.add_argument("--split", choices=["train", "validation", "test"], default=None,
                   help="split to evaluate on (default: validation after training, test in evaluate mode)")
    p.add_argument("--local", action="store_true", help="single machine, small Ray footprint (the default "
                                                        "unless --address is given)")
    p.add_argument("--address", help="an existing Ray cluster: auto, HOST:PORT or ray://HOST:10001")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    if args.iterations is not None and args.iterations < 1:
        raise ConfigError("--iterations must be at least 1")

    # --- config
    from wealtharena.training.trainer import config_of_checkpoint, resolve_checkpoint

    overrides = {k: v for k, v in {"training.algorithm": args.algorithm, "seed": args.seed}.items() if v is not None}
    if args.mode == "evaluate":
        if not args.checkpoint:
            raise CheckpointError("--mode evaluate needs --checkpoint PATH (a run folder or one of its checkpoints)")
        checkpoint = resolve_checkpoint(args.checkpoint)
        cfg = load_config(args.config, overrides) if args.config else config_of_checkpoint(checkpoint)
        return evaluate(cfg, checkpoint, args.split or "test")
    cfg = load_config(args.config, overrides)
    experiment = args.experiment or cfg.name

    # --- train (or resume), then evaluate on the validation split
    from wealtharena.training.trainer import ray_session, train

    if args.mode == "tune":
        from wealtharena.training.tune import run_tune

        with ray_session(cfg, args.address, local=not args.address):
            best = run_tune(cfg, experiment)
        log.info("best trial checkpoint: %s", best)
        return 0
    with ray_session(cfg, args.address, local=not args.address):
        result = train(cfg, experiment, iterations=args.iterations, checkpoint=args.checkpoint,
                       progress=not args.no_progress)
    chosen = result.best_checkpoint or result.last_checkpoint
    print(learning_curve(result))
    evaluate(cfg, chosen, args.split or "validation")
    print(f"\ncheckpoints: {result.run_dir}\n  latest: {result.last_checkpoint}\n  best:   {result.best_checkpoint}")
    return 0


def learning_curve(result) -> str:
    """Validation episode reward per policy at each evaluation: learning should be visible here."""
    import pandas as pd

    rows = [{"iteration": v["iteration"], **{p: round(r, 2) for p, r in v["policy_episode_reward"].items()},
             "mean Sharpe": round(v["mean_sharpe"], 2)} for v in result.validation]
    if not rows:
        return "no validation run yet"
    return ("Validation split, deterministic actions, costs included: episode reward per policy\n"
            + pd.DataFrame(rows).set_index("iteration").to_string())


def evaluate(cfg, checkpoint: Path, split: str) -> int:
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
    paths = write_results(bt, out, {"checkpoint": str(checkpoint), "config_fingerprint": cfg.fingerprint()})
    print(f"\nwrote {len(paths)} files to {out} (results.json, equity.png, drawdown.png, allocation_*.png)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
