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
    python train.py --mode walkforward [--seeds 0 1 2]       # retrain through history, judge out of sample
    python train.py --address auto                           # an existing Ray cluster

The flow reads top to bottom in `main`: arguments -> config -> market data -> features -> env data
-> Ray -> training -> evaluation (agents, baselines, the desk) -> report; the steps live in
`wealtharena.app`. User errors print one line and exit with code 2.
"""

import os
import sys

if __name__ == "__main__" and os.environ.get("PYTHONHASHSEED", "random") == "random":
    # Bit-identical runs for a seed: RLlib's learner visits the policies in the order of a set of
    # policy ids when it draws minibatch shuffles, so the driver's string hashes must be fixed, and a
    # process can only get that at start. Re-run this process with PYTHONHASHSEED=0 before importing
    # anything heavy (a user's own value is kept: runs are reproducible per value).
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])

import argparse
import logging
from datetime import datetime, timezone
from pathlib import Path

from wealtharena.app.data import prepare_data
from wealtharena.app.evaluate import evaluate_path, evaluate_seeds, report_seeds
from wealtharena.app.training import train_and_report
from wealtharena.app.tune import run_tune
from wealtharena.app.walkforward import plan_windows, walk_forward, window_config, window_data
from wealtharena.cli import run_cli, setup_logging
from wealtharena.config import load_config
from wealtharena.data import load_market_data
from wealtharena.errors import CheckpointError, ConfigError
from wealtharena.training.checkpoints import config_of_checkpoint
from wealtharena.training.runtime import ray_session

log = logging.getLogger("wealtharena.train")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--config",
        default=None,
        help="YAML config: a path, or a name under config/ (default: config/default.yaml; with "
        "--checkpoint, the checkpoint's own config)",
    )
    p.add_argument(
        "--mode",
        choices=["train", "evaluate", "tune", "walkforward"],
        default="train",
        help="train (default; resumes when --checkpoint is given), evaluate a checkpoint, tune, or walkforward "
        "(the walkforward config section)",
    )
    p.add_argument("--algorithm", choices=["ppo", "a2c", "sac"], help="override training.algorithm")
    p.add_argument(
        "--checkpoint",
        help="checkpoint folder, or run folder (its best to evaluate, its latest to resume from); with "
        "--mode evaluate --seeds, the experiment folder",
    )
    p.add_argument(
        "--experiment",
        help="experiment name: checkpoints/<experiment>/ and the MLflow experiment (default: the config's name)",
    )
    p.add_argument(
        "--iterations",
        type=int,
        help="training iterations to run (override training.iterations; when resuming, that many more)",
    )
    p.add_argument("--seed", type=int, help="override the config's seed")
    p.add_argument(
        "--seeds", type=int, nargs="+", help="train (or evaluate) one run per seed and report mean ± std and the spread"
    )
    p.add_argument(
        "--split",
        choices=["train", "validation", "test"],
        default=None,
        help="split to evaluate on (default: validation after training, test in evaluate mode)",
    )
    p.add_argument(
        "--address",
        help="an existing Ray cluster: auto, HOST:PORT or ray://HOST:10001 (default: a small local Ray session)",
    )
    p.add_argument(
        "--wandb", action="store_true", help="also log to Weights & Biases (online with WANDB_API_KEY, else offline)"
    )
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
    if args.iterations is not None and args.mode == "tune":  # each trial's budget (ASHA's max_t)
        overrides["training.iterations"] = args.iterations
    if args.iterations is not None and args.mode == "walkforward":
        raise ConfigError(
            "--iterations does not apply to --mode walkforward: set training.iterations (the first window) and "
            "walkforward.warm_iterations (each later window) in the config"
        )
    if args.mode == "evaluate":  # a checkpoint (its own config unless --config), or an experiment's seeds
        if not args.checkpoint:
            raise CheckpointError("--mode evaluate needs --checkpoint PATH (a run folder or one of its checkpoints)")
        split = args.split or "test"
        if args.seeds:
            evaluate_seeds(Path(args.checkpoint), args.seeds, split, args.config, overrides)
        else:
            evaluate_path(args.checkpoint, split, args.config, overrides)
        return 0

    if args.checkpoint and args.config is None and args.mode == "train":  # resume: the run's own config
        cfg = config_of_checkpoint(args.checkpoint, overrides)
    else:
        cfg = load_config(args.config, overrides)  # 1. the typed config
    if args.mode == "walkforward":
        return walkforward_mode(args, cfg, overrides)
    data = prepare_data(cfg)  # 2-4. market data -> features -> env data, once
    experiment = args.experiment or cfg.name
    split = args.split or "validation"
    obs_dim = len(data.observation_names(cfg.env.desk_observation))
    with ray_session(cfg, args.address, obs_dim=obs_dim):  # 5. Ray: local, or a cluster
        if args.mode == "tune":
            best = run_tune(cfg, data, experiment)
            if best is None:
                print("no trial finished an iteration: nothing to evaluate")
                return 1
            print(f"best trial checkpoint: {best}")
            print(f"evaluate it with: python train.py --mode evaluate --checkpoint '{best}'")
            return 0
        options = dict(iterations=args.iterations, progress=not args.no_progress, wandb=args.wandb)
        if not args.seeds:  # 6-8. train (or resume), evaluate, report
            train_and_report(cfg, data, experiment, split, checkpoint=args.checkpoint, **options)
            return 0
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        results = {}
        for seed in args.seeds:
            cfg_s = load_config(args.config, {**overrides, "seed": seed})
            results[seed] = train_and_report(cfg_s, data, experiment, split, run_name=f"{stamp}-s{seed}", **options)
    report_seeds(results, Path(cfg.training.checkpoint_dir) / experiment, split)
    return 0


def walkforward_mode(args: argparse.Namespace, cfg, overrides: dict) -> int:
    """Every window of the walkforward section (for each seed), then the stitched out-of-sample report."""
    if args.checkpoint:
        raise ConfigError(
            "--mode walkforward trains its own windows: drop --checkpoint (a killed run resumes by itself)"
        )
    windows = plan_windows(cfg)  # a setting that leaves no room fails here, before anything runs
    seeds = args.seeds or [cfg.seed]
    cfgs = {seed: load_config(args.config, {**overrides, "seed": seed}) for seed in seeds}
    market = load_market_data(cfg.data)  # the whole range once; each window takes its own splits of it
    first = window_data(window_config(cfg, windows[0]), market)
    log.info("walk-forward: %d windows, %s .. %s, seeds %s", len(windows), windows[0].name, windows[-1].name, seeds)
    experiment = Path(cfg.training.checkpoint_dir) / (args.experiment or cfg.name)
    with ray_session(cfg, args.address, obs_dim=len(first.observation_names(cfg.env.desk_observation))):
        report = walk_forward(cfgs, market, experiment, progress=not args.no_progress)
    print(f"\nreport: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
