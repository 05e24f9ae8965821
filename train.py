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

The flow reads top to bottom in `main`: arguments -> config -> market data -> features -> env data
-> Ray -> training -> evaluation (agents, baselines, the desk) -> report. User errors print one
line and exit with code 2.
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

import argparse  # noqa: E402  (after the re-exec above, which must come first)
import logging  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

from wealtharena.cli import run_cli, setup_logging  # noqa: E402
from wealtharena.config import Config, load_config  # noqa: E402
from wealtharena.data import load_market_data  # noqa: E402
from wealtharena.data.features import build_features  # noqa: E402
from wealtharena.ensemble.desk import DeskResult, check_inputs, run_desk  # noqa: E402
from wealtharena.ensemble.report import desk_sections, desk_seed_table, render_desk_seed_table  # noqa: E402
from wealtharena.envs.data import EnvData, build_env_data  # noqa: E402
from wealtharena.errors import CheckpointError, ConfigError  # noqa: E402
from wealtharena.evaluation.backtest import Backtest, backtest  # noqa: E402
from wealtharena.evaluation.report import (  # noqa: E402
    ReportSection,
    learning_curve,
    plot_training_history,
    render,
    write_results,
)
from wealtharena.evaluation.seeds import aggregate  # noqa: E402
from wealtharena.evaluation.seeds import render as render_seeds  # noqa: E402
from wealtharena.training.checkpoints import (  # noqa: E402
    best_or_latest,
    check_compatible,
    config_of_checkpoint,
    read_meta,
    resolve_checkpoint,
    seed_runs,
)
from wealtharena.training.inference import TrainedPolicy  # noqa: E402
from wealtharena.training.runtime import ray_session  # noqa: E402
from wealtharena.training.tracking import MlflowTracker, Tracker, make_trackers, ui_link  # noqa: E402
from wealtharena.training.trainer import train  # noqa: E402
from wealtharena.training.tune import run_tune  # noqa: E402

log = logging.getLogger("wealtharena.train")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--config",
        default=None,
        help="YAML config: a path, or a name under config/ (default: config/default.yaml; with "
        "--mode evaluate, the checkpoint's own config)",
    )
    p.add_argument(
        "--mode",
        choices=["train", "evaluate", "tune"],
        default="train",
        help="train (default; resumes when --checkpoint is given), evaluate a checkpoint, or tune",
    )
    p.add_argument("--algorithm", choices=["ppo", "a2c", "sac"], help="override training.algorithm")
    p.add_argument(
        "--checkpoint",
        help="checkpoint folder (or run folder) to evaluate or to resume from; with "
        "--mode evaluate --seeds, the experiment folder",
    )
    p.add_argument(
        "--experiment",
        help="experiment name: checkpoints/<experiment>/ and the MLflow experiment (default: the config's name)",
    )
    p.add_argument("--iterations", type=int, help="training iterations to run (override training.iterations)")
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
    if args.mode == "evaluate":
        return evaluate_mode(args, overrides)

    cfg = load_config(args.config, overrides)  # 1. the typed config
    data = prepare_data(cfg)  # 2-4. market data -> features -> env data, once
    experiment = args.experiment or cfg.name
    split = args.split or "validation"
    obs_dim = len(data.observation_names(cfg.env.desk_observation))
    with ray_session(cfg, args.address, obs_dim=obs_dim):  # 5. Ray: local, or a cluster
        if args.mode == "tune":
            best = run_tune(cfg, data, experiment)
            print(
                f"best trial checkpoint: {best}\n"
                f"evaluate it with: python train.py --mode evaluate --checkpoint '{best}'"
            )
            return 0
        if not args.seeds:
            train_and_report(cfg, data, experiment, args, split)  # 6-8. train, evaluate, report
            return 0
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        results = {}
        for seed in args.seeds:
            cfg_s = load_config(args.config, {**overrides, "seed": seed})
            results[seed] = train_and_report(cfg_s, data, experiment, args, split, run_name=f"{stamp}-s{seed}")
    report_seeds(results, Path(cfg.training.checkpoint_dir) / experiment, split)
    return 0


