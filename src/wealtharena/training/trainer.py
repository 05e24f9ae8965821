"""The training loop: train (or resume) the agents' policies, validating and checkpointing as it goes.

    with ray_session(cfg):
        result = train(cfg, data, experiment, tracker=tracker)     # data: envs.data.EnvData

Needs a Ray session (`training.runtime.ray_session`). The checkpoint format is `training.checkpoints`;
what is recorded per iteration is `training.results.IterationRecord`; what a validation measures is
`evaluation.validation`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from ray.rllib.algorithms.algorithm import Algorithm
from tqdm import tqdm

from wealtharena.config import Config
from wealtharena.envs.data import EnvData
from wealtharena.evaluation.validation import ValidationResult, run_validation
from wealtharena.training import data_service
from wealtharena.training.algorithms import build_algorithm_config, init_log_std, register
from wealtharena.training.callbacks import RewardTermsCallback
from wealtharena.training.checkpoints import (
    CheckpointStore,
    check_compatible,
    compat_key,
    local_run_dir,
    read_meta,
    resolve_checkpoint,
)
from wealtharena.training.inference import TrainedPolicy
from wealtharena.training.provenance import git_commit, restore_rng, rng_state
from wealtharena.training.results import IterationRecord
from wealtharena.training.runtime import hash_seed_fixed, runner_placement, seed_everything
from wealtharena.training.tracking import Tracker

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    history: list[IterationRecord] = field(default_factory=list)
    validation: list[ValidationResult] = field(default_factory=list)
    runners: list[dict[str, Any]] = field(default_factory=list)

    @property
    def chosen(self) -> Path:
        """The checkpoint evaluation reports on: the best by validation mean Sharpe, else the last."""
        return self.best_checkpoint or self.last_checkpoint


def validate(algo: Any, cfg: Config, data: EnvData, iteration: int) -> ValidationResult:
    """The algorithm's current policies, deterministically, on the validation split."""
    result = run_validation(cfg, data, TrainedPolicy.from_algorithm(algo, cfg), iteration)
    log.info(
        "iter %d validation (deterministic, costs included%s): mean Sharpe %.2f, episode reward per policy %s",
        iteration,
        ", untrained" if iteration == 0 else "",
        result.mean_sharpe,
        {p: round(v, 1) for p, v in result.policy_episode_reward.items()},
    )
    return result


