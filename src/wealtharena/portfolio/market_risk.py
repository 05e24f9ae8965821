"""Market-only risk quantities, computed once per data set (they depend on the date, not the agent).

Row t uses returns up to and including day t (known at the close of t, when decisions are made).
The first rows use the history available so far (an expanding window until the lookback fills).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wealtharena.config import RiskConfig
from wealtharena.data.market_data import MarketData

PRECOMPUTE_BYTES = 256 * 2**20


def _rolling_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing sum over `window` rows ending at t (inclusive), expanding at the start."""
    c = np.cumsum(x, axis=0)
    out = c.copy()
    out[window:] = c[window:] - c[:-window]
    return out


def _counts(n: int, window: int) -> np.ndarray:
    return np.minimum(np.arange(1, n + 1), window).astype(np.float64)


@dataclass
class MarketRisk:
    """Per-date arrays shared by every agent's risk manager and the execution model.

    returns[t, i]  simple return of asset i from t-1 to t (0 on the first day)
    vol[t, i]      daily volatility over `vol_lookback` days (sample std)
    corr[t]        correlation matrix over `correlation_lookback` days, diagonal set to 0
                   (float32; computed on demand per date when [T, N, N] would be too large)
    adv[t, i]      mean traded value (close * volume) over 20 days, None without volume
    kelly[t, i]    Kelly fraction p - (1 - p) / b from the trailing win rate p and payoff b
    regime[t]      0 bull, 1 bear, 2 volatile (from the features), or None
    """

    returns: np.ndarray
    vol: np.ndarray
    corr: np.ndarray | None
    adv: np.ndarray | None
    kelly: np.ndarray
    regime: np.ndarray | None
    lookback_max: int
    correlation_lookback: int

    @classmethod
    def build(cls, market: MarketData, risk: RiskConfig, regime: np.ndarray | None = None) -> MarketRisk:
        close = market.close
        n_t, n = close.shape
        r = np.zeros_like(close)
        r[1:] = close[1:] / close[:-1] - 1.0
        vol = _rolling_std(r, risk.vol_lookback)
        corr = None
        if n_t * n * n * 4 <= PRECOMPUTE_BYTES:
            corr = _rolling_corr(r, risk.correlation_lookback)
        adv = None
        if market.has("volume"):
            traded = close * market.field("volume")
            adv = _rolling_sum(traded, 20) / _counts(n_t, 20)[:, None]
        wins = _rolling_sum((r > 0).astype(np.float64), risk.vol_lookback)
        losses = _rolling_sum((r < 0).astype(np.float64), risk.vol_lookback)
        gain = _rolling_sum(np.maximum(r, 0.0), risk.vol_lookback)
        loss = _rolling_sum(np.maximum(-r, 0.0), risk.vol_lookback)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = wins / np.maximum(wins + losses, 1.0)
            payoff = (gain / np.maximum(wins, 1.0)) / (loss / np.maximum(losses, 1.0))
            kelly = np.where(np.isfinite(payoff) & (payoff > 0), p - (1.0 - p) / payoff, 0.0)
        return cls(
            returns=r,
            vol=vol,
            corr=corr,
            adv=adv,
            kelly=kelly,
            regime=regime,
            lookback_max=max(risk.vol_lookback, risk.var_lookback),
            correlation_lookback=risk.correlation_lookback,
        )

    def corr_at(self, t: int) -> np.ndarray:
        if self.corr is not None:
            return self.corr[t]
        a = max(0, t - self.correlation_lookback + 1)
        window = self.returns[a : t + 1]
        c = np.corrcoef(window, rowvar=False) if len(window) > 2 else np.zeros((window.shape[1],) * 2)
        c = np.nan_to_num(c, nan=0.0)  # a flat asset has no correlation with anything
        np.fill_diagonal(c, 0.0)
        return c.astype(np.float32)


def _rolling_std(r: np.ndarray, window: int) -> np.ndarray:
    n_t = len(r)
    cnt = _counts(n_t, window)[:, None]
    s1 = _rolling_sum(r, window)
    s2 = _rolling_sum(r * r, window)
    var = (s2 - s1 * s1 / cnt) / np.maximum(cnt - 1.0, 1.0)
    return np.sqrt(np.maximum(var, 0.0))


def _rolling_corr(r: np.ndarray, window: int) -> np.ndarray:
    n_t, n = r.shape
    cnt = _counts(n_t, window)[:, None, None]
    s1 = _rolling_sum(r, window)
    s2 = _rolling_sum(r[:, :, None] * r[:, None, :], window)
    cov = s2 - s1[:, :, None] * s1[:, None, :] / cnt
    diag = np.sqrt(np.maximum(np.einsum("tii->ti", cov), 0.0))
    denom = diag[:, :, None] * diag[:, None, :]
    corr = np.zeros_like(cov)
    np.divide(cov, denom, out=corr, where=denom > 1e-18)
    idx = np.arange(n)
    corr[:, idx, idx] = 0.0
    return np.clip(corr, -1.0, 1.0).astype(np.float32)
