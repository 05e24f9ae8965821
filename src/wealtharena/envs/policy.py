"""What a policy is to the simulation: one calling convention for trained, hand-written and baseline
policies alike.

    actions = policy(obs, profiles)      # obs [K, D] float32, profiles [K] -> scores [K, N+1]

Row k is one agent's observation (`envs.observation`), `profiles[k]` the profile (policy) it acts
with; the scores go to the env's action mapping (`envs.actions`). A trained policy
(`training.inference.TrainedPolicy`) runs one forward pass per profile; a rule (`evaluation.rules`)
reads feature columns; `EqualWeightPolicy` gives every score 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class Policy(Protocol):
    """obs [K, D] of rows acting with `profiles` [K] -> actions [K, N+1] (any real scores)."""

    def __call__(self, obs: np.ndarray, profiles: Sequence[str]) -> np.ndarray: ...


class EqualWeightPolicy:
    """All-zero scores: the equal-weight book (1/(N+1) of the value per asset and in cash, before the
    limits), which is also what an untrained asset-shared policy holds (its last layers start at 0)."""

    def __init__(self, n_assets: int):
        self.n_assets = n_assets

    def __call__(self, obs: np.ndarray, profiles: Sequence[str]) -> np.ndarray:
        return np.zeros((obs.shape[0], self.n_assets + 1), dtype=np.float32)
