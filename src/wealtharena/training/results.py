"""What a training run records: one iteration (read from RLlib's result dict), and what it needs of a
validation (the application's own record, e.g. `evaluation.validation.ValidationResult`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

LEARNER_STATS = ("policy_loss", "vf_loss", "entropy", "mean_kl_loss", "qf_loss", "alpha_loss", "total_loss")


@dataclass
class IterationRecord:
    """Episode return and reward terms per policy on the train split, learner losses, speed."""

    iteration: int
    wall_s: float
    env_steps: int
    env_steps_per_s: float
    policy_return: dict[str, float] = field(default_factory=dict)
    reward_terms: dict[str, dict[str, float]] = field(default_factory=dict)
    learner: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> IterationRecord:
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})

    @classmethod
    def from_result(
        cls, result: dict[str, Any], iteration: int, wall_s: float, steps_before: int | None
    ) -> IterationRecord:
        runners = result.get("env_runners", {}) or {}
        steps = int(runners.get("num_env_steps_sampled_lifetime", 0))
        sps = (steps - steps_before) / wall_s if steps_before is not None else steps / wall_s
        returns = runners.get("module_episode_returns_mean", {}) or {}
        terms = runners.get("reward_terms", {}) or {}
        learner = {}
        for pid, stats in (result.get("learners", {}) or {}).items():
            if pid.startswith("__") or not isinstance(stats, dict):
                continue
            learner[pid] = {k: float(v) for k, v in stats.items() if k in LEARNER_STATS and isinstance(v, (int, float))}
        return cls(
            iteration=iteration,
            wall_s=wall_s,
            env_steps=steps,
            env_steps_per_s=sps,
            policy_return={k: float(v) for k, v in returns.items()},
            reward_terms={p: {t: float(v) for t, v in d.items()} for p, d in terms.items()},
            learner=learner,
        )


class Validation(Protocol):
    """A validation of the run's policies: its iteration, the mean Sharpe that picks the best checkpoint,
    a dict for the checkpoint record and flat metrics for the trackers."""

    iteration: int
    mean_sharpe: float

    def to_dict(self) -> dict[str, Any]: ...

    def metrics(self) -> dict[str, float]: ...
