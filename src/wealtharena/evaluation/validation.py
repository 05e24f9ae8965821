"""What training is judged on: deterministic runs of every agent on the validation split, two ways.

- episodes: training-length episodes (`env.episode_length` days, from cash, fresh risk state)
  starting every `training.eval_stride` days; `policy_episode_reward` is each policy's mean episode
  reward over them, with its standard error: the quantity training maximises, on unseen days and
  averaged over many start dates (the learning curve);
- the whole split as one backtest: per-agent Sharpe, return, drawdown and reward; the mean Sharpe
  picks the best checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from wealtharena.config import Config
from wealtharena.envs.data import EnvData
from wealtharena.envs.policy import Policy
from wealtharena.evaluation.backtest import run_agents
from wealtharena.evaluation.episodes import paired_change, run_episodes
from wealtharena.portfolio import metrics


@dataclass(frozen=True)
class AgentStats:
    """One agent's whole-split backtest."""

    sharpe: float
    total_return: float
    max_drawdown: float
    episode_reward: float
    profile: str


@dataclass
class ValidationResult:
    """One evaluation of the policies on a split (stored in checkpoints as a plain dict)."""

    iteration: int
    agents: dict[str, AgentStats]
    policy_episode_reward: dict[str, float]  # mean over the windows, per policy
    policy_episode_reward_se: dict[str, float]  # its standard error over windows
    policy_window_rewards: dict[str, list[float]]  # per window, so two evaluations compare pairwise
    episodes: int
    episode_length: int
    stride: int
    policy_full_period_reward: dict[str, float]
    mean_sharpe: float
    mean_episode_reward: float
    split: str = "validation"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def metrics(self) -> dict[str, float]:
        """Flat metric names for the trackers: the curves first (`curves/...`), then the agents' figures."""
        m = {
            "curves/validation_mean_sharpe": self.mean_sharpe,
            "curves/validation_episode_reward": self.mean_episode_reward,
        }
        for p, v in self.policy_episode_reward.items():
            m[f"curves/validation_episode_reward/{p}"] = v
        for p, v in self.policy_full_period_reward.items():
            m[f"validation/full_period_reward/{p}"] = v
        for agent, stats in self.agents.items():
            for k in ("sharpe", "total_return", "max_drawdown", "episode_reward"):
                m[f"validation/{agent}/{k}"] = getattr(stats, k)
        return m

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ValidationResult:
        fields = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        fields["agents"] = {a: AgentStats(**s) for a, s in raw.get("agents", {}).items()}
        return cls(**fields)

    def change_se(self, first: ValidationResult) -> dict[str, float]:
        """Standard error of each policy's change in mean episode reward since `first` (same windows,
        paired window by window), where both recorded per-window rewards."""
        a, b = first.policy_window_rewards, self.policy_window_rewards
        return {
            p: paired_change(np.asarray(a[p]), np.asarray(b[p]))[1]
            for p in a.keys() & b.keys()
            if len(a[p]) == len(b[p]) > 1
        }


def run_validation(
    cfg: Config, data: EnvData, policy: Policy, iteration: int, split: str = "validation"
) -> ValidationResult:
    """Both evaluations of `policy` on `split` (see the module docstring)."""
    per_agent = {}
    for tr in run_agents(cfg, data, policy, split):
        r = tr.returns
        per_agent[tr.name] = AgentStats(
            sharpe=metrics.sharpe(r),
            total_return=metrics.total_return(r),
            max_drawdown=metrics.max_drawdown(r),
            episode_reward=float(tr.rewards.sum()) if tr.rewards is not None else 0.0,
            profile=tr.profile or "",
        )
    full: dict[str, list[float]] = {}
    for stats in per_agent.values():
        full.setdefault(stats.profile, []).append(stats.episode_reward)
    episodes = run_episodes(cfg, data, policy, split, stride=cfg.training.eval_stride)
    by_policy = episodes.by_policy()
    sharpes = [s.sharpe for s in per_agent.values() if np.isfinite(s.sharpe)]
    return ValidationResult(
        iteration=iteration,
        agents=per_agent,
        policy_episode_reward={p: m for p, (m, _) in by_policy.items()},
        policy_episode_reward_se={p: se for p, (_, se) in by_policy.items()},
        policy_window_rewards={p: [round(float(x), 4) for x in v] for p, v in episodes.per_window().items()},
        episodes=len(episodes.starts),
        episode_length=episodes.length,
        stride=cfg.training.eval_stride,
        policy_full_period_reward={p: float(np.mean(v)) for p, v in full.items()},
        mean_sharpe=float(np.mean(sharpes)) if sharpes else float("nan"),
        mean_episode_reward=float(episodes.rewards.mean()),
        split=split,
    )