def prepare_data(cfg: Config) -> EnvData:
    """Market data (through the Redis cache), causal features, then what every env shares."""
    market = load_market_data(cfg.data)  # providers -> quality rules -> cache -> aligned panel
    a, b = market.dates[0], market.dates[-1]
    log.info(
        "data: %d tickers x %d days (%s .. %s) from %s; splits %s; %s",
        market.n_assets,
        market.n_dates,
        a,
        b,
        market.source,
        ", ".join(f"{s} {' .. '.join(map(str, market.split_dates(s)))}" for s in market.splits),
        market.report.quality.summary(),
    )
    features = build_features(market, cfg.features)  # TA-Lib indicators, z-scored on the train split
    return build_env_data(cfg, market, features)  # market risk, momentum, the observation's market block


def train_and_report(
    cfg: Config, data: EnvData, experiment: str, args: argparse.Namespace, split: str, run_name: str | None = None
) -> Backtest:
    """One training run (MLflow, W&B if asked), its learning curve, and its evaluation on `split`."""
    tracker = make_trackers(cfg, experiment, wandb=args.wandb)
    status = "FAILED"
    try:
        result = train(
            cfg,
            data,
            experiment,
            iterations=args.iterations,
            checkpoint=args.checkpoint,
            run_name=run_name,
            progress=not args.no_progress,
            tracker=tracker,
        )
        print(learning_curve(result.validation))
        curve = plot_training_history(result.history, result.run_dir / "training.png")
        bt, out = evaluate(cfg, data, result.chosen, split, tracker, training_plot=curve)
        if curve is not None:
            tracker.log_artifacts([curve], "training")
        tracker.log_policies(result.chosen, cfg.policy_ids)
        status = "FINISHED"
    finally:
        tracker.finish(status)
    print(
        f"\ncheckpoints: {result.run_dir}\n  latest: {result.last_checkpoint}\n  best:   {result.best_checkpoint}"
        f"\nreport:      {out / 'report.html'}"
    )
    ml = tracker.mlflow
    if ml is not None and ml.run_id:
        server = ml.uri if ml.uri.startswith("http") else "http://127.0.0.1:5000"
        start = "" if ml.uri.startswith("http") else f"mlflow ui --backend-store-uri {ml.uri}, then "
        print(
            f"MLflow:      experiment '{ml.experiment}', run {ml.run_id}\n"
            f"             open with: {start}{ui_link(server, ml.exp_id, ml.run_id, 'model-metrics')}"
        )
    return bt


def evaluate(
    cfg: Config,
    data: EnvData,
    checkpoint: Path,
    split: str,
    tracker: Tracker | None = None,
    training_plot: Path | None = None,
) -> tuple[Backtest, Path]:
    """The checkpoint's policies (without Ray) and every baseline over `split`, the desk over them;
    print the table and write the report next to the checkpoint."""
    check_compatible(cfg, read_meta(checkpoint), checkpoint)
    if cfg.ensemble.enabled:
        check_inputs(cfg, data)  # a bad desk setting fails here, before anything is written
    policy = TrainedPolicy.from_checkpoint(checkpoint, cfg)
    bt = backtest(cfg, data, policy, split)  # agents (one row per distinct behaviour) and baselines
    out = checkpoint / f"eval-{split}"
    desk: DeskResult | None = None
    plotted = list(bt.tracks)  # the common equity and drawdown plots; the desk's rows get their own
    sections: list[ReportSection] = []
    if cfg.ensemble.enabled:
        started = time.perf_counter()
        desk = run_desk(cfg, data, policy, split, bt, out, checkpoint)  # the routers, through the fund's risk gate
        bt.tracks += desk.tracks
        routed = time.perf_counter()
        sections = desk_sections(desk, bt, out)
        plotted_in = time.perf_counter() - routed
        log.info("desk: routers and baselines %.2f s, their plots %.2f s", routed - started, plotted_in)
    survivorship = cfg.data.provider == "sample"
    print(render(bt, survivorship=survivorship))
    if desk is not None:
        print(desk.summary())
    paths = write_results(
        bt,
        out,
        {
            "checkpoint": str(checkpoint),
            "config_fingerprint": cfg.fingerprint(),
            **({"desk": desk.to_dict()} if desk is not None else {}),
        },
        tearsheets=cfg.evaluation.tearsheets,
        survivorship=survivorship,
        training_plot=training_plot,
        sections=sections,
        plotted=plotted,
    )
    print(
        f"\nwrote {len(paths)} files to {out} (report.html, results.json, plots"
        f"{', tearsheets' if cfg.evaluation.tearsheets else ''}{', routing.jsonl' if desk else ''})"
    )
    table = bt.metrics_table()
    if tracker is not None:
        members = {tr.label: tr.members or (tr.name,) for tr in bt.tracks}
        tracker.log_metrics(
            {
                f"{split}/{name}/{k}": v
                for label, row in table.iterrows()
                for name in members[label]
                for k, v in row.items()
                if k != "kind"
            },
            step=0,
        )
        tracker.log_artifacts(list(paths.values()), f"eval-{split}")
    return bt, out


