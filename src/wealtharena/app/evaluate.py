"""Evaluate a checkpoint (the agents without Ray, the baselines, the desk) and report it; or one checkpoint
per seed of an experiment, with the mean and spread over seeds."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from wealtharena.app.data import prepare_data
from wealtharena.config import Config, load_config
from wealtharena.ensemble.desk import DeskResult, check_inputs, run_desk
from wealtharena.ensemble.report import desk_sections, desk_seed_table, desk_summary, render_desk_seed_table
from wealtharena.envs.data import EnvData
from wealtharena.errors import CheckpointError
from wealtharena.evaluation.backtest import Backtest, backtest
from wealtharena.evaluation.report import ReportSection, render, write_results
from wealtharena.evaluation.seeds import aggregate
from wealtharena.evaluation.seeds import render as render_seeds
from wealtharena.training.checkpoints import (
    LATEST,
    META_FILE,
    best_or_latest,
    check_compatible,
    config_of_checkpoint,
    read_meta,
    resolve_checkpoint,
    seed_runs,
)
from wealtharena.training.inference import TrainedPolicy
from wealtharena.training.tracking import MlflowTracker, Tracker

log = logging.getLogger("wealtharena.app")


@dataclass
class Evaluation:
    """What `evaluate` produced: the table's tracks, the folder of its report, and the desk behind its rows."""

    backtest: Backtest
    out: Path
    desk: DeskResult | None


def evaluate(
    cfg: Config,
    data: EnvData,
    checkpoint: Path,
    split: str,
    tracker: Tracker | None = None,
    training_plot: Path | None = None,
) -> Evaluation:
    """The checkpoint's policies (without Ray) and every baseline over `split`, the desk over them; print
    the table and write the report next to the checkpoint (`eval-<split>/`). With a tracker, the table's
    figures go to it as `<split>/<row>/<metric>` and the report files as artifacts."""
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
        desk = run_desk(cfg, data, policy, split, bt, out, checkpoint)  # the routers, through the fund's risk gate
        bt.tracks += desk.tracks
        started = time.perf_counter()
        sections = desk_sections(desk, bt, out)
        desk.timings["plots"] = time.perf_counter() - started
        log.info("desk: %s", ", ".join(f"{k} {v:.2f} s" for k, v in desk.timings.items()))
    survivorship = cfg.data.provider == "sample"
    print(render(bt, survivorship=survivorship))
    if desk is not None:
        print(desk_summary(desk))
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
    if tracker is not None:
        table = bt.metrics_table()
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
    return Evaluation(bt, out, desk)


def evaluate_checkpoint(checkpoint: Path, split: str, config: str | None, overrides: dict) -> Backtest:
    """One checkpoint on `split` (its own config unless `config`); recorded as an MLflow run of its own,
    nested under the run the checkpoint was trained in."""
    cfg = load_config(config, overrides) if config else config_of_checkpoint(checkpoint)
    data = prepare_data(cfg)
    record = read_meta(checkpoint).mlflow
    tracker = None
    if record and cfg.tracking.mlflow.enabled:
        tracker = MlflowTracker.child(cfg, record, checkpoint.parent, f"evaluate {checkpoint.name} on {split}")
    curve = checkpoint.parent / "training.png"  # the run's learning curve, shown in the report too
    status = "FAILED"
    try:
        result = evaluate(cfg, data, checkpoint, split, tracker, training_plot=curve if curve.is_file() else None)
        status = "FINISHED"
    finally:
        if tracker is not None:
            tracker.finish(status)
    if tracker is not None and record is not None:
        print(f"logged to MLflow run {tracker.run_id} (under training run {record['run_id']}) at {tracker.uri}")
    print(f"report: {result.out / 'report.html'}")
    return result.backtest


def evaluate_seeds(experiment_dir: Path, seeds: list[int], split: str, config: str | None, overrides: dict) -> None:
    """The best (else latest) checkpoint of each seed's newest run in `experiment_dir`, then the seed table.
    The runs must share one config and algorithm: a mixed set is refused, naming the runs that differ."""
    if not experiment_dir.is_dir():
        raise CheckpointError(f"{experiment_dir} is not an experiment folder (checkpoints/<experiment>)")
    runs = seed_runs(experiment_dir)
    missing = [s for s in seeds if s not in runs]
    if missing:
        raise CheckpointError(f"no run for seed(s) {missing} in {experiment_dir} (run folders end in -s<seed>)")
    chosen = {seed: best_or_latest(runs[seed]) for seed in seeds}
    kinds = {}
    for seed, path in chosen.items():
        meta = read_meta(path)
        cfg = meta.config
        kinds[seed] = (meta.compat.get("algorithm"), {k: v for k, v in cfg.items() if k != "seed"})
    first = next(iter(kinds.values()))
    odd = [s for s, k in kinds.items() if k != first]
    if odd:
        names = ", ".join(f"seed {s}: {chosen[s].parent.name} ({kinds[s][0]})" for s in [next(iter(kinds)), *odd])
        raise CheckpointError(
            f"the newest runs of seeds {seeds} in {experiment_dir} were trained with different configs or "
            f"algorithms ({names}): move the runs you do not mean into another experiment folder "
            "(train.py --experiment NAME), or evaluate them one at a time"
        )
    for seed, path in chosen.items():
        log.info("seed %d: %s", seed, path)
    results = {seed: evaluate_checkpoint(path, split, config, overrides) for seed, path in chosen.items()}
    report_seeds(results, experiment_dir, split)


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


def evaluate_path(checkpoint: str, split: str, config: str | None, overrides: dict) -> Backtest:
    """A checkpoint folder, or a run folder (its best checkpoint, else its latest), on `split`."""
    local = Path(checkpoint)
    is_run = "://" not in checkpoint and (local / LATEST).is_file() and not (local / META_FILE).exists()
    path = best_or_latest(local) if is_run else resolve_checkpoint(checkpoint)
    return evaluate_checkpoint(path, split, config, overrides)
