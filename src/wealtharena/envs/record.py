"""`StepRecord`: what one step of the simulation core produced, for the builders that read it.

`TradingCore` fills one record per step (and at a reset) and the info builder, the vector env's
Gymnasium infos and the evaluation read it, instead of reaching into the core's book, gate and reward.
Its arrays are the step's own (or the gate's, filled in place each step): read them before the next step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class StepRecord:
    """K portfolios after a step (or a reset)."""

    value: np.ndarray  # [K] portfolio value at the close the observation is taken at
    costs: np.ndarray  # [K] commission and slippage of the step's fills
    weights: np.ndarray  # [K, N] weights the gate allowed at the decision (universe order)
    drawdown: np.ndarray  # [K] the risk manager's drawdown at that close
    risk_flags: np.ndarray  # [K, len(REASONS)] bool: the gate's reasons this step
    risk_state: np.ndarray  # [K] int: normal / reducing / halted
    reward_terms: np.ndarray  # [K, 7] signed, weighted terms (they add up to the reward)
    rewards: np.ndarray  # [K]
    episode_terms: np.ndarray  # [K, 7] the episode's sums of the terms so far
    clock: np.ndarray  # [K] the day (row) of the close the observation is taken at
