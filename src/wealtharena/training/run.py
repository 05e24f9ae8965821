"""One training run as a small object: set up (new or resumed), iterate, validate, checkpoint.

    run = Run(cfg, data, experiment, validate=validate, hooks=[ProgressBar(), TrackerHook(tracker)])
    result = run.train()                  # cfg.training.iterations more iterations; or:
    run.setup(); run.step(); ...; run.close()

Needs a Ray session (`training.runtime.ray_session`). What a validation measures is the caller's:
`validate(policy, iteration)` gets the current policies (a `TrainedPolicy`) and returns any
`Validation` (the application passes `evaluation.validation.run_validation`); its mean Sharpe picks the
best checkpoint. Hooks see every iteration, validation and checkpoint (the progress bar, the trackers,
Ray Tune's reports are hooks). The checkpoint format is `training.checkpoints`; what is recorded per
iteration is `training.results.IterationRecord`.

A runner that dies (its process killed, its node lost) does not end the run: the runner set is rebuilt
from the learner's current weights and the iteration in flight is sampled again.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from ray.exceptions import RayActorError
from ray.rllib.algorithms.algorithm import Algorithm
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from wealtharena.config import Config
from wealtharena.envs.data import EnvData
from wealtharena.training import data_service
from wealtharena.training.algorithms import build_algorithm_config, init_log_std, register, sac_warmup_steps
from wealtharena.training.callbacks import RewardTermsCallback
from wealtharena.training.checkpoints import (
    CheckpointMeta,
    CheckpointStore,
    check_compatible,
    compat_key,
    local_run_dir,
    read_meta,
    resolve_checkpoint,
)
from wealtharena.training.inference import MODULES_DIR, TrainedPolicy
from wealtharena.training.provenance import git_commit, restore_rng, rng_state
from wealtharena.training.results import IterationRecord, Validation
from wealtharena.training.runtime import (
    advance_env_seeds,
    hash_seed_fixed,
    replace_env_runners,
    runner_placement,
    seed_everything,
)

log = logging.getLogger(__name__)


Validate = Callable[[TrainedPolicy, int], Validation]


class RunHooks:
    """What a run tells its observers; override the events you need."""

    def on_start(self, run: Run) -> None:
        """After setup: the algorithm is built or restored and `run.meta` describes the run."""

    def on_iteration(self, run: Run, record: IterationRecord) -> None:
        """After each training iteration."""

    def on_validation(self, run: Run, val: Validation) -> None:
        """After each validation (iteration 0 included, when the run starts fresh)."""

    def on_checkpoint(self, run: Run, path: Path, val: Validation | None) -> None:
        """After each checkpoint is written (`val`: the validation of that iteration, if any)."""

    def on_end(self, run: Run, status: str) -> None:
        """When the run stops: status FINISHED or FAILED."""


@dataclass
class TrainResult:
    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    history: list[IterationRecord] = field(default_factory=list)
    validation: list[Any] = field(default_factory=list)
    runners: list[dict[str, Any]] = field(default_factory=list)

    @property
    def chosen(self) -> Path:
        """The checkpoint evaluation reports on: the best by validation mean Sharpe, else the last."""
        return self.best_checkpoint or self.last_checkpoint


class Run:
    """A training run of `cfg` on `data` under `checkpoints/<experiment>/`: new (`run_name`, else the UTC
    time and seed) or resumed from `checkpoint` (a checkpoint or run folder, or a storage URI). A new run
    may start from the policies of another checkpoint (`init_from`: its weights, with a fresh optimiser and
    counters), as walk-forward's windows do. `revive` turns a stored validation dict back into the caller's
    `Validation` (when resuming)."""

    def __init__(
        self,
        cfg: Config,
        data: EnvData,
        experiment: str,
        *,
        validate: Validate | None = None,
        revive: Callable[[dict[str, Any]], Validation] | None = None,
        hooks: Sequence[RunHooks] = (),
        checkpoint: str | Path | None = None,
        run_name: str | None = None,
        init_from: Path | None = None,
    ):
        self.cfg, self.data, self.experiment = cfg, data, experiment
        self.init_from = init_from
        self.validate_fn, self.revive = validate, revive
        self.hooks = list(hooks)
        self.checkpoint, self.run_name = checkpoint, run_name
        self.algo: Any = None
        self.history: list[IterationRecord] = []
        self.validations: list[Validation] = []
        self.best_metric: float | None = None
        self.last_path: Path | None = None
        self.best_path: Path | None = None
        self._holder: Any = None
        self._steps_before: int | None = None

    # ------------------------------------------------------------------ setup
    def setup(self) -> Run:
        register()
        if not hash_seed_fixed():
            log.warning(
                "PYTHONHASHSEED is not set: iterations after the first may differ between processes "
                "(RLlib's learner iterates over a set of policy ids); start Python with PYTHONHASHSEED=0 "
                "for bit-identical runs (train.py does this itself)"
            )
        cfg = self.cfg
        self._holder = data_service.publish(self.data)  # alive while runners may start
        if self.checkpoint is not None:
            path = resolve_checkpoint(self.checkpoint)
            saved = read_meta(path)
            check_compatible(cfg, saved, path)
            self.run_dir = path.parent
            if isinstance(self.checkpoint, str) and "://" in self.checkpoint:  # resumed from shared storage
                self.run_dir = local_run_dir(cfg, self.experiment, saved.run_name or path.parent.name)
            self.algo = Algorithm.from_checkpoint(str(path))
            self.history = [IterationRecord.from_dict(h) for h in saved.history]
            if self.revive is not None:
                self.validations = [self.revive(v) for v in saved.validation]
            self.best_metric = saved.best_metric
            restore_rng(saved.rng)
            advance_env_seeds(self.algo, self.algo.iteration)
            self._steps_before = self.history[-1].env_steps if self.history else None
            log.info("resumed %s at iteration %d", path, self.algo.iteration)
            mlflow = saved.mlflow
        else:
            seed_everything(cfg.seed)
            name = self.run_name or datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S") + f"-s{cfg.seed}"
            self.run_dir = local_run_dir(cfg, self.experiment, name)
            self.algo = build_algorithm_config(cfg, self.data).callbacks(RewardTermsCallback).build_algo()
            if cfg.training.algorithm != "sac":
                init_log_std(self.algo, {p: cfg.training.log_std_of(p) for p in cfg.policy_ids})
            if self.init_from is not None:
                load_policies(self.algo, self.init_from, cfg)
                log.info("policies start from %s", self.init_from)
            mlflow = None
        self.store = CheckpointStore(self.run_dir, cfg.training.storage_path, self.experiment)
        self.last_path, self.best_path = self.store.latest(), self.store.best()
        self.runners = runner_placement(self.algo)
        self.meta = CheckpointMeta(
            config=cfg.model_dump(mode="json"),
            fingerprint=cfg.fingerprint(),
            compat=compat_key(cfg),
            experiment=self.experiment,
            run_name=self.run_dir.name,
            git_commit=git_commit(),
            command=" ".join(sys.argv),
            python_hash_seed=os.environ.get("PYTHONHASHSEED"),
            data=self.data.fingerprint(),
            runners=self.runners,
            mlflow=mlflow,
        )
        for hook in self.hooks:
            hook.on_start(self)
        if cfg.training.algorithm == "sac" and self.algo.iteration == 0:
            log.info(
                "SAC samples %d env steps into its replay buffer before its first update: the first iterations "
                "only sample (returns appear once an episode ends)",
                sac_warmup_steps(cfg),
            )
        if self.algo.iteration == 0 and self.validate_fn is not None:
            # the untrained policies on the validation split: the baseline learning is judged against
            self._validate(0)
        return self

    @property
    def iteration(self) -> int:
        return int(self.algo.iteration)

    # ------------------------------------------------------------------ one iteration
    def step(self, last: bool = False) -> IterationRecord:
        """One training iteration; then a validation and a checkpoint when due (every `eval_every` /
        `checkpoint_every` iterations, and always when `last`)."""
        t0 = time.perf_counter()
        try:
            result = self.algo.train()
        except RayActorError as exc:
            log.warning(
                "an env runner died during iteration %d (%s): replaced from the learner's current weights, "
                "the iteration is sampled again",
                self.iteration + 1,
                str(exc).splitlines()[0][:200],
            )
            replace_env_runners(self.algo)
            t0 = time.perf_counter()
            result = self.algo.train()
        record = IterationRecord.from_result(result, self.iteration, time.perf_counter() - t0, self._steps_before)
        self._steps_before = record.env_steps
        self.history.append(record)
        log.info(
            "iter %d: returns %s | %.0f env steps/s | %s",
            record.iteration,
            {p: round(v, 2) for p, v in record.policy_return.items()},
            record.env_steps_per_s,
            "; ".join(
                f"{p}: " + ", ".join(f"{t}={v:+.2f}" for t, v in terms.items())
                for p, terms in record.reward_terms.items()
            ),
        )
        if self.cfg.training.algorithm == "sac" and not record.learner:
            log.info(
                "iter %d: SAC warm-up, %d of %d env steps sampled, no update yet",
                record.iteration,
                record.env_steps,
                sac_warmup_steps(self.cfg),
            )
        for hook in self.hooks:
            hook.on_iteration(self, record)
        it, tr = record.iteration, self.cfg.training
        due = it % tr.eval_every == 0 or last
        val = self._validate(it) if due and self.validate_fn is not None else None
        if due or it % tr.checkpoint_every == 0 or last:
            self._checkpoint(val)
        return record

    def _validate(self, iteration: int) -> Validation:
        assert self.validate_fn is not None
        val = self.validate_fn(TrainedPolicy.from_algorithm(self.algo, self.cfg), iteration)
        self.validations.append(val)
        for hook in self.hooks:
            hook.on_validation(self, val)
        return val

    def _checkpoint(self, val: Validation | None) -> Path:
        meta = replace(
            self.meta,
            iteration=self.iteration,
            history=[h.to_dict() for h in self.history],
            validation=[v.to_dict() for v in self.validations],
            best_metric=self.best_metric,
            rng=rng_state(),
            saved=time.time(),
        )
        path = self.store.save(self.algo, meta)
        self.last_path = path
        best = self.best_metric if self.best_metric is not None else -np.inf
        if val is not None and np.isfinite(val.mean_sharpe) and val.mean_sharpe > best:
            self.best_metric = meta.best_metric = float(val.mean_sharpe)
            self.store.update_meta(path, meta)
            self.best_path = self.store.mark_best(path)
            log.info("new best checkpoint (validation mean Sharpe %.3f): %s", self.best_metric, self.best_path)
        for hook in self.hooks:
            hook.on_checkpoint(self, path, val)
        return path

    # ------------------------------------------------------------------ the whole run
    def train(self, iterations: int | None = None) -> TrainResult:
        """Set up (unless done), run `iterations` more iterations (default: `training.iterations`), stop."""
        if self.algo is None:
            self.setup()
        n = iterations or self.cfg.training.iterations
        status = "FAILED"
        try:
            for i in range(n):
                self.step(last=i == n - 1)
            status = "FINISHED"
        finally:
            self.close(status)
        assert self.last_path is not None, "training wrote no checkpoint"
        return self.result()

    def result(self) -> TrainResult:
        assert self.last_path is not None, "training wrote no checkpoint"
        return TrainResult(
            run_dir=self.run_dir,
            last_checkpoint=self.last_path,
            best_checkpoint=self.best_path,
            history=self.history,
            validation=self.validations,
            runners=self.runners,
        )

    def close(self, status: str = "FINISHED") -> None:
        for hook in self.hooks:
            hook.on_end(self, status)
        if self.algo is not None:
            self.algo.stop()
        self._holder = None


def load_policies(algo: Any, checkpoint: Path, cfg: Config) -> None:
    """Every policy's weights from `checkpoint` (a checkpoint folder of a compatible config) into the learner,
    then to the env runners."""
    check_compatible(cfg, read_meta(checkpoint), checkpoint)
    algo.restore_from_path(checkpoint / MODULES_DIR, component="learner_group/learner/rl_module")
    algo.env_runner_group.sync_weights(
        from_worker_or_learner_group=algo.learner_group, inference_only=True, timeout_seconds=60
    )


class ProgressBar(RunHooks):
    """A tqdm bar over the run's iterations with each policy's return, env steps/s and an ETA, on
    stderr when it is a terminal (logs then print above it; piped output gets the log lines only)."""

    def __init__(self, total: int | None = None, enabled: bool = True):
        self.total, self.enabled = total, enabled
        self.bar: Any = None
        self._redirect: Any = None

    def on_start(self, run: Run) -> None:
        if not (self.enabled and sys.stderr.isatty()):
            return
        total = run.iteration + (self.total or run.cfg.training.iterations)
        self._start, self._t0 = run.iteration, time.perf_counter()
        self._redirect = logging_redirect_tqdm()
        self._redirect.__enter__()
        self.bar = tqdm(
            total=total,
            initial=run.iteration,
            desc=f"{run.cfg.training.algorithm} {run.experiment}",
            unit="iter",
            file=sys.stderr,
            dynamic_ncols=True,
        )

    def on_iteration(self, run: Run, record: IterationRecord) -> None:
        if self.bar is None:
            return
        done = record.iteration - self._start
        eta = (time.perf_counter() - self._t0) / max(done, 1) * (self.bar.total - record.iteration)
        self.bar.set_postfix_str(
            " ".join(f"{p[:4]}={v:+.1f}" for p, v in record.policy_return.items())
            + f" sps={record.env_steps_per_s:.0f} eta={eta:.0f}s"
        )
        self.bar.update(1)

    def on_end(self, run: Run, status: str) -> None:
        if self.bar is not None:
            self.bar.close()
            self._redirect.__exit__(None, None, None)
            self.bar = None


class TrackerHook(RunHooks):
    """Sends the run to a `training.tracking.Tracker` (MLflow, W&B): its record at the start, every
    iteration and validation as metrics; the tracker's run id goes into every checkpoint record."""

    def __init__(self, tracker: Any):
        self.tracker = tracker

    def on_start(self, run: Run) -> None:
        if run.meta.mlflow is None:
            self.tracker.start(run.cfg, run.run_dir, run.meta)
            run.meta = replace(run.meta, mlflow=self.tracker.record())
        else:
            self.tracker.resume(run.cfg, run.run_dir, run.meta)

    def on_iteration(self, run: Run, record: IterationRecord) -> None:
        self.tracker.log_iteration(record)

    def on_validation(self, run: Run, val: Validation) -> None:
        self.tracker.log_validation(val)


def train(
    cfg: Config,
    data: EnvData,
    experiment: str,
    iterations: int | None = None,
    checkpoint: str | Path | None = None,
    run_name: str | None = None,
    progress: bool = True,
    validate: Validate | None = None,
    revive: Callable[[dict[str, Any]], Validation] | None = None,
    hooks: Sequence[RunHooks] = (),
) -> TrainResult:
    """A `Run` with a progress bar and the given hooks, for `iterations` more iterations."""
    bar = ProgressBar(iterations, enabled=progress)
    run = Run(
        cfg,
        data,
        experiment,
        validate=validate,
        revive=revive,
        hooks=[bar, *hooks],
        checkpoint=checkpoint,
        run_name=run_name,
    )
    return run.train(iterations)
