"""From a policy's action to the target weights the risk gate sees, and the order assets are shown in.

`ActionMap`: an action is N+1 real scores (assets, then cash); the portfolio is
softmax(action_scale * tanh(scores)) (tanh instead of clipping keeps a Gaussian policy's gradient
alive past +-1: clipping makes every sample beyond the bound look the same); the target moves
`rebalance_speed` of the way from today's weights to it.

`AssetOrder`: with `env.shuffle_assets` each training episode shows the assets in its own random
order (observation columns and action slots permuted together), so a policy cannot learn which slot
is which stock; the identity otherwise.
"""

from __future__ import annotations

import numpy as np

from wealtharena.arrays import nz
from wealtharena.errors import ActionError


class AssetOrder:
    """Slot j of row k shows asset `perm[k, j]`; `cols[k]` maps the market block's columns to that order."""

    def __init__(self, k: int, n_assets: int, n_agents: int, n_features: int, window: int, market_dim: int):
        self.k, self.n, self.n_agents = k, n_assets, n_agents
        self._feat, self._window = n_features, window
        self.perm = np.tile(np.arange(n_assets), (k, 1))
        self.inv = self.perm.copy()
        self.cols = np.tile(np.arange(market_dim), (k, 1))
        self.shuffled = False

    def draw(self, envs: np.ndarray, rng: np.random.Generator | None) -> None:
        """A random order for each episode of `envs` (the identity without rng), shared by its agents."""
        n, f, a = self.n, self._feat, self.n_agents
        lags = np.arange(self._window) * n * f
        for e in envs.tolist():
            p = rng.permutation(n) if rng is not None else np.arange(n)
            rows = slice(e * a, (e + 1) * a)
            self.perm[rows] = p
            self.inv[rows] = np.argsort(p)
            asset_cols = (lags[:, None, None] + p[None, :, None] * f + np.arange(f)[None, None, :]).ravel()
            self.cols[rows, : asset_cols.size] = asset_cols
        self.shuffled = bool(nz(self.perm != np.arange(n)))

    def to_slots(self, x: np.ndarray) -> np.ndarray:
        """[K, N] in universe order -> each row's slot order."""
        return np.take_along_axis(x, self.perm, 1)

    def to_assets(self, x: np.ndarray) -> np.ndarray:
        """[K, N] in each row's slot order -> universe order."""
        return np.take_along_axis(x, self.inv, 1)


class ActionMap:
    """Actions [K, N+1] -> target weights [K, N] (universe order, before the risk gate)."""

    def __init__(self, k: int, n_assets: int, action_scale: float, rebalance_speed: float):
        self.k, self.n = k, n_assets
        self.scale = action_scale
        self.speed = rebalance_speed

    def portfolio(self, actions: np.ndarray) -> np.ndarray:
        """softmax(scale * tanh(actions))[:, :N]: weights >= 0 summing to at most 1 (the rest is cash)."""
        a = np.asarray(actions, dtype=np.float64)
        if a.shape != (self.k, self.n + 1):
            raise ActionError(
                f"actions must have shape ({self.k}, {self.n + 1}) (agents, assets + cash); got {a.shape}"
            )
        e = np.tanh(a)  # any real score; NaN stays NaN, +-inf -> +-1
        e *= self.scale
        np.exp(e, out=e)
        total = np.add.reduce(e, 1)
        if nz(total != total):
            k = int(np.flatnonzero(total != total)[0])
            raise ActionError(f"action of agent {k} contains NaN: {a[k]}")
        w = e[:, : self.n]
        w /= total[:, None]
        return w

    def target(self, actions: np.ndarray, current: np.ndarray, order: AssetOrder) -> np.ndarray:
        """The day's target: `rebalance_speed` of the way from `current` weights to the action's portfolio."""
        target = self.portfolio(actions)
        if order.shuffled:  # slot order -> asset order
            target = order.to_assets(target)
        if self.speed < 1.0:
            target *= self.speed
            target += (1.0 - self.speed) * current
        return target
