"""The risk gate between any agent (RL or baseline) and the book, for K portfolios at once.

`RiskManager.apply(target, t)` takes target weights [K, N] decided at the close of day t and
returns the weights it allows. Every cut carries a reason, flagged for the step (`events(k)`),
counted (`counts`) and logged at DEBUG. Steps, in this order:

1. drawdown state, from the value marked at the close of t against its peak:
   NORMAL -> REDUCING at `max_drawdown` (only trades that cut risk: no weight may rise);
   -> HALTED at `halt_drawdown` (everything to cash). REDUCING returns to NORMAL below
   `max_drawdown`; HALTED resumes after `resume_after_days` with the peak reset to the current
   value (`resume: cooldown`), or never (`resume: never`).              reasons: drawdown_reduce, drawdown_halt, resume
2. stop-loss / take-profit per position against its average entry price, then a re-entry
   cool-down of `reentry_cooldown_days` for that asset.                 reasons: stop_loss, take_profit, cooldown
3. options: regime multiplier on exposure, fractional Kelly cap, volatility-scaled sizes.
                                                                        reasons: regime, kelly, vol_sizing
4. position cap `max_position`.                                         reason: position_cap
5. correlation: of two holdings above `correlation_min_weight` whose trailing correlation
   exceeds `max_correlation`, the smaller (on a tie, the later in the universe) is cut to
   `correlation_min_weight`; holdings are visited from the largest down.  reason: correlation
6. leverage: the sum of weights is scaled to at most `max_leverage`.     reason: leverage
7. REDUCING: each weight is capped at its current weight.               reason: drawdown_reduce
8. volatility ceiling and VaR: trailing portfolio volatility (annualised, `vol_lookback` days)
   at most `vol_target`, and one-day VaR at `var_confidence` (`var_lookback` days, historical or
   parametric) at most `var_limit`; both scale every weight down by the same factor, which
   keeps steps 2-7 true.                                                reasons: vol_target, var_limit

Guarantee (tested by property tests): after `apply`, every weight is in [0, max_position], the
sum is at most max_leverage, no two holdings above the correlation size are correlated above
the limit, volatility and VaR are within their limits, a HALTED book holds nothing, a REDUCING
book increases nothing, and assets in cool-down are not held. Between decisions, prices drift:
limits hold at decision time, and the next decision restores them.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from wealtharena.config import RiskConfig
from wealtharena.errors import RiskInputError
from wealtharena.portfolio.market_risk import MarketRisk

log = logging.getLogger(__name__)

REASONS = ("position_cap", "vol_target", "stop_loss", "take_profit", "cooldown", "drawdown_reduce",
           "drawdown_halt", "var_limit", "correlation", "leverage", "regime", "kelly", "vol_sizing", "resume")
R = {name: i for i, name in enumerate(REASONS)}
STATES = ("normal", "reducing", "halted")
NORMAL, REDUCING, HALTED = 0, 1, 2
ANNUAL = 252.0
TOL = 1e-9
_nz = np.count_nonzero  # the cheapest "any" on a small bool array


@dataclass(frozen=True)
class RiskLimits:
    """Per-portfolio limits as arrays [K] (one row per agent), from each agent's RiskConfig."""

    max_position: np.ndarray
    max_leverage: np.ndarray
    vol_target: np.ndarray           # inf when off
    stop_loss: np.ndarray            # inf when off
    take_profit: np.ndarray          # inf when off
    cooldown_days: np.ndarray
    max_drawdown: np.ndarray
    halt_drawdown: np.ndarray
    resume_after: np.ndarray         # -1 = never
    var_limit: np.ndarray
    max_correlation: np.ndarray
    corr_min_weight: np.ndarray
    kelly_fraction: np.ndarray       # nan when off
    vol_sizing: np.ndarray           # bool
    regime_mult: np.ndarray | None   # [K, 3] or None when no agent uses it
    vol_lookback: int
    var_lookback: int
    var_confidence: float
    var_method: str

    @classmethod
    def from_configs(cls, risks: Sequence[RiskConfig]) -> RiskLimits:
        first = risks[0]
        shared = ("vol_lookback", "var_lookback", "var_confidence", "var_method", "correlation_lookback")
        for r in risks[1:]:
            for key in shared:
                if getattr(r, key) != getattr(first, key):
                    raise ValueError(f"risk.{key} must be the same for every agent")

        def arr(fn, dtype=np.float64) -> np.ndarray:
            return np.array([fn(r) for r in risks], dtype=dtype)

        regime = None
        if any(r.regime_multipliers for r in risks):
            regime = np.array([[(r.regime_multipliers or {}).get(g, 1.0) for g in ("bull", "bear", "volatile")]
                               for r in risks])
        return cls(
            max_position=arr(lambda r: r.max_position), max_leverage=arr(lambda r: r.max_leverage),
            vol_target=arr(lambda r: r.vol_target if r.vol_target is not None else np.inf),
            stop_loss=arr(lambda r: r.stop_loss if r.stop_loss is not None else np.inf),
            take_profit=arr(lambda r: r.take_profit if r.take_profit is not None else np.inf),
            cooldown_days=arr(lambda r: r.reentry_cooldown_days, np.int64),
            max_drawdown=arr(lambda r: r.max_drawdown), halt_drawdown=arr(lambda r: r.halt_drawdown),
            resume_after=arr(lambda r: r.resume_after_days if r.resume == "cooldown" else -1, np.int64),
            var_limit=arr(lambda r: r.var_limit), max_correlation=arr(lambda r: r.max_correlation),
            corr_min_weight=arr(lambda r: r.correlation_min_weight),
            kelly_fraction=arr(lambda r: r.kelly_fraction if r.kelly_fraction is not None else np.nan),
            vol_sizing=arr(lambda r: r.vol_scaled_sizing, bool), regime_mult=regime,
            vol_lookback=first.vol_lookback, var_lookback=first.var_lookback,
            var_confidence=first.var_confidence, var_method=first.var_method,
        )


