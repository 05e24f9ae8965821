"""Training-only inputs of the value function: the market's realised returns over the next days.

For the input-driven baseline (`training.critic_horizons`, Mao et al. 2019; see training/models.py)
the training env's infos carry, for each row, the assets' log returns over the next h days from
the row's current day. Only the learner reads them: the policy never sees them and evaluation envs
never produce them. Returns stop at the split's last row, so a train-split critic never sees
validation prices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from wealtharena.envs.actions import AssetOrder


class ForwardReturns:
    """[T, H, N] float32 log returns close_t -> close_min(t+h, hi), zero from the split's last row on."""

    def __init__(self, close: np.ndarray, hi: int, horizons: Sequence[int]):
        hs = tuple(int(h) for h in horizons)
        rows = np.arange(close.shape[0])
        fwd = np.zeros((close.shape[0], len(hs), close.shape[1]), dtype=np.float32)
        for j, h in enumerate(hs):
            ahead = np.minimum(rows + h, hi)
            fwd[:, j] = np.log(close[np.maximum(ahead, rows)] / close)
        fwd[hi:] = 0.0
        self.horizons = hs
        self.table = fwd

    def at(self, days: np.ndarray, order: AssetOrder, rows: np.ndarray) -> np.ndarray:
        """[len(rows), H * N] at each row's day (`days`, one per row of `rows`), in the row's slot order."""
        fwd = self.table[days]  # [R, H, N]
        if order.shuffled:
            fwd = np.take_along_axis(fwd, order.perm[rows][:, None, :], 2)
        return fwd.reshape(len(rows), -1)
