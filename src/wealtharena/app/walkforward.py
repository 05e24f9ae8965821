"""`train.py --mode walkforward`: retrain window after window and trade each test period once, out of sample.

    python train.py --mode walkforward [--seeds 0 1 2]

For each window (`plan_windows`, from the `walkforward` config section): the agents train on the
window's training years (warm-started from the previous window's chosen policies, or from scratch), the
validation period before the test period picks the checkpoint and fits the desk's gate, and then every
strategy trades the test period once: each profile's policy, every desk router and baseline, equal weight
under each profile's limits and without limits, the classic portfolios fit on the years before, the index
bought and held. Each window leaves its test period's tracks in `<experiment>/walkforward-s<seed>/
<window>/` under a key of everything they depend on (config, data, window, the policies it started
from); a window whose key matches is never recomputed, so a killed run started again with the same
command continues at the next window. The stitched tracks, the tests and the report are
`evaluation.walkforward`.

Routers and books restart in each test period (from cash, with their priors): each window's experts are
new policies, retrained on more history, and the gate is refit on the window's validation period, so
the state of the last period's routers is not a state over the same experts. Every strategy restarts
alike, so they compare like with like; the restart costs each a rebuild of its book once a period.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import ray
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from wealtharena.app.training import validator
from wealtharena.config import Config, coerce_config
from wealtharena.data.market_data import MarketData, split_rows
from wealtharena.ensemble.desk import run_desk
from wealtharena.ensemble.records import load_tracks, save_tracks
from wealtharena.envs.data import EnvData, build_env_data
from wealtharena.errors import ConfigError
from wealtharena.evaluation.backtest import Backtest, Track, TrackKey, backtest, run_books
from wealtharena.evaluation.validation import ValidationResult
from wealtharena.evaluation.walkforward import WindowTracks, write_walkforward
from wealtharena.training.inference import TrainedPolicy
from wealtharena.training.run import Run, RunHooks, TrackerHook
from wealtharena.training.tracking import MlflowTracker, make_trackers

log = logging.getLogger("wealtharena.app")

RESULT_FILE = "result.json"
TRACKS_FILE = "tracks.npz"


@dataclass(frozen=True)
class Window:
    """One window: its name (the test period's start, `1996` or `1996-04`) and its three date ranges."""

    name: str
    train: tuple[date, date]
    validation: tuple[date, date]
    test: tuple[date, date]

    def splits(self) -> dict[str, dict[str, str]]:
        return {
            s: {"start": str(r[0]), "end": str(r[1])}
            for s, r in (("train", self.train), ("validation", self.validation), ("test", self.test))
        }


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    return date(d.year + y, m + 1, 1)


def plan_windows(cfg: Config) -> list[Window]:
    """Every window of `cfg.walkforward` inside `cfg.data.splits` (train.start .. test.end); a setting that
    leaves no room is a `ConfigError` naming its keys and what to do, before anything is trained."""
    wf, splits = cfg.walkforward, cfg.data.splits
    first_day, last_day = splits.train.start, splits.test.end
    last_year = wf.last_test_year or last_day.year
    if wf.first_test_year > last_year:
        raise ConfigError(
            f"walkforward.first_test_year {wf.first_test_year} is after the last test year {last_year} "
            "(walkforward.last_test_year, else the year of data.splits.test.end): lower it"
        )
    start = date(wf.first_test_year, 1, 1)
    val_start = _add_months(start, -wf.validation_months)
    years = (val_start - first_day).days / 365.25
    if years < wf.min_train_years:
        earliest = first_day.year + wf.min_train_years + (wf.validation_months + 11) // 12
        raise ConfigError(
            f"walkforward.first_test_year {wf.first_test_year} leaves {years:.1f} years of training from "
            f"data.splits.train.start {first_day} before a {wf.validation_months}-month validation period, fewer "
            f"than walkforward.min_train_years {wf.min_train_years}: start testing in {earliest} or later, or "
            "lower walkforward.min_train_years"
        )
    if date(last_year, 1, 1) > last_day:
        raise ConfigError(
            f"walkforward.last_test_year {last_year} starts after the data's last day {last_day} "
            "(data.splits.test.end): lower it, or extend data.splits.test.end"
        )
    windows = []
    while start.year <= last_year and start <= last_day:
        end = min(_add_months(start, wf.step_months) - timedelta(days=1), last_day)
        val_start = _add_months(start, -wf.validation_months)
        train_start = (
            first_day if wf.train_years is None else max(first_day, date(val_start.year - wf.train_years, 1, 1))
        )
        name = str(start.year) if wf.step_months == 12 else f"{start.year}-{start.month:02d}"
        windows.append(
            Window(
                name, (train_start, val_start - timedelta(days=1)), (val_start, start - timedelta(days=1)), (start, end)
            )
        )
        start = _add_months(start, wf.step_months)
    return windows


def window_config(cfg: Config, window: Window) -> Config:
    """`cfg` with the window's splits (the data range stays the whole of `cfg`'s, so every window reads
    the same prices)."""
    return coerce_config(
        cfg,
        {
            "data.splits": window.splits(),
            "data.start": str(cfg.data.load_start),
            "data.end": str(cfg.data.load_end),
        },
    )


def window_data(cfg_w: Config, market: MarketData) -> EnvData:
    """The window's env data from the whole market: its splits, and features z-scored on its own training rows."""
    return build_env_data(cfg_w, dataclasses.replace(market, splits=split_rows(market.dates, cfg_w.data.splits)))


def window_key(cfg_w: Config, data: EnvData, window: Window, start: str, iterations: int) -> str:
    """What a window's outputs depend on: the config (with its splits), the market data, the window, the
    policies it started from (a fingerprint of their weights, or "scratch") and its iterations."""
    blob = json.dumps(
        [cfg_w.fingerprint(), data.market.fingerprint(), dataclasses.asdict(window), start, iterations],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class WindowOutcome:
    """What a finished window left: its test-period tracks and how it got there."""

    window: Window
    tracks: WindowTracks
    chosen: Path  # the chosen checkpoint (the next warm window starts from it)
    policies: str  # fingerprint of the chosen policies' weights
    iterations: int
    seconds: float
    reused: bool = False


def profile_tracks(cfg: Config, data: EnvData, policy: TrainedPolicy, split: str) -> tuple[list[Track], Backtest]:
    """The split's agents (one track per profile: its first agent's), equal weight under each profile's limits,
    and the usual baselines (backtest's: equal weight without limits, the classic portfolios fit before the
    split, the index bought and held); and the backtest itself (the desk's input)."""
    bt = backtest(cfg, data, policy, split)
    out = []
    for profile in cfg.policy_ids:
        first = next(a.id for a in cfg.agents if a.profile == profile)
        track = next(t for t in bt.agents() if first in (t.members or (t.name,)))
        out.append(dataclasses.replace(track, key=TrackKey("agent", profile), members=()))
    n = data.market.n_assets
    for profile in cfg.policy_ids:
        out += run_books(
            cfg, data, {f"equal_weight_{profile}": np.full(n, 1.0 / n)}, split, risk=cfg.profile_risk(profile)
        )
    return out + [t for t in bt.tracks if t.kind in ("baseline", "benchmark")], bt


def run_window(
    cfg_w: Config,
    data: EnvData,
    window: Window,
    folder: Path,
    start_from: Path | None,
    iterations: int,
    hooks: list[RunHooks],
) -> WindowOutcome:
    """Train the window (from `start_from`'s policies, else from scratch), choose on validation, trade the
    test period with every strategy; store the tracks under the window's folder."""
    t0 = time.perf_counter()
    if folder.exists():  # a window killed mid-way starts over
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    cfg_run = coerce_config(cfg_w, {"training.checkpoint_dir": str(folder), "evaluation.tearsheets": False})
    run = Run(
        cfg_run,
        data,
        "run",
        validate=validator(cfg_run, data),
        revive=ValidationResult.from_dict,
        hooks=hooks,
        run_name="train",
        init_from=start_from,
    )
    result = run.train(iterations)
    policy = TrainedPolicy.from_checkpoint(result.chosen, cfg_run)
    tracks, bt = profile_tracks(cfg_run, data, policy, "test")
    desk = None
    if cfg_run.ensemble.enabled:
        desk = run_desk(cfg_run, data, policy, "test", bt, folder / "desk", result.chosen)
        tracks += desk.tracks
    window_tracks = WindowTracks.build(window.name, tracks, desk)
    return WindowOutcome(
        window, window_tracks, result.chosen, policy.fingerprint(), iterations, time.perf_counter() - t0
    )


def _store(folder: Path, key: str, outcome: WindowOutcome) -> None:
    save_tracks(folder / TRACKS_FILE, key, outcome.tracks.tracks)
    record = {
        "key": key,
        "window": dataclasses.asdict(outcome.window),
        "chosen": str(outcome.chosen),
        "policies": outcome.policies,
        "iterations": outcome.iterations,
        "seconds": outcome.seconds,
        "node": ray.get_runtime_context().get_node_id() if ray.is_initialized() else None,
        **outcome.tracks.extras(),
    }
    tmp = folder / f".{RESULT_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=1, default=str))
    tmp.replace(folder / RESULT_FILE)  # written last: its presence means the window is complete


def _load(folder: Path, key: str, window: Window) -> WindowOutcome | None:
    """The stored outcome of a window with this key, else None."""
    path = folder / RESULT_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if record.get("key") != key:
        return None
    tracks = load_tracks(folder / TRACKS_FILE, key)
    if tracks is None:
        return None
    return WindowOutcome(
        window,
        WindowTracks.restore(window.name, tracks, record),
        Path(record["chosen"]),
        record["policies"],
        int(record["iterations"]),
        float(record["seconds"]),
        reused=True,
    )


class ChildRun(RunHooks):
    """Names a window's MLflow run and nests it under the walk-forward's parent run."""

    def __init__(self, tracker: Any, parent: str | None, name: str):
        self.tracker, self.parent, self.name = tracker, parent, name

    def on_start(self, run: Run) -> None:
        ml = self.tracker.mlflow
        if ml is not None and self.parent:
            ml.set_tags({"mlflow.parentRunId": self.parent, "mlflow.runName": f"window {self.name}"})


def walk_chain(
    cfg: Config,
    market: MarketData,
    root: Path,
    progress: bool = True,
    parent_run: str | None = None,
    on_window: Callable[[WindowOutcome, int, int], None] | None = None,
) -> list[WindowOutcome]:
    """Every window of one seed, in order (each warm window starting from the last one's chosen policies)."""
    windows = plan_windows(cfg)
    wf = cfg.walkforward
    outcomes: list[WindowOutcome] = []
    previous: WindowOutcome | None = None
    t_start = time.perf_counter()
    bar = tqdm(
        total=len(windows),
        desc=f"walk-forward s{cfg.seed}",
        unit="window",
        disable=not (progress and sys.stderr.isatty()),
    )
    with logging_redirect_tqdm():
        for i, window in enumerate(windows):
            cfg_w = window_config(cfg, window)
            data = window_data(cfg_w, market)
            warm = wf.warm_start and previous is not None
            start_from = previous.chosen if warm and previous is not None else None
            iterations = wf.warm_iterations if warm else cfg.training.iterations
            key = window_key(cfg_w, data, window, previous.policies if warm and previous else "scratch", iterations)
            folder = root / window.name
            outcome = _load(folder, key, window)
            if outcome is None:
                tracker = make_trackers(cfg_w, cfg.name) if cfg.tracking.mlflow.enabled else None
                hooks: list[RunHooks] = []
                if tracker is not None:
                    hooks = [TrackerHook(tracker), ChildRun(tracker, parent_run, window.name)]
                status = "FAILED"
                try:
                    outcome = run_window(cfg_w, data, window, folder, start_from, iterations, hooks)
                    status = "FINISHED"
                finally:
                    if tracker is not None:
                        tracker.finish(status)
                _store(folder, key, outcome)
            outcomes.append(outcome)
            previous = outcome
            elapsed = time.perf_counter() - t_start
            done = i + 1
            log.info(
                "window %s (%d/%d) %s: %s; test %s .. %s; ETA %.0f s",
                window.name,
                done,
                len(windows),
                "reused (done before, same key)"
                if outcome.reused
                else f"{outcome.iterations} iterations in {outcome.seconds:.0f} s",
                "warm start" if warm else "from scratch",
                window.test[0],
                window.test[1],
                elapsed / done * (len(windows) - done),
            )
            bar.update(1)
            if on_window is not None:
                on_window(outcome, done, len(windows))
    bar.close()
    return outcomes


@ray.remote(num_cpus=1)
def _remote_chain(cfg: Config, market_ref: Any, root: str, parent: str | None) -> list[WindowOutcome]:
    return walk_chain(cfg, market_ref, Path(root), progress=False, parent_run=parent)


@ray.remote(num_cpus=1)
def _remote_window(cfg: Config, market: MarketData, root: str, index: int) -> WindowOutcome:
    """One from-scratch window as a Ray task (its own env runners, on any node)."""
    window = plan_windows(cfg)[index]
    cfg_w = window_config(cfg, window)
    data = window_data(cfg_w, market)
    key = window_key(cfg_w, data, window, "scratch", cfg.training.iterations)
    folder = Path(root) / window.name
    outcome = _load(folder, key, window)
    if outcome is None:
        outcome = run_window(cfg_w, data, window, folder, None, cfg.training.iterations, [])
        _store(folder, key, outcome)
    return outcome


def walk_forward(cfgs: dict[int, Config], market: MarketData, experiment_dir: Path, progress: bool = True) -> Path:
    """Every seed's chain of windows (in parallel Ray tasks with `walkforward.parallel`: each seed's chain, or
    with from-scratch windows every window), then the stitched tracks, tests and report. Returns the report."""
    first = next(iter(cfgs.values()))
    wf = first.walkforward
    roots = {seed: experiment_dir / f"walkforward-s{seed}" for seed in cfgs}
    started = time.perf_counter()
    parents: dict[int, MlflowTracker | None] = {}
    if wf.parallel:
        market_ref = ray.put(market)
        if not wf.warm_start:
            refs = {
                seed: [
                    _remote_window.remote(cfg, market_ref, str(roots[seed]), i) for i in range(len(plan_windows(cfg)))
                ]
                for seed, cfg in cfgs.items()
            }
            chains = {seed: ray.get(r) for seed, r in refs.items()}
        else:
            refs2 = {seed: _remote_chain.remote(cfg, market_ref, str(roots[seed]), None) for seed, cfg in cfgs.items()}
            chains = {seed: ray.get(r) for seed, r in refs2.items()}
    else:
        parents = {seed: MlflowTracker.parent(cfg, cfg.name, f"walk-forward s{seed}") for seed, cfg in cfgs.items()}
        chains = {
            seed: walk_chain(cfg, market, roots[seed], progress, _run_id(parents[seed])) for seed, cfg in cfgs.items()
        }
    seconds = time.perf_counter() - started
    out = experiment_dir / "walkforward"
    report = write_walkforward(
        first,
        {seed: [o.tracks for o in chain] for seed, chain in chains.items()},
        out,
        {
            "seconds": seconds,
            "windows": [dataclasses.asdict(o.window) for o in next(iter(chains.values()))],
            "per_window_seconds": {seed: [o.seconds for o in chain] for seed, chain in chains.items()},
            "reused": {seed: sum(o.reused for o in chain) for seed, chain in chains.items()},
        },
    )
    log.info(
        "walk-forward: %d seed(s) x %d windows in %.0f s; report %s",
        len(cfgs),
        len(next(iter(chains.values()))),
        seconds,
        report,
    )
    for parent in parents.values():
        if parent is not None:
            parent.log_artifacts(sorted(p for p in out.iterdir() if p.is_file()), "walkforward")
            parent.finish("FINISHED")
    return report


def _run_id(tracker: MlflowTracker | None) -> str | None:
    return tracker.run_id if tracker is not None else None
