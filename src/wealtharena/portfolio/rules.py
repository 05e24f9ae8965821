"""The risk gate's rules, one function each, on K portfolios at once ([K, N] weights).

Each function takes every input explicitly and returns what it decided (a mask of cut holdings, a
scale); where noted it also cuts the weights `w` in place, the way the gate uses it on the hot path.
`RiskManager.apply` (portfolio/risk.py) runs them in their fixed order and keeps the state between
days. All are plain numpy: a step of the gate is a few dozen small array operations.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from wealtharena.arrays import nz
from wealtharena.portfolio.limits import RiskLimits

NORMAL, REDUCING, HALTED = 0, 1, 2
TOL = 1e-9


# ------------------------------------------------------------------------------ helpers
def bitsets(mask: np.ndarray) -> np.ndarray:
    """[..., N] bool (N <= 64) -> [...] uint64 with bit j set where mask[..., j]."""
    packed = np.packbits(mask, axis=-1, bitorder="little")
    out = np.zeros(mask.shape[:-1] + (8,), dtype=np.uint8)
    out[..., : packed.shape[-1]] = packed
    return out.view("<u8")[..., 0].astype(np.uint64)


def sample_std(x: np.ndarray) -> np.ndarray:
    """Sample standard deviation along the last axis (ddof=1), without numpy's slow generic path."""
    n = x.shape[1]
    s1 = np.add.reduce(x, 1)
    var = (np.add.reduce(x * x, 1) - s1 * s1 / n) / (n - 1)
    return np.sqrt(np.maximum(var, 0.0))


# --------------------------------------------------------------------- 1. drawdown state
def drawdown_transition(
    state: np.ndarray,
    peak: np.ndarray,
    since: np.ndarray,
    dd: np.ndarray,
    value: np.ndarray,
    t: int | np.ndarray,
    limits: RiskLimits,
) -> tuple[np.ndarray, np.ndarray]:
    """Move each book's drawdown state (in place: `state`, `peak`, `since`, `dd`) for drawdown `dd`;
    `since` is the day a book entered its current abnormal state.

    NORMAL -> REDUCING at `max_drawdown`, back to NORMAL below it, or after `reduce_after` days with the
    peak reset to the current value (never with -1); any -> HALTED at `halt_drawdown`; HALTED -> NORMAL
    after `resume_after` days with the peak reset (never with -1). Returns the masks of the books that
    resumed from a halt today and of those that left reduce-only by its time limit."""
    halt = (dd >= limits.halt_drawdown) & (state != HALTED)
    if nz(halt):
        state[halt] = HALTED
        np.copyto(since, t, where=halt)
    resume = np.zeros(len(state), dtype=bool)
    if nz(state == HALTED):
        resume = (state == HALTED) & (limits.resume_after >= 0) & (t - since >= limits.resume_after) & ~halt
        if nz(resume):
            state[resume] = NORMAL
            peak[resume] = value[resume]
            dd[resume] = 0.0
    enter = (state == NORMAL) & (dd >= limits.max_drawdown)
    state[enter] = REDUCING
    np.copyto(since, t, where=enter)
    state[(state == REDUCING) & (dd < limits.max_drawdown)] = NORMAL
    expire = (state == REDUCING) & (limits.reduce_after >= 0) & (t - since >= limits.reduce_after)
    if nz(expire):
        state[expire] = NORMAL
        peak[expire] = value[expire]
        dd[expire] = 0.0
    return resume, expire