def evaluate_mode(args: argparse.Namespace, overrides: dict) -> int:
    """--mode evaluate: a checkpoint (its own config unless --config), or with --seeds an experiment folder."""
    if not args.checkpoint:
        raise CheckpointError("--mode evaluate needs --checkpoint PATH (a run folder or one of its checkpoints)")
    split = args.split or "test"
    if args.seeds:
        experiment_dir = Path(args.checkpoint)
        if not experiment_dir.is_dir():
            raise CheckpointError(f"{experiment_dir} is not an experiment folder (checkpoints/<experiment>)")
        runs = seed_runs(experiment_dir)
        missing = [s for s in args.seeds if s not in runs]
        if missing:
            raise CheckpointError(f"no run for seed(s) {missing} in {experiment_dir} (run folders end in -s<seed>)")
        results = {
            seed: evaluate_checkpoint(best_or_latest(runs[seed]), split, args.config, overrides) for seed in args.seeds
        }
        report_seeds(results, experiment_dir, split)
        return 0
    evaluate_checkpoint(resolve_checkpoint(args.checkpoint), split, args.config, overrides)
    return 0


def evaluate_checkpoint(checkpoint: Path, split: str, config: str | None, overrides: dict) -> Backtest:
    """One checkpoint on `split`; results also go to the MLflow run it was trained in."""
    cfg = load_config(config, overrides) if config else config_of_checkpoint(checkpoint)
    data = prepare_data(cfg)
    record = read_meta(checkpoint).get("mlflow")
    tracker = MlflowTracker.attach(cfg, record, checkpoint.parent) if record and cfg.tracking.mlflow.enabled else None
    curve = checkpoint.parent / "training.png"  # the run's learning curve, shown in the report too
    bt, out = evaluate(cfg, data, checkpoint, split, tracker=tracker, training_plot=curve if curve.is_file() else None)
    if tracker is not None:
        print(f"logged to MLflow run {tracker.run_id} at {tracker.uri}")
    print(f"report: {out / 'report.html'}")
    return bt


def report_seeds(results: dict[int, Backtest], folder: Path, split: str) -> None:
    """Mean ± std and range over seeds per strategy, and the desk's routers against the agent each seed
    would have picked on validation (paired, with a bootstrap interval)."""
    agg = aggregate({seed: bt.metrics_table() for seed, bt in results.items()})
    print("\n" + render_seeds(agg, f"{split} split, costs included"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"seeds-{split}.csv"
    agg.to_csv(path)
    print(f"wrote {path}")
    desk_table = desk_seed_table(results)
    if desk_table is not None:
        print("\n" + render_desk_seed_table(desk_table, split))
        desk_table.to_csv(folder / f"seeds-desk-{split}.csv")
        print(f"wrote {folder / f'seeds-desk-{split}.csv'}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
