"""`train.py --mode tune`: Ray Tune over `training.tune.search_space` with ASHA early stopping.

Each trial is a training run like `train.py`'s (`training.run.Run`: same setup, validation, checkpoints)
on a config with the trial's values applied, validating and checkpointing every iteration; a hook reports
the validation metric and the checkpoint to Tune, so the best trial's checkpoint works with
`--mode evaluate`. A trial asks for one CPU for its driver and learner and one per env runner; on a
machine with fewer CPUs the trial's runners are cut to fit (sampling in the trial's driver when none
fit), and the log says so at once.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from wealtharena.app.training import validator
from wealtharena.config import Config, coerce_config
from wealtharena.envs.data import EnvData
from wealtharena.errors import ConfigError
from wealtharena.evaluation.validation import ValidationResult
from wealtharena.training import data_service
from wealtharena.training.results import IterationRecord, Validation
from wealtharena.training.run import Run, RunHooks

log = logging.getLogger("wealtharena.app")

METRICS = {"validation_sharpe": "mean_sharpe", "validation_episode_reward": "mean_episode_reward"}


def trial_config(base: dict[str, Any], sampled: dict[str, Any]) -> Config:
    return coerce_config(base, sampled)


def check_search_space(cfg: Config) -> None:
    """Every key must be a config path and every candidate a valid value: fail before any trial."""
    base = cfg.model_dump(mode="json")
    for key, values in cfg.training.tune.search_space.items():
        for value in values:
            try:
                trial_config(base, {key: value})
            except ConfigError as exc:
                raise ConfigError(f"training.tune.search_space['{key}'] = {value!r} is not valid: {exc}") from None


def fit_runners(cfg: Config, cpus: float) -> Config:
    """The trial's config with as many env runners as fit `cpus` beside its driver (at least none)."""
    runners = cfg.training.num_env_runners
    fitting = max(0, min(runners, math.floor(cpus / cfg.training.num_cpus_per_env_runner) - 1))
    if fitting == runners:
        return cfg
    log.warning(
        "tune: a trial with %d env runners needs %d CPUs and this Ray session has %g: trials run with %d "
        "(training.num_env_runners; give Ray more CPUs with training.num_cpus or a cluster with --address)",
        runners,
        runners + 1,
        cpus,
        fitting,
    )
    return coerce_config(cfg, {"training.num_env_runners": fitting})


class TuneReport(RunHooks):
    """Reports each iteration's validation metric, with its checkpoint, to Tune."""

    def __init__(self, cfg: Config, sampled: dict[str, Any]):
        self.metric = cfg.training.tune.metric
        self.sampled = sampled
        self.train_return = float("nan")

    def on_iteration(self, run: Run, record: IterationRecord) -> None:
        returns = list(record.policy_return.values())
        self.train_return = sum(returns) / len(returns) if returns else float("nan")

    def on_checkpoint(self, run: Run, path: Path, val: Validation | None) -> None:
        if val is None:
            return
        report = {
            self.metric: float(getattr(val, METRICS[self.metric])),
            "train_episode_return": self.train_return,
            **{f"sampled/{k}": v for k, v in self.sampled.items()},
        }
        tune.report(report, checkpoint=tune.Checkpoint.from_directory(str(path)))


def _trainable(params: dict[str, Any]) -> None:
    cfg = trial_config(params["base"], params["sampled"])
    data = data_service.env_data_for({"config": cfg})  # the driver's copy, or built here if sampled keys change it
    trial = tune.get_context().get_trial_id() or "trial"
    run = Run(
        cfg,
        data,
        params["experiment"],
        validate=validator(cfg, data),
        revive=ValidationResult.from_dict,
        hooks=[TuneReport(cfg, params["sampled"])],
        run_name=f"tune-{trial}",
    )
    run.train(cfg.training.iterations)


def run_tune(cfg: Config, data: EnvData, experiment: str) -> Path | None:
    """Run the search on `data` (published once for every trial); return the best trial's best checkpoint."""
    check_search_space(cfg)
    cfg = fit_runners(cfg, ray.cluster_resources().get("CPU", 1.0))
    # every iteration validated and checkpointed: that is what Tune compares and ASHA stops on
    cfg = coerce_config(cfg, {"training.eval_every": 1, "training.checkpoint_every": 1})
    holder = data_service.publish(data)  # noqa: F841  (alive while trials run)
    search = cfg.training.tune
    space = {
        "base": cfg.model_dump(mode="json"),
        "experiment": experiment,
        "sampled": {k: tune.choice(v) for k, v in search.search_space.items()},
    }
    per_runner = cfg.training.num_cpus_per_env_runner
    bundles = [{"CPU": 1.0}] + [{"CPU": per_runner}] * cfg.training.num_env_runners
    trainable = tune.with_resources(_trainable, tune.PlacementGroupFactory(bundles))
    storage = Path(cfg.training.checkpoint_dir).resolve() / experiment / "tune"
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=search.metric,
            mode="max",
            num_samples=search.num_samples,
            max_concurrent_trials=search.max_concurrent,
            scheduler=ASHAScheduler(
                max_t=cfg.training.iterations, grace_period=min(search.grace_period, cfg.training.iterations)
            ),
        ),
        run_config=tune.RunConfig(
            storage_path=str(storage),
            name="search",
            verbose=1,
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=1, checkpoint_score_attribute=search.metric, checkpoint_score_order="max"
            ),
        ),
    )
    grid = tuner.fit()
    table = grid.get_dataframe()
    if search.metric not in table.columns or table[search.metric].isna().all():
        log.warning("tune: no trial reported %s (stopped before its first iteration)", search.metric)
        return None
    best = grid.get_best_result(metric=search.metric, mode="max")
    cols = [c for c in table.columns if c.startswith("config/sampled") or c in (search.metric, "training_iteration")]
    print(f"Tune over {len(table)} trials, metric {search.metric} on the validation split (costs included):")
    print(table[cols].sort_values(search.metric, ascending=False).to_string(index=False))
    ckpt = best.get_best_checkpoint(search.metric, "max") if best else None
    if ckpt is None:
        log.warning("no trial reported a checkpoint")
        return None
    value = best.metrics.get(search.metric)
    print(f"best trial: {best.config['sampled']} -> {search.metric} {value:.3f}; checkpoint {ckpt.path}")
    return Path(ckpt.path)