# ------------------------------------------------------------------ 2. stops and exits
def exits(
    entry: np.ndarray, close: np.ndarray, stop_ratio: np.ndarray, take_ratio: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(stop, take) masks [K, N]: with r = entry / close (0 when flat), a stop-loss where r >= 1 / (1 - sl)
    and a take-profit where 0 < r <= 1 / (1 + tp) (`stop_ratio`, `take_ratio` [K, 1])."""
    r = entry / close
    return r >= stop_ratio, (r <= take_ratio) & (r > 0.0)


# ---------------------------------------------------------------- 4. position cap
def cap_positions(w: np.ndarray, cap: np.ndarray) -> np.ndarray | None:
    """Cut every weight above `cap` ([K, 1]) to it, in place; the mask of capped holdings, or None."""
    capped = w > cap
    if not nz(capped):
        return None
    np.minimum(w, cap, out=w)
    return capped


# ------------------------------------------------------------------ 5. correlation
def correlation_cuts_bits(
    w: np.ndarray, hot_bits: np.ndarray, bits: np.ndarray, min_weight: np.ndarray
) -> np.ndarray | None:
    """The correlation rule on uint64 bit sets (N <= 64): of two holdings above `min_weight` ([K, 1])
    whose pair is hot (`hot_bits` [N] or [K, N]: bit b of entry a set when (a, b) is hot), the smaller
    is cut; holdings are visited from the largest down (on a tie the earlier asset first), and one is
    cut when a holding already kept is hot with it. Computed in rounds: a holding is kept once every
    larger conflicting holding is cut, cut once a larger conflicting holding is kept; each round
    decides at least one holding. Returns the mask of holdings to cut, or None."""
    k, n = w.shape
    big = w > min_weight
    conflict = hot_bits & bitsets(big)[:, None]  # [K, N]
    conflict = np.where(big, conflict, np.uint64(0))
    undecided = conflict != 0
    if not nz(undecided):
        return None
    order = np.argsort(-w, axis=1, kind="stable")
    visited = np.bitwise_or.accumulate(bits[order], axis=1)  # inclusive prefix, in visit order
    earlier = np.empty_like(visited)
    earlier[np.arange(k)[:, None], order] = visited ^ bits[order]  # holdings visited before each one
    higher = conflict & earlier
    kept = np.zeros(k, dtype=np.uint64)
    cut = np.zeros(undecided.shape, dtype=bool)
    for _ in range(n + 1):  # each round decides at least one holding
        if not nz(undecided):
            break
        open_ = (kept | bitsets(undecided))[:, None]
        cut_now = undecided & ((higher & kept[:, None]) != 0)
        keep_now = undecided & ((higher & open_) == 0)
        kept |= bitsets(keep_now)
        cut |= cut_now
        undecided &= ~(keep_now | cut_now)
    else:
        raise RuntimeError("correlation rule did not converge (a holding in conflict with itself?)")
    return cut


def correlation_cuts_masks(w: np.ndarray, hot: np.ndarray, min_weight: np.ndarray) -> np.ndarray | None:
    """The same rule on [K, N, N] boolean masks (any number of assets, per-portfolio thresholds):
    `hot` [K, N, N] (or [N, N]) says which pairs are correlated above each portfolio's limit."""
    n = w.shape[1]
    big = w > min_weight
    conflict = hot & big[:, :, None] & big[:, None, :] & ~np.eye(n, dtype=bool)
    if not nz(conflict):
        return None
    order = np.argsort(-w, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n)[None, :], axis=1)
    # higher[k, a, b] = 1 when b conflicts with a and is visited before it; "does a have a larger
    # conflicting holding in set S" is then (higher @ S) > 0, a small batched matmul
    higher = (conflict & (rank[:, None, :] < rank[:, :, None])).astype(np.float32)
    undecided = conflict.any(axis=2)
    kept = np.zeros(undecided.shape, dtype=np.float32)
    cut = np.zeros_like(undecided)
    while nz(undecided):
        cut_now = undecided & (np.matmul(higher, kept[:, :, None])[:, :, 0] > 0.0)
        keep_now = undecided & ~(np.matmul(higher, (kept + undecided)[:, :, None])[:, :, 0] > 0.0)
        kept += keep_now
        cut |= cut_now
        undecided &= ~(keep_now | cut_now)
    return cut


# --------------------------------------------------------------------- 6. leverage
def cap_leverage(w: np.ndarray, max_leverage: np.ndarray) -> np.ndarray | None:
    """Scale each book's weights down to sum to at most `max_leverage` ([K]), in place; the mask of books
    scaled, or None."""
    total = np.add.reduce(w, 1)
    over = total > max_leverage + TOL
    if not nz(over):
        return None
    w *= np.where(over, max_leverage / np.maximum(total, 1e-300), 1.0)[:, None]
    return over


# ------------------------------------------------------------- 8. volatility and VaR
def value_at_risk(p: np.ndarray, confidence: float, method: str, z: float) -> tuple[np.ndarray, np.ndarray]:
    """(VaR, CVaR) [K] of trailing daily returns `p` [K, L], as positive loss fractions.

    historical: VaR = -percentile(p, 100 (1 - c)) with linear interpolation, CVaR = minus the mean of the
    returns at or below the floor((L - 1)(1 - c))-th order statistic (empyrical's conventions);
    parametric: a normal with the sample mean and standard deviation (`z` = its c-quantile)."""
    m = p.shape[1]
    if method == "historical":
        pos = (m - 1) * (1.0 - confidence)
        lo = int(pos)
        if lo + 1 < m:
            # one partition: the lo+1 smallest land before index lo+1, the lo-th is their max
            part = np.partition(p, lo + 1, axis=1)
            tail = part[:, : lo + 1]
            q_lo = np.maximum.reduce(tail, 1)
            q = q_lo + (pos - lo) * (part[:, lo + 1] - q_lo)
        else:
            tail = np.partition(p, lo, axis=1)[:, : lo + 1]
            q = tail[:, lo]
        return -q, -np.add.reduce(tail, 1) / (lo + 1)
    sd = sample_std(p)
    mu = np.add.reduce(p, 1) / m
    return z * sd - mu, sd * norm.pdf(z) / (1.0 - confidence) - mu


def exposure_scale(vol: np.ndarray, var: np.ndarray, vol_target: np.ndarray, var_limit: np.ndarray) -> np.ndarray:
    """The factor in (0, 1] that brings each book's volatility and VaR within their limits (both are
    homogeneous of degree 1 in the weights of a long-only book, so one factor serves both)."""
    return np.minimum(np.minimum(vol_target / np.maximum(vol, 1e-300), var_limit / np.maximum(var, 1e-300)), 1.0)
