"""Statistics that account for how many strategies were tried, on daily net returns (arch's bootstrap).

- `sharpe_interval`: the annualised Sharpe ratio with a stationary-bootstrap interval (Politis and Romano
  1994; the mean block length by Politis and White 2004, `arch.bootstrap.optimal_block_length`);
- `paired_sharpe_difference`: the Sharpe ratio of a strategy minus a benchmark's, both resampled on the
  same days, with its interval;
- `superior_predictive_ability`: Hansen's test (2005, J. Business & Economic Statistics 23(4)) that some
  strategy beats its benchmark, given that all of them were tried (`arch.bootstrap.SPA`), and the
  Romano-Wolf stepwise test naming which ones do, with family-wise error control (`arch.bootstrap.StepM`);
- `deflated_sharpe`: the probability that the best strategy's Sharpe ratio is above what the best of N
  unskilled strategies would show (Bailey and Lopez de Prado 2014, J. Portfolio Management 40(5)).

Every test here compares a strategy with its own benchmark through the daily difference of their
returns ("excess"): a strategy beats its benchmark when the mean excess is above zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from arch.bootstrap import SPA, StationaryBootstrap, StepM, optimal_block_length
from scipy.stats import kurtosis, norm, skew

PERIODS = 252
EULER = 0.5772156649015329


def annual_sharpe(r: np.ndarray, periods: int = PERIODS) -> float:
    sd = float(np.std(r, ddof=1))
    return float(np.mean(r) / sd * math.sqrt(periods)) if sd > 0 else float("nan")


def block_length(*series: np.ndarray) -> int:
    """Mean block length of the stationary bootstrap for these series: the largest Politis-White estimate,
    rounded up to whole days."""
    blocks = [float(optimal_block_length(np.asarray(s))["stationary"].iloc[0]) for s in series]
    return max(1, int(np.ceil(max(blocks))))


def sharpe_interval(r: np.ndarray, reps: int, seed: int, size: float = 0.95) -> tuple[float, float, float]:
    """(annualised Sharpe ratio, low, high) with a stationary-bootstrap percentile interval."""
    r = np.asarray(r, dtype=np.float64)

    def statistic(x: np.ndarray) -> np.ndarray:
        return np.array([annual_sharpe(x)])

    bs = StationaryBootstrap(block_length(r), r, seed=seed)
    low, high = bs.conf_int(statistic, reps=reps, method="percentile", size=size)[:, 0]
    return annual_sharpe(r), float(low), float(high)


def paired_sharpe_difference(
    r: np.ndarray, benchmark: np.ndarray, reps: int, seed: int, size: float = 0.95
) -> tuple[float, float, float]:
    """(Sharpe of `r` - Sharpe of `benchmark`, low, high): both resampled on the same days."""
    r, b = np.asarray(r, dtype=np.float64), np.asarray(benchmark, dtype=np.float64)

    def difference(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.array([annual_sharpe(x) - annual_sharpe(y)])

    bs = StationaryBootstrap(block_length(r, b), r, b, seed=seed)
    low, high = bs.conf_int(difference, reps=reps, method="percentile", size=size)[:, 0]
    return float(difference(r, b)[0]), float(low), float(high)


@dataclass(frozen=True)
class MultipleTest:
    """Hansen's SPA p-values (lower, consistent, upper) for "some strategy beats its benchmark", and the
    strategies StepM names as beating theirs at family-wise error `size`."""

    spa_pvalues: dict[str, float]
    superior: list[str]
    size: float
    strategies: int

    @property
    def p_value(self) -> float:
        """The consistent p-value (Hansen's recommended one)."""
        return self.spa_pvalues["consistent"]


def superior_predictive_ability(excess: dict[str, np.ndarray], reps: int, seed: int, size: float) -> MultipleTest:
    """SPA and StepM over `excess` (strategy -> its daily return minus its benchmark's): losses are the
    negated excess against a benchmark of zero loss, so a strategy's loss differential is its excess."""
    names = list(excess)
    matrix = np.column_stack([np.asarray(excess[n], dtype=np.float64) for n in names])
    zero = np.zeros(len(matrix))
    block = block_length(*matrix.T)
    spa = SPA(zero, -matrix, block_size=block, reps=reps, bootstrap="stationary", studentize=True, seed=seed)
    spa.compute()
    pvalues = {k: float(v) for k, v in spa.pvalues.items()}
    stepm = StepM(zero, -matrix, size=size, block_size=block, reps=reps, bootstrap="stationary", seed=seed)
    stepm.compute()
    superior = [names[int(i)] if not isinstance(i, str) else i for i in _column_indices(stepm.superior_models)]
    return MultipleTest(spa_pvalues=pvalues, superior=superior, size=size, strategies=len(names))


def _column_indices(found: object) -> list[int | str]:
    """StepM's `superior_models` (column indices for an array input)."""
    return [int(i) if not isinstance(i, str) else i for i in list(found or [])]  # type: ignore[call-overload]


def deflated_sharpe(returns: np.ndarray, trial_sharpes: np.ndarray) -> tuple[float, float]:
    """(deflated Sharpe ratio, the expected maximum Sharpe of the trials, both per period) of `returns`, the
    best of the trials whose per-period Sharpe ratios are `trial_sharpes` (Bailey and Lopez de Prado 2014):

        SR0 = sqrt(V[SR]) * ((1 - g) * Phi^-1(1 - 1/N) + g * Phi^-1(1 - 1/(N e))),  g = Euler's constant
        DSR = Phi((SR - SR0) * sqrt(T - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2))

    with SR per period (daily), T observations, kurt the raw (not excess) kurtosis. With one trial SR0 = 0
    and DSR is the probabilistic Sharpe ratio."""
    r = np.asarray(returns, dtype=np.float64)
    trials = np.asarray(trial_sharpes, dtype=np.float64)
    trials = trials[np.isfinite(trials)]
    n = len(trials)
    sr = float(np.mean(r) / np.std(r, ddof=1))
    if n > 1:
        var = float(np.var(trials, ddof=1))
        sr0 = math.sqrt(var) * ((1 - EULER) * norm.ppf(1 - 1 / n) + EULER * norm.ppf(1 - 1 / (n * math.e)))
    else:
        sr0 = 0.0
    g3, g4 = float(skew(r)), float(kurtosis(r, fisher=False))
    denom = math.sqrt(max(1e-12, 1 - g3 * sr + (g4 - 1) / 4 * sr * sr))
    return float(norm.cdf((sr - sr0) * math.sqrt(len(r) - 1) / denom)), float(sr0)
