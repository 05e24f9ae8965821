"""A rollout as arrays: what an `ArrayEnvRunner` returns and the learner trains on, without episodes.

`Rollout` holds, per policy (RLModule), the samples of one `sample()` call as flat arrays: the
observation, the action and its log-probability, the action distribution's inputs, the value
estimate, and the advantage and value target from generalised advantage estimation (Schulman et
al. 2016), computed by `gae` over the [T, K] step arrays of the runner. `train_batch` joins the
rollouts of every runner into one `MultiAgentBatch` of numpy arrays with RLlib's column names,
ready for `LearnerGroup.update(batch=...)`: RLlib's learner connector pipeline (episodes to batch,
zero-padding, the value pass, GAE) is not run, since every column it would add is here.

Advantages are standardised per policy over the whole batch, as RLlib's `GeneralAdvantageEstimation`
connector does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

from wealtharena.training.models import CRITIC


@dataclass
class PolicySamples:
    """One policy's samples of a rollout; row i of every array is the same agent-step."""

    obs: np.ndarray  # [n, D] float32
    actions: np.ndarray  # [n, A] float32
    logp: np.ndarray  # [n] float32
    dist_inputs: np.ndarray  # [n, 2A] float32
    vf_preds: np.ndarray  # [n] float32
    advantages: np.ndarray  # [n] float32 (not standardised)
    value_targets: np.ndarray  # [n] float32
    critic: np.ndarray | None = None  # [n, C] float32: the value function's extra inputs, if any

    def __len__(self) -> int:
        return len(self.logp)

    def columns(self) -> dict[str, np.ndarray]:
        cols = {
            Columns.OBS: self.obs,
            Columns.ACTIONS: self.actions,
            Columns.ACTION_LOGP: self.logp,
            Columns.ACTION_DIST_INPUTS: self.dist_inputs,
            Columns.VF_PREDS: self.vf_preds,
            Postprocessing.ADVANTAGES: self.advantages,
            Postprocessing.VALUE_TARGETS: self.value_targets,
        }
        if self.critic is not None:
            cols[CRITIC] = self.critic
        return cols


@dataclass
class Rollout:
    """The samples of one `ArrayEnvRunner.sample()` call, per policy, and how many env steps they took."""

    policies: dict[str, PolicySamples] = field(default_factory=dict)
    env_steps: int = 0

    @property
    def agent_steps(self) -> int:
        return sum(len(p) for p in self.policies.values())


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    ends: np.ndarray,
    gamma: float,
    lambda_: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation over [T, K] step arrays, backwards in time, every row at once.

    `values[t]` is V(s_t); `next_values[t]` the value the step bootstraps from: V(s_{t+1}) within an
    episode, V of the last observation where the data window ran out (truncation) or the rollout
    stops, 0 where the agent's episode terminated; `ends[t]` says an episode of the row ended at step
    t (terminated or truncated), so no advantage flows back across it. Returns (advantages, value
    targets = advantages + values), float32.
    """
    deltas = rewards + gamma * next_values - values
    decay = gamma * lambda_ * (1.0 - ends.astype(np.float64))
    adv = np.empty_like(deltas)
    running = np.zeros(deltas.shape[1])
    for t in range(deltas.shape[0] - 1, -1, -1):
        running = deltas[t] + decay[t] * running
        adv[t] = running
    return adv.astype(np.float32), (adv + values).astype(np.float32)


def standardise(x: np.ndarray) -> np.ndarray:
    """(x - mean) / max(std, 1e-4), as RLlib's GAE connector standardises advantages."""
    return ((x - x.mean()) / max(1e-4, float(x.std()))).astype(np.float32)


def train_batch(rollouts: list[Rollout]) -> MultiAgentBatch:
    """One `MultiAgentBatch` (numpy columns) of every runner's rollout, advantages standardised per policy."""
    per_policy: dict[str, list[PolicySamples]] = {}
    for r in rollouts:
        for pid, samples in r.policies.items():
            if len(samples):
                per_policy.setdefault(pid, []).append(samples)
    batches = {}
    for pid, parts in per_policy.items():
        cols = {k: np.concatenate([p.columns()[k] for p in parts]) for k in parts[0].columns()}
        cols[Postprocessing.ADVANTAGES] = standardise(cols[Postprocessing.ADVANTAGES])
        batches[pid] = SampleBatch(cols)
    return MultiAgentBatch(batches, env_steps=sum(r.env_steps for r in rollouts))
