"""CompositeReward: seven weighted terms, per profile, vectorised over K agents.

    reward = scale * ( w_profit * profit - w_risk * risk - w_cost * cost - w_stability * stability
                       + w_sharpe * sharpe + w_momentum * momentum + w_diversification * diversification )

Every term is in units of a one-day return (risk in squared units, as in mean-variance
utility), so the default weights (2.0, 0.5, 0.1, 0.05, 1.0, 0.3, 0.2) weigh like against like:
on the sample stocks a fully invested book expects about +0.04% a day against a variance of
about 0.015%^2, so investing beats cash only when the agent earns its risk. `scale`
(env.reward_scale, 100) brings a 1% day to a reward of about 2.

| term            | definition (step t -> t+1, agent k)                                                  |
|-----------------|--------------------------------------------------------------------------------------|
| profit          | log(V_{t+1} / V_t), costs included                                                   |
| risk            | r^2 + max(0, DD_{t+1}^2 - DD_t^2) / 2: the day's realised variance plus the growth of |
|                 | half the squared drawdown (over an episode this sums to about MDD^2 / 2)              |
| cost            | (commission + slippage) / V_t                                                        |
| stability       | 0.01 * one-way turnover (sum |order value| / 2 V_t): a full rotation counts as 1%     |
| sharpe          | eta * D_t, the differential Sharpe ratio (Moody & Saffell 1998) with eta = 1/63,      |
|                 | D_t = (B dA - A dB / 2) / (B - A^2)^(3/2) on EMAs A of r and B of r^2, clipped to +-10 |
| momentum        | sum_i w_i (m_i - mean(m)) / 21: weights aligned with 21-day asset momentum m (known  |
|                 | at t), per day                                                                        |
| diversification | 0.001 * invested * ENB / N: ENB = (sum w)^2 / sum(w^2), the effective number of       |
|                 | holdings of the invested part, times the invested fraction (a book in cash earns 0)   |
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from wealtharena.config import RewardWeights

TERMS = ("profit", "risk", "cost", "stability", "sharpe", "momentum", "diversification")
SIGNS = np.array([1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0])
ETA = 1.0 / 63.0
SEED_VOL = 0.01
MOMENTUM_DAYS = 21


def momentum_signal(close: np.ndarray) -> np.ndarray:
    """m[t, i] = log(close_t / close_{t-21}) / 21, centred across assets (0 before day 21)."""
    m = np.zeros_like(close)
    m[MOMENTUM_DAYS:] = np.log(close[MOMENTUM_DAYS:] / close[:-MOMENTUM_DAYS]) / MOMENTUM_DAYS
    return m - m.mean(axis=1, keepdims=True)


class CompositeReward:
    """Holds each agent's running statistics: the EMAs of its return and squared return (for the
    differential Sharpe ratio). The drawdown is the risk manager's (`RiskManager.mark`), the one the
    gate acts on. `contrib` [K, 7] holds the last step's signed, weighted terms (they add up to the
    reward)."""

    def __init__(self, weights: Sequence[RewardWeights], n_assets: int, scale: float):
        self.k = len(weights)
        w = np.array([[getattr(rw, t) for t in TERMS] for rw in weights])
        self.coef = w * SIGNS * scale  # [K, 7]: signed, scaled weights
        self.n_assets = n_assets
        self.terms = np.zeros((self.k, len(TERMS)))
        self.contrib = np.zeros((self.k, len(TERMS)))
        self.reset()

    def reset(self, rows: np.ndarray | None = None) -> None:
        """Fresh statistics: every agent, or only `rows` (indices or a [K] mask)."""
        if rows is None:
            self.ema_return = np.zeros(self.k)
            self.ema_square = np.full(self.k, SEED_VOL**2)
            self.contrib.fill(0.0)
            return
        self.ema_return[rows] = 0.0
        self.ema_square[rows] = SEED_VOL**2
        self.contrib[rows] = 0.0

    def sharpe_ema(self) -> np.ndarray:
        """[K] daily Sharpe ratio of the EMAs: mean / sqrt(mean square - mean^2)."""
        a = self.ema_return
        return a / np.sqrt(np.maximum(self.ema_square - a * a, 1e-12))

    def __call__(
        self,
        value_before: np.ndarray,
        value_after: np.ndarray,
        costs: np.ndarray,
        traded: np.ndarray,
        weights: np.ndarray,
        momentum: np.ndarray,
        drawdown_before: np.ndarray,
        drawdown_after: np.ndarray,
    ) -> np.ndarray:
        """Rewards [K]. `weights` [K, N] are the allowed decision weights; `momentum` [N] (or [K, N],
        one day per agent) the signal at t; the drawdowns are the risk manager's at t (as the gate acted
        on it) and at t+1."""
        terms = self.terms
        r = np.log(value_after / value_before)
        terms[:, 0] = r
        dd, prev = drawdown_after, drawdown_before
        terms[:, 1] = r * r + 0.5 * np.maximum(dd * dd - prev * prev, 0.0)
        terms[:, 2] = costs / value_before
        terms[:, 3] = 0.005 * traded
        a, b = self.ema_return, self.ema_square  # A and B of Moody and Saffell
        da, db = r - a, r * r - b
        denom = np.maximum(b - a * a, 1e-12) ** 1.5
        terms[:, 4] = ETA * np.minimum(np.maximum((b * da - 0.5 * a * db) / denom, -10.0), 10.0)
        self.ema_return = a + ETA * da
        self.ema_square = b + ETA * db
        terms[:, 5] = weights @ momentum if momentum.ndim == 1 else np.add.reduce(weights * momentum, 1)
        invested = np.add.reduce(weights, 1)
        sq = np.add.reduce(weights * weights, 1)
        terms[:, 6] = invested * invested * invested / np.maximum(sq, 1e-300) * (0.001 / self.n_assets)
        np.multiply(terms, self.coef, out=self.contrib)
        return np.add.reduce(self.contrib, 1)
