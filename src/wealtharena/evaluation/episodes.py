"""Many fixed windows of a split, every agent acting deterministically: the quantity training maximises,
measured on days the policies did not see, with standard errors.

Each window is a training-length episode (from cash, with fresh risk and reward state, as in
training); all windows are stepped together as one vector `TradingCore` (one episode per window).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wealtharena.arrays import standard_error
from wealtharena.config import Config
from wealtharena.envs.core import TradingCore
from wealtharena.envs.data import EnvData
from wealtharena.envs.policy import Policy
from wealtharena.envs.rewards import TERMS

# Episodes on the 25-year train split start every quarter (validation and test: every training.eval_stride days).
TRAIN_STRIDE = 63


def paired_change(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """Mean change between two evaluations of the same windows and its standard error, paired
    window by window (the market of a window moves both alike); SE nan for a single window."""
    d = np.asarray(after, dtype=np.float64) - np.asarray(before, dtype=np.float64)
    se = standard_error(d)
    return float(d.mean()), se


@dataclass
class EpisodeSet:
    """Episode rewards of every agent over many fixed windows of a split."""

    starts: list[str]  # first day of each window
    length: int  # days per episode (the training episode length)
    rewards: np.ndarray  # [windows, agents] summed reward of each agent's episode
    agents: list[str]
    profiles: list[str]
    terms: np.ndarray  # [windows, agents, 7] the same sums per weighted term (adding up to `rewards`)

    def _columns(self, p: str) -> list[int]:
        return [j for j, q in enumerate(self.profiles) if q == p]

    def per_window(self) -> dict[str, np.ndarray]:
        """profile -> [windows] episode reward of its agents (their mean) in each window."""
        return {p: self.rewards[:, self._columns(p)].mean(axis=1) for p in dict.fromkeys(self.profiles)}

    def per_window_terms(self) -> dict[str, np.ndarray]:
        """profile -> [windows, 7] its agents' mean episode sum of each weighted term (`rewards.TERMS`)."""
        return {p: self.terms[:, self._columns(p)].mean(axis=1) for p in dict.fromkeys(self.profiles)}

    def by_policy(self) -> dict[str, tuple[float, float]]:
        """profile -> (mean episode reward, its standard error over windows)."""
        out = {}
        for p, per_window in self.per_window().items():
            se = standard_error(per_window)
            out[p] = (float(per_window.mean()), float(se))
        return out


def run_episodes(
    cfg: Config, data: EnvData, policy: Policy, split: str, stride: int, length: int | None = None
) -> EpisodeSet:
    """Every agent, deterministically, over training-length episodes of `split` starting every
    `stride` days; a split shorter than an episode (a walk-forward window's validation year) is one
    episode of the whole split."""
    lo, hi = data.usable_rows(split)
    lo = max(lo, data.market_risk.lookback_max)
    length = min(length or cfg.env.episode_length or hi - lo, hi - lo - 1)
    if length < 2:
        raise ValueError(f"split '{split}' has {hi - lo} usable days, too few for episodes")
    starts = np.arange(lo, hi - length + 1, stride)
    profiles = [a.profile for a in cfg.agents]
    core = TradingCore(cfg, profiles, split, data=data, desk=cfg.env.desk_observation, n_envs=len(starts))
    obs = core.reset(None, length, starts=starts)
    rewards = np.zeros(core.k)
    terms = np.zeros((core.k, len(TERMS)))
    for _ in range(length):
        active = ~core.done
        obs, rew, _, truncated = core.step(policy(obs, core.profiles))
        rewards += np.where(active, rew, 0.0)
        terms += np.where(active[:, None], core.record.reward_terms, 0.0)
        if truncated.all() or core.done.all():
            break
    a = core.n_agents
    return EpisodeSet(
        starts=[str(data.market.dates[t]) for t in starts.tolist()],
        length=length,
        rewards=rewards.reshape(len(starts), a),
        agents=[x.id for x in cfg.agents],
        profiles=profiles,
        terms=terms.reshape(len(starts), a, len(TERMS)),
    )
