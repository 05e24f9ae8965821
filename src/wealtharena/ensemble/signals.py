"""Causal market state for the routers, one row per data row: row t uses prices up to the close of t.

From the benchmark index (the equal-weight index of the assets when the data has none): its daily
return, realised volatility over `vol_days` (annualised), that volatility's threshold (the
`vol_quantile` quantile of every earlier day's volatility: an expanding window that ends the day
before) and its percentile among the days up to t, the trend (return over `trend_days`) and the
drawdown from the running peak; from the assets: the cross-sectional dispersion of 21-day returns
and the factor scores the ranking mode uses (63-day momentum, 5-day reversal, low 63-day
volatility). The regime crosses the volatility state (calm / volatile) with the trend's sign.

The features module's regime (bull / bear / volatile, a fixed 25% volatility threshold) is an
observation for the agents; the desk uses thresholds from the index's own history instead, which
adapt to how volatile the market has been so far.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from wealtharena.config import REGIMES, VolatilityConfig
from wealtharena.data.market_data import MarketData

MIN_HISTORY = 252  # days of volatility before its expanding thresholds are used
ANNUAL = np.sqrt(252.0)


@dataclass(frozen=True)
class MarketSignals:
    """Per-row arrays ([T] or [T, N]); `upto(t)` cuts every one of them after row t."""

    dates: np.ndarray
    index_return: np.ndarray  # [T] daily simple return of the index (0 on the first row)
    vol: np.ndarray  # [T] realised volatility over vol_days, annualised
    vol_threshold: np.ndarray  # [T] quantile of the volatility of rows < t (nan before MIN_HISTORY days)
    vol_percentile: np.ndarray  # [T] share of rows <= t whose volatility is <= row t's
    trend: np.ndarray  # [T] index return over trend_days
    drawdown: np.ndarray  # [T] index / running peak - 1 (<= 0)
    dispersion: np.ndarray  # [T] cross-sectional std of the assets' 21-day log returns
    asset_returns: np.ndarray  # [T, N] daily simple returns of the assets
    momentum: np.ndarray  # [T, N] 63-day log return
    reversal: np.ndarray  # [T, N] minus the 5-day log return
    low_volatility: np.ndarray  # [T, N] minus the 63-day volatility of daily returns
    regime: np.ndarray  # [T] index into config.REGIMES

    def upto(self, t: int) -> MarketSignals:
        """The same signals with every row after `t` cut off (what a router may see at the close of t)."""
        return replace(self, **{f.name: getattr(self, f.name)[: t + 1] for f in fields(self)})

    def regime_name(self, t: int) -> str:
        return REGIMES[int(self.regime[t])]


def _log_return(close: np.ndarray, days: int) -> np.ndarray:
    out = np.zeros_like(close)
    out[days:] = np.log(close[days:] / close[:-days])
    return out


def build_signals(market: MarketData, cfg: VolatilityConfig) -> MarketSignals:
    close = market.close
    asset_r = np.zeros_like(close)
    asset_r[1:] = close[1:] / close[:-1] - 1.0
    if market.benchmark is not None:
        index = market.benchmark.astype(np.float64)
    else:
        index = np.cumprod(1.0 + asset_r.mean(axis=1))
    r = np.zeros(len(index))
    r[1:] = index[1:] / index[:-1] - 1.0
    vol_s = pd.Series(r).rolling(cfg.vol_days, min_periods=cfg.vol_days).std() * ANNUAL
    threshold = vol_s.expanding(min_periods=MIN_HISTORY).quantile(cfg.vol_quantile).shift(1)
    percentile = vol_s.expanding(min_periods=cfg.vol_days).rank(pct=True)
    vol = vol_s.to_numpy()
    trend = np.zeros(len(index))
    trend[cfg.trend_days :] = index[cfg.trend_days :] / index[: -cfg.trend_days] - 1.0
    drawdown = index / np.maximum.accumulate(index) - 1.0
    ret21 = _log_return(close, 21)
    vol63 = pd.DataFrame(asset_r).rolling(63, min_periods=63).std().fillna(0.0).to_numpy()
    volatile = np.nan_to_num(vol) > np.nan_to_num(threshold.to_numpy(), nan=np.inf)
    regime = 2 * volatile.astype(np.int64) + (trend < 0).astype(np.int64)  # calm_up, calm_down, volatile_up, ...
    return MarketSignals(
        dates=market.dates,
        index_return=r,
        vol=np.nan_to_num(vol),
        vol_threshold=threshold.to_numpy(),
        vol_percentile=np.nan_to_num(percentile.to_numpy(), nan=0.5),
        trend=trend,
        drawdown=drawdown,
        dispersion=ret21.std(axis=1),
        asset_returns=asset_r,
        momentum=_log_return(close, 63),
        reversal=-_log_return(close, 5),
        low_volatility=-vol63,
        regime=regime,
    )
