"""Performance and risk metrics on daily simple returns (numpy in, floats out).

Conventions (the same as empyrical, against which the tests cross-check on real data):
- `periods` = 252 trading days a year; risk-free rate 0 unless given.
- annual return: geometric, (prod(1 + r)) ** (periods / n) - 1.
- annual volatility: sample standard deviation (ddof=1) * sqrt(periods).
- Sharpe: mean(r - rf) / std(r - rf, ddof=1) * sqrt(periods).
- Sortino: mean(r) * periods / downside deviation, downside deviation =
  sqrt(mean(min(r, 0) ** 2)) * sqrt(periods).
- Calmar: annual return / |max drawdown|.
- max drawdown: min over t of (wealth_t / running peak_t - 1), wealth from compounding r, starting at 1
  (a negative number); duration: the longest stretch of days spent below a previous peak.
- VaR (historical, confidence c): -percentile(r, 100 (1 - c)) with linear interpolation, a positive
  loss fraction. CVaR: minus the mean of the returns at or below the (n - 1)(1 - c)-th order statistic.
- beta: cov(r, b) / var(b); alpha: (1 + mean(r - beta b)) ** periods - 1 (annualised).
- information ratio: mean(r - b) / std(r - b, ddof=1) * sqrt(periods) (annualised; empyrical's
  excess_sharpe is the same without the sqrt(periods)).
- win rate: share of days with r > 0 among days with r != 0.
- turnover: mean over days of sum_i |w_t,i - w_(t-1),i| / 2 (one-way).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from arch.bootstrap import CircularBlockBootstrap

PERIODS = 252


def _arr(r: np.ndarray) -> np.ndarray:
    a = np.asarray(r, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"returns must be one-dimensional, got shape {a.shape}")
    return a


def total_return(r: np.ndarray) -> float:
    return float(np.prod(1.0 + _arr(r)) - 1.0)


def annual_return(r: np.ndarray, periods: int = PERIODS) -> float:
    r = _arr(r)
    if len(r) == 0:
        return float("nan")
    growth = np.prod(1.0 + r)
    return float(growth ** (periods / len(r)) - 1.0) if growth > 0 else -1.0


def annual_volatility(r: np.ndarray, periods: int = PERIODS) -> float:
    r = _arr(r)
    return float(np.std(r, ddof=1) * math.sqrt(periods)) if len(r) > 1 else float("nan")


def sharpe(r: np.ndarray, risk_free: float = 0.0, periods: int = PERIODS) -> float:
    x = _arr(r) - risk_free
    if len(x) < 2:
        return float("nan")
    sd = np.std(x, ddof=1)
    return float(np.mean(x) / sd * math.sqrt(periods)) if sd > 0 else float("nan")


def downside_deviation(r: np.ndarray, periods: int = PERIODS) -> float:
    x = np.minimum(_arr(r), 0.0)
    return float(math.sqrt(np.mean(x * x)) * math.sqrt(periods))


def sortino(r: np.ndarray, periods: int = PERIODS) -> float:
    r = _arr(r)
    dd = downside_deviation(r, periods)
    return float(np.mean(r) * periods / dd) if dd > 0 else float("nan")


def drawdown_series(r: np.ndarray) -> np.ndarray:
    wealth = np.cumprod(1.0 + _arr(r))
    peak = np.maximum.accumulate(np.maximum(wealth, 1.0))
    return wealth / peak - 1.0


def max_drawdown(r: np.ndarray) -> float:
    dd = drawdown_series(r)
    return float(dd.min()) if len(dd) else 0.0


def max_drawdown_duration(r: np.ndarray) -> int:
    """Longest run of consecutive days below the previous peak."""
    under = drawdown_series(r) < 0
    if not under.any():
        return 0
    padded = np.concatenate([[False], under, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max())


def calmar(r: np.ndarray, periods: int = PERIODS) -> float:
    mdd = max_drawdown(r)
    return float(annual_return(r, periods) / abs(mdd)) if mdd < 0 else float("nan")


def value_at_risk(r: np.ndarray, confidence: float = 0.95) -> float:
    """Historical one-period VaR as a positive loss fraction."""
    return float(-np.percentile(_arr(r), 100.0 * (1.0 - confidence)))


def conditional_value_at_risk(r: np.ndarray, confidence: float = 0.95) -> float:
    """Historical expected shortfall (CVaR) as a positive loss fraction."""
    r = _arr(r)
    k = int((len(r) - 1) * (1.0 - confidence))
    return float(-np.mean(np.partition(r, k)[: k + 1]))


def beta(r: np.ndarray, b: np.ndarray) -> float:
    r, b = _arr(r), _arr(b)
    vb = np.var(b, ddof=1)
    return float(np.cov(r, b, ddof=1)[0, 1] / vb) if vb > 0 else float("nan")


def alpha(r: np.ndarray, b: np.ndarray, periods: int = PERIODS) -> float:
    r, b = _arr(r), _arr(b)
    return float((1.0 + np.mean(r - beta(r, b) * b)) ** periods - 1.0)


def information_ratio(r: np.ndarray, b: np.ndarray, periods: int = PERIODS) -> float:
    active = _arr(r) - _arr(b)
    sd = np.std(active, ddof=1)
    return float(np.mean(active) / sd * math.sqrt(periods)) if sd > 0 else float("nan")


def win_rate(r: np.ndarray) -> float:
    r = _arr(r)
    traded = r[r != 0]
    return float((traded > 0).mean()) if len(traded) else float("nan")


def turnover(weights: np.ndarray) -> float:
    """Mean one-way turnover of a [T, N] weight history."""
    w = np.asarray(weights, dtype=np.float64)
    if len(w) < 2:
        return 0.0
    return float(np.abs(np.diff(w, axis=0)).sum(axis=1).mean() / 2.0)


def sharpe_interval(
    r: np.ndarray, confidence: float = 0.95, n_boot: int = 1000, block: int = 20, seed: int = 0, periods: int = PERIODS
) -> tuple[float, float]:
    """Bootstrap interval of the annualised Sharpe ratio: circular block bootstrap (arch's
    `CircularBlockBootstrap`; blocks of `block` days keep short-range dependence), `n_boot` resamples,
    fixed `seed` so the numbers reproduce. Returns (low, high) percentiles at (1 -/+ confidence) / 2."""
    r = _arr(r)
    if len(r) < 2 * block:
        return float("nan"), float("nan")

    def annual_sharpe(x: np.ndarray) -> np.ndarray:
        sd = x.std(ddof=1)
        return np.array([x.mean() / sd * math.sqrt(periods) if sd > 0 else np.nan])

    low, high = CircularBlockBootstrap(block, r, seed=seed).conf_int(
        annual_sharpe, reps=n_boot, method="percentile", size=confidence
    )[:, 0]
    return float(low), float(high)


@dataclass(frozen=True)
class Metrics:
    total_return: float
    annual_return: float
    annual_volatility: float
    sharpe: float
    sortino: float
    calmar: float
    max_drawdown: float
    max_drawdown_days: int
    var_95: float
    cvar_95: float
    win_rate: float
    beta: float | None = None
    alpha: float | None = None
    information_ratio: float | None = None
    turnover: float | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def compute_metrics(
    r: np.ndarray,
    benchmark: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    confidence: float = 0.95,
    periods: int = PERIODS,
) -> Metrics:
    """Every metric above for one daily return series (and optionally a benchmark and weights)."""
    r = _arr(r)
    return Metrics(
        total_return=total_return(r),
        annual_return=annual_return(r, periods),
        annual_volatility=annual_volatility(r, periods),
        sharpe=sharpe(r, periods=periods),
        sortino=sortino(r, periods),
        calmar=calmar(r, periods),
        max_drawdown=max_drawdown(r),
        max_drawdown_days=max_drawdown_duration(r),
        var_95=value_at_risk(r, confidence),
        cvar_95=conditional_value_at_risk(r, confidence),
        win_rate=win_rate(r),
        beta=beta(r, benchmark) if benchmark is not None else None,
        alpha=alpha(r, benchmark, periods) if benchmark is not None else None,
        information_ratio=information_ratio(r, benchmark, periods) if benchmark is not None else None,
        turnover=turnover(weights) if weights is not None else None,
    )