def train(
    cfg: Config,
    data: EnvData,
    experiment: str,
    iterations: int | None = None,
    checkpoint: str | Path | None = None,
    run_name: str | None = None,
    progress: bool = True,
    tracker: Tracker | None = None,
) -> TrainResult:
    """Train (or resume from `checkpoint`) for `iterations` more iterations on `data`."""
    register()
    if not hash_seed_fixed():
        log.warning(
            "PYTHONHASHSEED is not set: iterations after the first may differ between processes "
            "(RLlib's learner iterates over a set of policy ids); start Python with PYTHONHASHSEED=0 "
            "for bit-identical runs (train.py does this itself)"
        )
    iterations = iterations or cfg.training.iterations
    history: list[IterationRecord] = []
    validation: list[ValidationResult] = []
    best_metric = -np.inf
    holder = data_service.publish(data)  # noqa: F841  (keeps the shared data alive while training)
    if checkpoint is not None:
        path = resolve_checkpoint(checkpoint)
        meta = read_meta(path)
        check_compatible(cfg, meta, path)
        run_dir = path.parent
        if isinstance(checkpoint, str) and "://" in checkpoint:  # resumed from shared storage
            run_dir = local_run_dir(cfg, experiment, meta.get("run_name") or path.parent.name)
        algo = Algorithm.from_checkpoint(str(path))
        history = [IterationRecord.from_dict(h) for h in meta.get("history", [])]
        validation = [ValidationResult.from_dict(v) for v in meta.get("validation", [])]
        best_metric = meta.get("best_metric", -np.inf) or -np.inf
        restore_rng(meta.get("rng"))
        _advance_env_seeds(algo, algo.iteration)
        log.info("resumed %s at iteration %d", path, algo.iteration)
    else:
        seed_everything(cfg.seed)
        run_name = run_name or datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S") + f"-s{cfg.seed}"
        run_dir = local_run_dir(cfg, experiment, run_name)
        algo = build_algorithm_config(cfg, data).callbacks(RewardTermsCallback).build_algo()
        if cfg.training.algorithm != "sac":
            init_log_std(algo, {p: cfg.training.log_std_of(p) for p in cfg.policy_ids})
    nodes = runner_placement(algo)
    store = CheckpointStore(run_dir, cfg.training.storage_path, experiment)
    start = algo.iteration
    end = start + iterations
    base_meta = {
        "config": cfg.model_dump(mode="json"),
        "fingerprint": cfg.fingerprint(),
        "compat": compat_key(cfg),
        "experiment": experiment,
        "run_name": run_dir.name,
        "git_commit": git_commit(),
        "command": " ".join(sys.argv),
        "python_hash_seed": os.environ.get("PYTHONHASHSEED"),
        "data": data.fingerprint(),
        "runners": nodes,
    }
    if tracker is not None:
        tracker.start(cfg, run_dir, base_meta, data.fingerprint())
        if tracker.record() is not None:
            base_meta["mlflow"] = tracker.record()
    last_ckpt, best_path = store.latest(), store.best()
    t_start = time.perf_counter()
    steps_before = None
    bar = tqdm(
        total=end,
        initial=start,
        desc=f"{cfg.training.algorithm} {experiment}",
        unit="iter",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    try:
        if start == 0:
            # the untrained policies on the validation split: the baseline learning is judged against
            validation.append(validate(algo, cfg, data, 0))
            if tracker is not None:
                tracker.log_validation(validation[-1])
        for _ in range(iterations):
            t0 = time.perf_counter()
            result = algo.train()
            record = IterationRecord.from_result(result, algo.iteration, time.perf_counter() - t0, steps_before)
            steps_before = record.env_steps
            history.append(record)
            it = record.iteration
            elapsed = time.perf_counter() - t_start
            bar.set_postfix_str(
                " ".join(f"{p[:4]}={v:+.1f}" for p, v in record.policy_return.items())
                + f" sps={record.env_steps_per_s:.0f} eta={elapsed / (it - start) * (end - it):.0f}s"
            )
            bar.update(1)
            log.info(
                "iter %d: returns %s | %.0f env steps/s | %s",
                it,
                {p: round(v, 2) for p, v in record.policy_return.items()},
                record.env_steps_per_s,
                "; ".join(
                    f"{p}: " + ", ".join(f"{t}={v:+.2f}" for t, v in terms.items())
                    for p, terms in record.reward_terms.items()
                ),
            )
            if tracker is not None:
                tracker.log_iteration(record)
            do_eval = it % cfg.training.eval_every == 0 or it == end
            val = validate(algo, cfg, data, it) if do_eval else None
            if val is not None:
                validation.append(val)
                if tracker is not None:
                    tracker.log_validation(val)
            if do_eval or it % cfg.training.checkpoint_every == 0 or it == end:
                meta = {
                    **base_meta,
                    "iteration": it,
                    "history": [h.to_dict() for h in history],
                    "validation": [v.to_dict() for v in validation],
                    "best_metric": best_metric,
                    "rng": rng_state(),
                    "saved": time.time(),
                }
                last_ckpt = store.save(algo, it, meta)
                if val is not None and np.isfinite(val.mean_sharpe) and val.mean_sharpe > best_metric:
                    best_metric = meta["best_metric"] = val.mean_sharpe
                    store.update_meta(last_ckpt, meta)
                    best_path = store.mark_best(last_ckpt)
                    log.info("new best checkpoint (validation mean Sharpe %.3f): %s", best_metric, best_path)
    finally:
        bar.close()
        algo.stop()
    assert last_ckpt is not None, "training wrote no checkpoint"
    return TrainResult(
        run_dir=run_dir,
        last_checkpoint=last_ckpt,
        best_checkpoint=best_path,
        history=history,
        validation=validation,
        runners=nodes,
    )


def _reseed_runner(runner: Any, iteration: int) -> None:
    if getattr(runner, "_seed", None) is not None:
        runner._seed = int(runner._seed) + 1_000_003 * iteration
        runner._needs_initial_reset = True


def _advance_env_seeds(algo: Any, iteration: int) -> None:
    """A restored run's env runners start from the config seed again; move them to a stream that is
    a function of (seed, iteration) so a resumed run does not replay the episodes it already saw."""
    algo.env_runner_group.foreach_env_runner(lambda er: _reseed_runner(er, iteration), local_env_runner=True)
