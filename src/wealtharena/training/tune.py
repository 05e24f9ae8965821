"""`train.py --mode tune`: Ray Tune over `training.tune.search_space` with ASHA early stopping.

Each trial is the same training as `train.py` (our config, our callbacks) on a config with the
trial's values applied; it reports the validation metric every iteration with a WealthArena
checkpoint, so the best trial's checkpoint works with `--mode evaluate`.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from wealtharena.config import Config, coerce_config
from wealtharena.envs.data import EnvData
from wealtharena.errors import ConfigError
from wealtharena.training import data_service
from wealtharena.training.algorithms import build_algorithm_config, init_log_std
from wealtharena.training.callbacks import RewardTermsCallback
from wealtharena.training.checkpoints import CheckpointStore, compat_key
from wealtharena.training.runtime import seed_everything
from wealtharena.training.trainer import validate

log = logging.getLogger(__name__)

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


def _trainable(params: dict[str, Any]) -> None:
    cfg = trial_config(params["base"], params["sampled"])
    seed_everything(cfg.seed)
    data = data_service.env_data_for({"config": cfg})  # the driver's copy, or built here if sampled keys change it
    algo = build_algorithm_config(cfg, data).callbacks(RewardTermsCallback).build_algo()
    if cfg.training.algorithm != "sac":
        init_log_std(algo, {p: cfg.training.log_std_of(p) for p in cfg.policy_ids})
    key = METRICS[cfg.training.tune.metric]
    try:
        for _ in range(cfg.training.iterations):
            result = algo.train()
            val = validate(algo, cfg, data, algo.iteration)
            returns = result.get("env_runners", {}).get("module_episode_returns_mean", {}) or {}
            report = {
                cfg.training.tune.metric: float(getattr(val, key)),
                "train_episode_return": float(np.mean(list(returns.values()))) if returns else float("nan"),
                **{f"sampled/{k}": v for k, v in params["sampled"].items()},
            }
            with tempfile.TemporaryDirectory() as tmp:
                meta = {
                    "config": cfg.model_dump(mode="json"),
                    "fingerprint": cfg.fingerprint(),
                    "compat": compat_key(cfg),
                    "iteration": algo.iteration,
                    "validation": [val.to_dict()],
                }
                path = CheckpointStore(Path(tmp)).save(algo, algo.iteration, meta)
                tune.report(report, checkpoint=tune.Checkpoint.from_directory(str(path)))
    finally:
        algo.stop()


def run_tune(cfg: Config, data: EnvData, experiment: str) -> Path | None:
    """Run the search on `data` (published once for every trial); return the best trial's best checkpoint."""
    check_search_space(cfg)
    holder = data_service.publish(data)  # noqa: F841  (alive while trials run)
    search = cfg.training.tune
    space = {
        "base": cfg.model_dump(mode="json"),
        "sampled": {k: tune.choice(v) for k, v in search.search_space.items()},
    }
    runners = cfg.training.num_env_runners
    trainable = tune.with_resources(_trainable, tune.PlacementGroupFactory([{"CPU": 1}] + [{"CPU": 1}] * runners))
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
    best = grid.get_best_result(metric=search.metric, mode="max")
    table = grid.get_dataframe(filter_metric=search.metric, filter_mode="max")
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