def _bitsets(mask: np.ndarray) -> np.ndarray:
    """[..., N] bool (N <= 64) -> [...] uint64 with bit j set where mask[..., j]."""
    packed = np.packbits(mask, axis=-1, bitorder="little")
    out = np.zeros(mask.shape[:-1] + (8,), dtype=np.uint8)
    out[..., : packed.shape[-1]] = packed
    return out.view("<u8")[..., 0].astype(np.uint64)


def _std(x: np.ndarray) -> np.ndarray:
    """Sample standard deviation along the last axis (ddof=1), without numpy's slow generic path."""
    n = x.shape[1]
    s1 = np.add.reduce(x, 1)
    var = (np.add.reduce(x * x, 1) - s1 * s1 / n) / (n - 1)
    return np.sqrt(np.maximum(var, 0.0))


class RiskManager:
    """See the module docstring. State: drawdown state, peak, cool-downs, event flags and counts."""

    def __init__(self, limits: RiskLimits, market_risk: MarketRisk, clock_group: int = 1):
        """`clock_group`: with per-portfolio days, consecutive groups of this many portfolios
        always share a day (the agents of one episode), so trailing windows are gathered once
        per group."""
        self.limits = limits
        self.clock_group = int(clock_group)
        self.mr = market_risk
        k, n = len(limits.max_position), market_risk.returns.shape[1]
        self.k, self.n = k, n
        self._z = float(norm.ppf(limits.var_confidence))
        self._returns_t = np.ascontiguousarray(market_risk.returns.T)
        self._lmax = max(limits.vol_lookback, limits.var_lookback)
        self._var_pos = None
        self._any_stops = bool(np.isfinite(limits.stop_loss).any() or np.isfinite(limits.take_profit).any())
        self._any_kelly = bool(np.isfinite(limits.kelly_fraction).any())
        self._any_vol_sizing = bool(limits.vol_sizing.any())
        self._corr_thr = float(limits.max_correlation.min())
        self._mixed_corr_thr = bool((limits.max_correlation != self._corr_thr).any())
        # every date's "hot" pairs (correlation above the lowest agent threshold), as a [T, N, N] mask
        self._hot = market_risk.corr > self._corr_thr if market_risk.corr is not None else None
        # dates on which no asset is in two hot pairs: the rule then needs no ordering
        self._disjoint = (self._hot.sum(axis=2) <= 1).all(axis=1) if self._hot is not None else None
        self._earlier = np.tri(n, k=-1, dtype=bool)           # earlier[a, b]: b comes before a
        # the same mask as bit sets (up to 64 assets): hotbits[t, a] has bit b set when (a, b) is hot,
        # so the correlation rule works on [K, N] integers instead of [K, N, N] booleans
        self._bits = np.left_shift(np.uint64(1), np.arange(n, dtype=np.uint64)) if n <= 64 else None
        self._hotbits = _bitsets(self._hot) if self._hot is not None and self._bits is not None else None
        self._row_col = np.arange(k)[:, None]
        self._windows = None                  # [T-L+1, N, L] trailing-return windows, for per-row clocks
        # stop/take thresholds on r = entry / close: stop when r >= 1/(1-sl), take when r <= 1/(1+tp)
        self._stop_r = (1.0 / (1.0 - np.minimum(limits.stop_loss, 1.0 - 1e-12)))[:, None]
        self._take_r = np.where(np.isfinite(limits.take_profit), 1.0 / (1.0 + limits.take_profit), 0.0)[:, None]
        self._cooldown_days = limits.cooldown_days[:, None]
        self._rows = np.arange(k)
        self._options = limits.regime_mult is not None or self._any_kelly or self._any_vol_sizing
        self._lev_tol = limits.max_leverage + TOL
        self._vol_target = limits.vol_target
        self._no_assets = np.zeros((k, n), dtype=bool)
        self._no_assets.flags.writeable = False
        self._mp = limits.max_position[:, None]
        self._minw = limits.corr_min_weight[:, None]
        self._debug = log.isEnabledFor(logging.DEBUG)
        # state
        self.state = np.zeros(k, dtype=np.int8)
        self.peak = np.zeros(k)
        self.halted_at = np.zeros(k, dtype=np.int64)
        self.cooldown_until = np.zeros((k, n), dtype=np.int64)
        self.flags = np.zeros((k, len(REASONS)), dtype=bool)
        self.counts = np.zeros((k, len(REASONS)), dtype=np.int64)
        self.asset_flags = {name: np.zeros((k, n), dtype=bool) for name in ("stop_loss", "take_profit", "correlation", "position_cap")}
        self._abnormal = False
        self._cool_max = 0
        self.port_vol = np.zeros(k)
        self.var = np.zeros(k)
        self.cvar = np.zeros(k)
        self.drawdown = np.zeros(k)

    # ------------------------------------------------------------------ lifecycle
    def reset(self, value: np.ndarray, rows: np.ndarray | None = None) -> None:
        """Start fresh at `value` [K]: every portfolio, or only `rows` (indices or a [K] mask)."""
        sel = slice(None) if rows is None else rows
        self.state[sel] = NORMAL
        self.peak[sel] = value[sel]
        self.halted_at[sel] = 0
        self.cooldown_until[sel] = 0
        self.flags[sel] = False
        self.counts[sel] = 0
        self.drawdown = self.drawdown.copy()
        self.drawdown[sel] = 0.0
        self.port_vol[sel] = 0.0
        self.var[sel] = 0.0
        self.cvar[sel] = 0.0
        self._abnormal = bool(_nz(self.state != NORMAL))
        if rows is None:
            self._cool_max = 0

    def events(self, k: int) -> list[str]:
        """Reasons flagged for portfolio k at the last `apply`."""
        return [REASONS[j] for j in np.flatnonzero(self.flags[k])]

    def explain(self, k: int, tickers: Sequence[str]) -> list[str]:
        """Human-readable detail of the last step's asset-level cuts for portfolio k."""
        out = []
        for name, mask in self.asset_flags.items():
            for i in np.flatnonzero(mask[k]):
                out.append(f"{name}: {tickers[i]}")
        if self.flags[k, R["drawdown_halt"]]:
            out.append(f"drawdown_halt: drawdown {self.drawdown[k]:.1%} (state {STATES[self.state[k]]})")
        if self.flags[k, R["drawdown_reduce"]]:
            out.append(f"drawdown_reduce: drawdown {self.drawdown[k]:.1%}, no position may grow")
        return out

    # ------------------------------------------------------------------ checks
    def validate(self, target: np.ndarray) -> np.ndarray:
        target = np.asarray(target, dtype=np.float64)
        if target.shape != (self.k, self.n):
            raise RiskInputError(f"target weights must have shape ({self.k}, {self.n}) (agents, assets); got {target.shape}")
        if not np.isfinite(target).all():
            bad = np.argwhere(~np.isfinite(target))[0]
            raise RiskInputError(f"target weight for agent {bad[0]}, asset {bad[1]} is {target[tuple(bad)]}: weights must be finite")
        if (target < -TOL).any():
            bad = np.argwhere(target < -TOL)[0]
            raise RiskInputError(f"target weight for agent {bad[0]}, asset {bad[1]} is {target[tuple(bad)]:.4g}: "
                                 "the book is long-only, weights must be >= 0")
        sums = target.sum(axis=1)
        over = sums > self.limits.max_leverage + 1e-6
        if _nz(over):
            k = int(np.argmax(over))
            raise RiskInputError(f"target weights of agent {k} sum to {sums[k]:.4f}, above max_leverage "
                                 f"{self.limits.max_leverage[k]}: map actions to weights that sum to at most that")
        return np.maximum(target, 0.0)

    # ------------------------------------------------------------------ the gate
    def apply(self, target: np.ndarray, t: int, value: np.ndarray, current: np.ndarray,
              close: np.ndarray, entry: np.ndarray, validate: bool = True) -> np.ndarray:
        """Allowed weights [K, N] for targets decided at the close of t (see module docstring).

        `t` is one day for every portfolio (an int) or one day per portfolio (an int array [K],
        for many independent episodes stepped together); `close` is then [N] or [K, N].
        value [K] and current weights [K, N] are marked at the close of t; entry [K, N] is each
        position's average entry price (0 when flat). The hot path: few, fused numpy operations,
        and whole steps skipped when their limit cannot bind.
        """
        lim = self.limits
        per_row = not isinstance(t, (int, np.integer))
        tc = t[:, None] if per_row else t                  # broadcasts against [K, N]
        w = self.validate(target) if validate else np.array(target, dtype=np.float64)
        flags = self.flags
        flags.fill(False)

        # 1. drawdown state machine (only when some book is or may become abnormal)
        np.maximum(self.peak, value, out=self.peak)
        dd = 1.0 - value / self.peak
        self.drawdown = dd
        if self._abnormal or _nz(dd >= lim.max_drawdown):
            self._drawdown_states(dd, value, t)

        # 2. stops and cool-downs: r = entry / close (0 when flat)
        if self._any_stops:
            r = entry / close
            stop = r >= self._stop_r
            take = (r <= self._take_r) & (r > 0.0)
            exits = stop | take
            if _nz(exits):
                self.asset_flags["stop_loss"] = stop
                self.asset_flags["take_profit"] = take
                flags[:, R["stop_loss"]] = stop.any(axis=1)
                flags[:, R["take_profit"]] = take.any(axis=1)
                np.copyto(self.cooldown_until, tc + self._cooldown_days, where=exits)
                self._cool_max = max(self._cool_max, int(self.cooldown_until.max()))
                w[exits] = 0.0
            else:
                self.asset_flags["stop_loss"] = self.asset_flags["take_profit"] = self._no_assets
        if (t.min() if per_row else t) < self._cool_max:
            blocked = (self.cooldown_until > tc) & (w > 0)
            if _nz(blocked):
                flags[:, R["cooldown"]] |= blocked.any(axis=1)
                w[blocked] = 0.0

        # 3. options
        if self._options:
            w = self._optional_sizing(w, t, per_row)

        # 4. position cap
        capped = w > self._mp
        if _nz(capped):
            np.minimum(w, self._mp, out=w)
            flags[:, R["position_cap"]] = capped.any(axis=1)
            self.asset_flags["position_cap"] = capped
        else:
            self.asset_flags["position_cap"] = self._no_assets

        # 5. correlation
        self.asset_flags["correlation"] = self._no_assets
        self._correlation(w, t, per_row)

        # 6. leverage
        total = np.add.reduce(w, 1)
        over = total > self._lev_tol
        if _nz(over):
            w *= np.where(over, lim.max_leverage / np.maximum(total, 1e-300), 1.0)[:, None]
            flags[:, R["leverage"]] = over

        # 7. drawdown: reduce-only, or all to cash
        if self._abnormal:
            state = self.state
            reducing = state == REDUCING
            if _nz(reducing):
                np.minimum(w, np.where(reducing[:, None], current, np.inf), out=w)
                flags[:, R["drawdown_reduce"]] = reducing
            halted = state == HALTED
            if _nz(halted):
                w[halted] = 0.0
                flags[:, R["drawdown_halt"]] = halted

        # 8. volatility ceiling and VaR (both homogeneous of degree 1 in the weights)
        self._scale_for_vol_and_var(w, t)

        if _nz(flags):
            self.counts += flags
            if self._debug:
                for k in np.flatnonzero(flags.any(axis=1)):
                    log.debug("t=%d agent %d risk events: %s", t, k, ", ".join(self.events(int(k))))
        return w

    def _drawdown_states(self, dd: np.ndarray, value: np.ndarray, t: int) -> None:
        lim, state, flags = self.limits, self.state, self.flags
        halt = (dd >= lim.halt_drawdown) & (state != HALTED)
        if _nz(halt):
            state[halt] = HALTED
            np.copyto(self.halted_at, t, where=halt)
        if _nz(state == HALTED):
            resume = (state == HALTED) & (lim.resume_after >= 0) & (t - self.halted_at >= lim.resume_after) & ~halt
            if _nz(resume):
                state[resume] = NORMAL
                self.peak[resume] = value[resume]
                dd[resume] = 0.0
                flags[resume, R["resume"]] = True
        state[(state == NORMAL) & (dd >= lim.max_drawdown)] = REDUCING
        state[(state == REDUCING) & (dd < lim.max_drawdown)] = NORMAL
        self._abnormal = bool(_nz(state != NORMAL))

    def _optional_sizing(self, w: np.ndarray, t: int | np.ndarray, per_row: bool) -> np.ndarray:
        lim, flags = self.limits, self.flags
        if lim.regime_mult is not None and self.mr.regime is not None:
            regime = self.mr.regime[t].astype(np.int64)
            mult = lim.regime_mult[self._rows, regime] if per_row else lim.regime_mult[:, int(regime)]
            cut = (mult < 1.0) & (w.sum(axis=1) > 0)
            if _nz(cut):
                w *= mult[:, None]
                flags[:, R["regime"]] = cut
        if self._any_kelly:
            cap = np.where(np.isnan(lim.kelly_fraction)[:, None], np.inf,
                           lim.kelly_fraction[:, None] * np.maximum(self.mr.kelly[t], 0.0))
            over = w > cap + TOL
            if _nz(over):
                np.minimum(w, cap, out=w)
                flags[:, R["kelly"]] = over.any(axis=1)
        if self._any_vol_sizing:
            vol = self.mr.vol[t]
            ref = np.median(vol, axis=-1, keepdims=True)
            scale = np.where(vol > ref, ref / np.maximum(vol, 1e-12), 1.0)
            sized = lim.vol_sizing[:, None] & (scale < 1.0) & (w > 0)
            if _nz(sized):
                w = np.where(lim.vol_sizing[:, None], w * scale, w)
                flags[:, R["vol_sizing"]] = sized.any(axis=1)
        return w

    def _hot_at(self, t: int | np.ndarray, per_row: bool) -> np.ndarray:
        """Symmetric mask of asset pairs whose trailing correlation exceeds the lowest agent
        threshold: [N, N] for one day, [K, N, N] for per-row days."""
        if self._hot is not None:
            return self._hot[t]
        if per_row:
            return np.stack([self.mr.corr_at(int(s)) > self._corr_thr for s in t])
        return self.mr.corr_at(t) > self._corr_thr

    def _correlation(self, w: np.ndarray, t: int | np.ndarray, per_row: bool) -> None:
        if self._hotbits is not None and not self._mixed_corr_thr:
            self._correlation_bits(w, t)
        else:
            self._correlation_masks(w, t, per_row)

    def _correlation_bits(self, w: np.ndarray, t: int | np.ndarray) -> None:
        """`_correlation_masks` on bit sets: a holding's conflicts, the holdings visited before it,
        the kept and the undecided ones are uint64 masks over assets, so every round is a few
        [K, N] integer operations. Same rounds, same result (tested against the masks)."""
        bits = self._bits
        big = w > self._minw
        conflict = self._hotbits[t] & _bitsets(big)[:, None]            # [K, N] (or [N] -> [K, N])
        conflict = np.where(big, conflict, np.uint64(0))
        undecided = conflict != 0
        if not _nz(undecided):
            return
        order = np.argsort(-w, axis=1, kind="stable")
        visited = np.bitwise_or.accumulate(bits[order], axis=1)         # inclusive prefix, in visit order
        earlier = np.empty_like(visited)
        earlier[self._row_col, order] = visited ^ bits[order]           # holdings visited before each one
        higher = conflict & earlier
        kept = np.zeros(self.k, dtype=np.uint64)
        cut = np.zeros(undecided.shape, dtype=bool)
        for _ in range(self.n + 1):                    # each round decides at least one holding
            if not _nz(undecided):
                break
            open_ = (kept | _bitsets(undecided))[:, None]
            cut_now = undecided & ((higher & kept[:, None]) != 0)
            keep_now = undecided & ((higher & open_) == 0)
            kept |= _bitsets(keep_now)
            cut |= cut_now
            undecided &= ~(keep_now | cut_now)
        else:
            raise RuntimeError("correlation rule did not converge (a holding in conflict with itself?)")
        np.copyto(w, np.broadcast_to(self._minw, w.shape), where=cut)
        self.asset_flags["correlation"] = cut
        self.flags[:, R["correlation"]] = cut.any(axis=1)

    def _correlation_masks(self, w: np.ndarray, t: int | np.ndarray, per_row: bool) -> None:
        """Of every conflicting pair (both above the size, correlation above the limit) keep the
        larger holding. Holdings are visited from the largest down (on a tie the earlier asset
        first); one is cut when a holding already kept conflicts with it. Computed for all
        portfolios at once in rounds: a holding is kept once every larger conflicting holding is
        cut, and cut once a larger conflicting holding is kept. Each round decides at least the
        largest undecided holding of each conflict group, so it ends; usually in two rounds."""
        big = w > self._minw
        conflict = self._hot_at(t, per_row) & big[:, :, None] & big[:, None, :]
        if self._mixed_corr_thr:
            corr = self.mr.corr[t] if self.mr.corr is not None else (
                np.stack([self.mr.corr_at(int(s)) for s in t]) if per_row else self.mr.corr_at(t))
            conflict &= corr > self.limits.max_correlation[:, None, None]
        if not _nz(conflict):
            return
        if self._disjoint is not None and (self._disjoint[t].all() if per_row else self._disjoint[t]):
            # every holding conflicts with at most one other: cut it when that one is larger, or
            # as large and earlier in the universe (the greedy rule's result, in one pass)
            wa, wb = w[:, :, None], w[:, None, :]
            cut = (conflict & ((wb > wa) | ((wb == wa) & self._earlier))).any(axis=2)
            np.copyto(w, np.broadcast_to(self._minw, w.shape), where=cut)
            self.asset_flags["correlation"] = cut
            self.flags[:, R["correlation"]] = cut.any(axis=1)
            return
        order = np.argsort(-w, axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(self.n)[None, :], axis=1)
        # higher[k, a, b] = 1 when b conflicts with a and is visited before it; "does a have a
        # larger conflicting holding in set S" is then (higher @ S) > 0, a small batched matmul
        higher = (conflict & (rank[:, None, :] < rank[:, :, None])).astype(np.float32)
        undecided = conflict.any(axis=2)
        kept = np.zeros(undecided.shape, dtype=np.float32)
        cut = np.zeros_like(undecided)
        while _nz(undecided):
            cut_now = undecided & (np.matmul(higher, kept[:, :, None])[:, :, 0] > 0.0)
            keep_now = undecided & ~(np.matmul(higher, (kept + undecided)[:, :, None])[:, :, 0] > 0.0)
            kept += keep_now
            cut |= cut_now
            undecided &= ~(keep_now | cut_now)
        np.copyto(w, np.broadcast_to(self._minw, w.shape), where=cut)
        self.asset_flags["correlation"] = cut
        self.flags[:, R["correlation"]] = cut.any(axis=1)

    def portfolio_returns(self, w: np.ndarray, t: int | np.ndarray) -> np.ndarray:
        """Trailing daily returns [K, L] of today's weights over the last max(vol, VaR) lookback
        (fewer days near the start of the data when one day `t` is given)."""
        if isinstance(t, (int, np.integer)):
            a = max(0, t - self._lmax + 1)
            return w @ self._returns_t[:, a:t + 1]
        if t.min() < self._lmax - 1:
            raise ValueError(f"per-portfolio days must leave {self._lmax} days of history (row >= {self._lmax - 1}); "
                             f"got row {int(t.min())}")
        if self._windows is None:
            self._windows = np.lib.stride_tricks.sliding_window_view(self.mr.returns, self._lmax, axis=0)
        g = self.clock_group
        windows = self._windows[t[::g] - (self._lmax - 1)]                  # [K / g, N, L]
        return np.matmul(w.reshape(-1, g, self.n), windows).reshape(self.k, -1)

    def _scale_for_vol_and_var(self, w: np.ndarray, t: int | np.ndarray) -> None:
        lim = self.limits
        p = self.portfolio_returns(w, t)
        if p.shape[1] < 3:
            return
        vol = _std(p[:, -lim.vol_lookback:]) * np.sqrt(ANNUAL)
        pvar = p[:, -lim.var_lookback:]
        m = pvar.shape[1]
        if lim.var_method == "historical":
            pos = (m - 1) * (1.0 - lim.var_confidence)
            lo = int(pos)
            if lo + 1 < m:
                # one partition: the lo+1 smallest land before index lo+1, the lo-th is their max
                part = np.partition(pvar, lo + 1, axis=1)
                tail = part[:, : lo + 1]
                q_lo = np.maximum.reduce(tail, 1)
                q = q_lo + (pos - lo) * (part[:, lo + 1] - q_lo)
            else:
                tail = np.partition(pvar, lo, axis=1)[:, : lo + 1]
                q = tail[:, lo]
            var = -q
            cvar = -np.add.reduce(tail, 1) / (lo + 1)
        else:
            sd = _std(pvar)
            mu = np.add.reduce(pvar, 1) / m
            var = self._z * sd - mu
            cvar = sd * norm.pdf(self._z) / (1.0 - lim.var_confidence) - mu
        scale = np.minimum(np.minimum(self._vol_target / np.maximum(vol, 1e-300),
                                      lim.var_limit / np.maximum(var, 1e-300)), 1.0)
        cut = scale < 1.0
        if _nz(cut):
            # a hair below the limit so that the scaled portfolio passes `<= limit` in floating point
            scale[cut] *= 1.0 - 1e-9
            w *= scale[:, None]
            self.flags[:, R["vol_target"]] = vol > lim.vol_target
            self.flags[:, R["var_limit"]] = var > lim.var_limit
        self.port_vol[:] = vol * scale
        self.var[:] = var * scale
        self.cvar[:] = cvar * scale
