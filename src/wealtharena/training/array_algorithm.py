"""PPO and A2C whose iteration trains on arrays: `ArrayPPO`, `ArrayA2C`.

The same algorithms as RLlib's PPO and this project's A2C (same learner, loss, optimiser, KL and
entropy schedules, checkpoints), with one `training_step` for the array runner
(training/array_runner.py):

    sample:  every env runner returns a `Rollout` (arrays with advantages and value targets)
    batch:   the rollouts joined per policy into one MultiAgentBatch, advantages standardised
    update:  LearnerGroup.update(batch=...) over num_epochs x minibatches (RLlib's learner connector
             pipeline is not run: the batch already holds every column it would add)
    sync:    the new weights to every runner

With another runner class the algorithms fall back to RLlib's own `training_step`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.rllib.core import ALL_MODULES
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_MODULE_STEPS_TRAINED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

from wealtharena.training.a2c import A2C, A2CConfig
from wealtharena.training.array_runner import ArrayEnvRunner
from wealtharena.training.rollout import Rollout, train_batch

BATCH_TIMER = "train_batch_build"


class ArrayTrainingStep:
    """The `training_step` of an on-policy algorithm over `ArrayEnvRunner`s (see the module docstring)."""

    config: Any
    metrics: Any
    env_runner_group: Any
    learner_group: Any

    def training_step(self) -> None:
        if not _uses_array_runner(self.config):
            return super().training_step()  # type: ignore[misc]
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER), reduce="mean", window=1):
            rollouts, runner_metrics = self._sample_rollouts()
            self.metrics.aggregate(runner_metrics, key=ENV_RUNNER_RESULTS)
        with self.metrics.log_time((TIMERS, BATCH_TIMER), reduce="mean", window=1):
            batch = train_batch(rollouts)
        with (
            self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER), reduce="mean", window=1),
            torch_threads(self._learner_threads()),
        ):
            learner_results = self.learner_group.update(
                batch=batch,
                timesteps={
                    NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                        (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME)
                    ),
                    NUM_MODULE_STEPS_TRAINED_LIFETIME: self.metrics.peek(
                        (LEARNER_RESULTS, ALL_MODULES, NUM_MODULE_STEPS_TRAINED_LIFETIME), default=0
                    ),
                },
                num_epochs=self.config.num_epochs,
                minibatch_size=self.config.minibatch_size,
                shuffle_batch_per_epoch=self.config.shuffle_batch_per_epoch,
            )
            self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER), reduce="mean", window=1):
            self.env_runner_group.sync_weights(
                from_worker_or_learner_group=self.learner_group,
                policies=set(learner_results[0]) - {ALL_MODULES},
                inference_only=True,
            )
        return None

    def _learner_threads(self) -> int:
        """`training.learner_threads` of the run's config (carried in env_config), else this process's cores."""
        own = (self.config.env_config.get("config") or {}).get("training", {}).get("learner_threads")
        return int(own or len(os.sched_getaffinity(0)))

    def _sample_rollouts(self) -> tuple[list[Rollout], list[dict[str, Any]]]:
        """One `sample()` per runner, together at least `total_train_batch_size` env steps."""
        group = self.env_runner_group
        n = group.num_remote_workers()
        per_runner = -(-int(self.config.total_train_batch_size) // max(1, n))
        if n == 0:
            runner = group.local_env_runner
            return [runner.sample(num_timesteps=per_runner)], [runner.get_metrics()]
        out = group.foreach_env_runner(
            lambda r: (r.sample(num_timesteps=per_runner), r.get_metrics()), local_env_runner=False
        )
        return [o[0] for o in out], [o[1] for o in out]


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Torch's intra-op threads set to `n` inside the block, back to what they were after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _uses_array_runner(config: Any) -> bool:
    cls = config.env_runner_cls
    return isinstance(cls, type) and issubclass(cls, ArrayEnvRunner)


class ArrayPPO(ArrayTrainingStep, PPO):
    """RLlib's PPO, trained from array rollouts (see the module docstring)."""

    @classmethod
    def get_default_config(cls) -> PPOConfig:
        return PPOConfig(algo_class=cls)


class ArrayA2C(ArrayTrainingStep, A2C):
    """This project's A2C, trained from array rollouts (see the module docstring)."""

    @classmethod
    def get_default_config(cls) -> A2CConfig:
        return A2CConfig(algo_class=cls)
