"""The risk gate between any agent (RL or baseline) and the book, for K portfolios at once.

`RiskManager.apply(target, t)` takes target weights [K, N] decided at the close of day t and
returns the weights it allows. Every cut carries a reason, flagged for the step (`events(k)`),
counted (`counts`) and logged at DEBUG. Steps, in this order:

1. drawdown state, from the value marked at the close of t against its peak:
   NORMAL -> REDUCING at `max_drawdown` (only trades that cut risk: no weight may rise);
   -> HALTED at `halt_drawdown` (everything to cash). REDUCING returns to NORMAL below
   `max_drawdown`, or after `reduce_after_days` with the peak reset to the current value
   (`reduce_exit: cooldown`; a book in cash would otherwise stay reduce-only for good); HALTED
   resumes after `resume_after_days` with the peak reset (`resume: cooldown`), or never.
                                          reasons: drawdown_reduce, drawdown_halt, resume, reduce_exit
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

Each rule is a function of explicit inputs in `portfolio/rules.py`; this class keeps the state
between days (drawdown state, peak, cool-downs) and runs the rules in this order.

Guarantee (tested by property tests): after `apply`, every weight is in [0, max_position], the
sum is at most max_leverage, no two holdings above the correlation size are correlated above
the limit, volatility and VaR are within their limits, a HALTED book holds nothing, a REDUCING
book increases nothing, and assets in cool-down are not held. Between decisions, prices drift:
limits hold at decision time, and the next decision restores them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy.stats import norm

from wealtharena.arrays import nz
from wealtharena.errors import RiskInputError
from wealtharena.portfolio import rules
from wealtharena.portfolio.limits import RiskLimits
from wealtharena.portfolio.market_risk import MarketRisk
from wealtharena.portfolio.rules import HALTED, NORMAL, REDUCING, TOL

log = logging.getLogger(__name__)

REASONS = (
    "position_cap",
    "vol_target",
    "stop_loss",
    "take_profit",
    "cooldown",
    "drawdown_reduce",
    "drawdown_halt",
    "var_limit",
    "correlation",
    "leverage",
    "regime",
    "kelly",
    "vol_sizing",
    "resume",
    "reduce_exit",
)
R = {name: i for i, name in enumerate(REASONS)}
STATES = ("normal", "reducing", "halted")
ANNUAL = 252.0

__all__ = ["HALTED", "NORMAL", "REASONS", "REDUCING", "STATES", "RiskLimits", "RiskManager"]


class CorrelationTable:
    """Which asset pairs are "hot" (correlated above a portfolio's `max_correlation`) on a day, and the
    correlation rule over them: on uint64 bit sets when every portfolio has the same threshold and
    N <= 64 (the usual case), else on [K, N, N] masks."""

    def __init__(self, market_risk: MarketRisk, thresholds: np.ndarray):
        self.market_risk = market_risk
        self.thresholds = thresholds
        self.lowest = float(thresholds.min())
        self.mixed = bool((thresholds != self.lowest).any())
        n = market_risk.returns.shape[1]
        # every date's pairs above the lowest threshold, as a [T, N, N] mask (when precomputed)
        self.hot = market_risk.corr > self.lowest if market_risk.corr is not None else None
        self.bits = np.left_shift(np.uint64(1), np.arange(n, dtype=np.uint64)) if n <= 64 else None
        # hot_bits[t, a] has bit b set when (a, b) is hot
        self.hot_bits = None
        if self.hot is not None and self.bits is not None and not self.mixed:
            self.hot_bits = rules.bitsets(self.hot)

    def hot_at(self, t: int | np.ndarray, per_row: bool) -> np.ndarray:
        """Pairs above the lowest threshold: [N, N] for one day, [K, N, N] for per-row days."""
        if self.hot is not None:
            return self.hot[t]
        if per_row:
            return np.stack([self.market_risk.corr_at(int(s)) > self.lowest for s in np.asarray(t)])
        return self.market_risk.corr_at(int(t)) > self.lowest

    def cuts(self, w: np.ndarray, t: int | np.ndarray, per_row: bool, min_weight: np.ndarray) -> np.ndarray | None:
        """The holdings the correlation rule cuts (`rules.correlation_cuts_*`), or None."""
        if self.hot_bits is not None and self.bits is not None:
            return rules.correlation_cuts_bits(w, self.hot_bits[t], self.bits, min_weight)
        hot = self.hot_at(t, per_row)
        if self.mixed:
            corr = (
                self.market_risk.corr[t]
                if self.market_risk.corr is not None
                else (
                    np.stack([self.market_risk.corr_at(int(s)) for s in np.asarray(t)])
                    if per_row
                    else self.market_risk.corr_at(int(t))
                )
            )
            hot = hot & (corr > self.thresholds[:, None, None])
        return rules.correlation_cuts_masks(w, hot, min_weight)


class TrailingReturns:
    """Trailing daily returns [K, L] of today's weights over the last `lookback` days: one day for every
    portfolio, or one day per portfolio (groups of `clock_group` portfolios sharing a day)."""

    def __init__(self, returns: np.ndarray, lookback: int, clock_group: int):
        self.returns = returns
        self.returns_t = np.ascontiguousarray(returns.T)
        self.lookback = lookback
        self.group = clock_group
        self._windows: np.ndarray | None = None  # [T-L+1, N, L] strided view, built on first use

    def of(self, w: np.ndarray, t: int | np.ndarray) -> np.ndarray:
        """(fewer days near the start of the data when one day `t` is given)"""
        if isinstance(t, (int, np.integer)):
            a = max(0, int(t) - self.lookback + 1)
            return w @ self.returns_t[:, a : int(t) + 1]
        if t.min() < self.lookback - 1:
            raise ValueError(
                f"per-portfolio days must leave {self.lookback} days of history "
                f"(row >= {self.lookback - 1}); got row {int(t.min())}"
            )
        if self._windows is None:
            self._windows = np.lib.stride_tricks.sliding_window_view(self.returns, self.lookback, axis=0)
        g = self.group
        windows = self._windows[t[::g] - (self.lookback - 1)]  # [K / g, N, L]
        k, n = w.shape
        return np.matmul(w.reshape(-1, g, n), windows).reshape(k, -1)


class RiskManager:
    """See the module docstring. State: drawdown state, peak, cool-downs, event flags and counts."""

    def __init__(self, limits: RiskLimits, market_risk: MarketRisk, clock_group: int = 1):
        """`clock_group`: with per-portfolio days, consecutive groups of this many portfolios
        always share a day (the agents of one episode), so trailing windows are gathered once
        per group."""
        self.limits = limits
        self.market_risk = market_risk
        k, n = len(limits.max_position), market_risk.returns.shape[1]
        self.k, self.n = k, n
        self.correlations = CorrelationTable(market_risk, limits.max_correlation)
        self.trailing = TrailingReturns(market_risk.returns, max(limits.vol_lookback, limits.var_lookback), clock_group)
        self._z = float(norm.ppf(limits.var_confidence))
        self._any_stops = bool(np.isfinite(limits.stop_loss).any() or np.isfinite(limits.take_profit).any())
        # stop/take thresholds on r = entry / close: stop when r >= 1/(1-sl), take when r <= 1/(1+tp)
        self._stop_ratio = (1.0 / (1.0 - np.minimum(limits.stop_loss, 1.0 - 1e-12)))[:, None]
        self._take_ratio = np.where(np.isfinite(limits.take_profit), 1.0 / (1.0 + limits.take_profit), 0.0)[:, None]
        self._options = (
            limits.regime_mult is not None
            or bool(np.isfinite(limits.kelly_fraction).any())
            or bool(limits.vol_sizing.any())
        )
        self._no_assets = np.zeros((k, n), dtype=bool)
        self._no_assets.flags.writeable = False
        self._debug = log.isEnabledFor(logging.DEBUG)
        # state
        self.state = np.zeros(k, dtype=np.int8)
        self.peak = np.zeros(k)
        self.state_since = np.zeros(k, dtype=np.int64)  # the day a book entered its abnormal state
        self.cooldown_until = np.zeros((k, n), dtype=np.int64)
        self.flags = np.zeros((k, len(REASONS)), dtype=bool)
        self.counts = np.zeros((k, len(REASONS)), dtype=np.int64)
        self.asset_flags = {
            name: self._no_assets for name in ("stop_loss", "take_profit", "correlation", "position_cap")
        }
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
        self.state_since[sel] = 0
        self.cooldown_until[sel] = 0
        self.flags[sel] = False
        self.counts[sel] = 0
        self.drawdown = self.drawdown.copy()
        self.drawdown[sel] = 0.0
        self.port_vol[sel] = 0.0
        self.var[sel] = 0.0
        self.cvar[sel] = 0.0
        self._abnormal = bool(nz(self.state != NORMAL))
        if rows is None:
            self._cool_max = 0

    def events(self, k: int) -> list[str]:
        """Reasons flagged for portfolio k at the last `apply`."""
        return [REASONS[j] for j in np.flatnonzero(self.flags[k])]

    def explain(self, k: int, tickers: Sequence[str]) -> list[str]:
        """Human-readable detail of the last step's asset-level cuts for portfolio k."""
        out = []
        for name, mask in self.asset_flags.items():
            for i in np.flatnonzero(mask[k]).tolist():
                out.append(f"{name}: {tickers[i]}")
        if self.flags[k, R["drawdown_halt"]]:
            out.append(f"drawdown_halt: drawdown {self.drawdown[k]:.1%} (state {STATES[int(self.state[k])]})")
        if self.flags[k, R["drawdown_reduce"]]:
            out.append(f"drawdown_reduce: drawdown {self.drawdown[k]:.1%}, no position may grow")
        return out

    # ------------------------------------------------------------------ checks
    def check_targets(self, target: np.ndarray) -> np.ndarray:
        """`target` as float64 [K, N] if it is a valid long-only target (finite, >= 0), else a `RiskInputError`.
        A target whose weights sum above `max_leverage` is valid: the gate's leverage step scales it down."""
        target = np.asarray(target, dtype=np.float64)
        if target.shape != (self.k, self.n):
            raise RiskInputError(
                f"target weights must have shape ({self.k}, {self.n}) (agents, assets); got {target.shape}"
            )
        if not np.isfinite(target).all():
            bad = np.argwhere(~np.isfinite(target))[0]
            raise RiskInputError(
                f"target weight for agent {bad[0]}, asset {bad[1]} is {target[tuple(bad)]}: weights must be finite"
            )
        if (target < -TOL).any():
            bad = np.argwhere(target < -TOL)[0]
            raise RiskInputError(
                f"target weight for agent {bad[0]}, asset {bad[1]} is {target[tuple(bad)]:.4g}: "
                "the book is long-only, weights must be >= 0"
            )
        return np.maximum(target, 0.0)

    def mark(self, value: np.ndarray) -> np.ndarray:
        """Each book's peak and drawdown at a new mark-to-market (after a step's fills): the one drawdown
        the gate, the reward and the observation all read. Returns the drawdown [K]."""
        np.maximum(self.peak, value, out=self.peak)
        self.drawdown = 1.0 - value / self.peak
        return self.drawdown

    # ------------------------------------------------------------------ the gate
    def apply(
        self,
        target: np.ndarray,
        t: int | np.ndarray,
        value: np.ndarray,
        current: np.ndarray,
        close: np.ndarray,
        entry: np.ndarray,
        check: bool = True,
    ) -> np.ndarray:
        """Allowed weights [K, N] for targets decided at the close of t (see module docstring).

        `t` is one day for every portfolio (an int) or one day per portfolio (an int array [K],
        for many independent episodes stepped together); `close` is then [N] or [K, N].
        value [K] and current weights [K, N] are marked at the close of t; entry [K, N] is each
        position's average entry price (0 when flat). `check`: validate `target` first (callers
        that build valid targets themselves, like the envs, skip it). Whole steps are skipped when
        their limit cannot bind.
        """
        lim = self.limits
        per_row = not isinstance(t, (int, np.integer))
        tc = t[:, None] if per_row else t  # type: ignore[index]  # broadcasts against [K, N]
        w = self.check_targets(target) if check else np.array(target, dtype=np.float64)
        flags = self.flags
        flags.fill(False)

        # 1. drawdown state machine (only when some book is or may become abnormal)
        np.maximum(self.peak, value, out=self.peak)
        dd = 1.0 - value / self.peak
        self.drawdown = dd
        if self._abnormal or nz(dd >= lim.max_drawdown):
            resumed, expired = rules.drawdown_transition(self.state, self.peak, self.state_since, dd, value, t, lim)
            flags[resumed, R["resume"]] = True
            flags[expired, R["reduce_exit"]] = True
            self._abnormal = bool(nz(self.state != NORMAL))

        # 2. stops and cool-downs
        if self._any_stops:
            stop, take = rules.exits(entry, close, self._stop_ratio, self._take_ratio)
            out = stop | take
            if nz(out):
                self.asset_flags["stop_loss"] = stop
                self.asset_flags["take_profit"] = take
                flags[:, R["stop_loss"]] = stop.any(axis=1)
                flags[:, R["take_profit"]] = take.any(axis=1)
                np.copyto(self.cooldown_until, tc + lim.cooldown_days[:, None], where=out)
                self._cool_max = max(self._cool_max, int(self.cooldown_until.max()))
                w[out] = 0.0
            else:
                self.asset_flags["stop_loss"] = self.asset_flags["take_profit"] = self._no_assets
        if (t.min() if per_row else t) < self._cool_max:  # type: ignore[union-attr]
            blocked = (self.cooldown_until > tc) & (w > 0)
            if nz(blocked):
                flags[:, R["cooldown"]] |= blocked.any(axis=1)
                w[blocked] = 0.0

        # 3. options
        if self._options:
            w = self._optional_sizing(w, t, per_row)

        # 4. position cap
        capped = rules.cap_positions(w, lim.max_position[:, None])
        self.asset_flags["position_cap"] = self._no_assets if capped is None else capped
        if capped is not None:
            flags[:, R["position_cap"]] = capped.any(axis=1)

        # 5. correlation
        min_weight = lim.corr_min_weight[:, None]
        cut = self.correlations.cuts(w, t, per_row, min_weight)
        self.asset_flags["correlation"] = self._no_assets if cut is None else cut
        if cut is not None:
            np.copyto(w, np.broadcast_to(min_weight, w.shape), where=cut)
            flags[:, R["correlation"]] = cut.any(axis=1)

        # 6. leverage
        over = rules.cap_leverage(w, lim.max_leverage)
        if over is not None:
            flags[:, R["leverage"]] = over

        # 7. drawdown: reduce-only, or all to cash
        if self._abnormal:
            reducing = self.state == REDUCING
            if nz(reducing):
                np.minimum(w, np.where(reducing[:, None], current, np.inf), out=w)
                flags[:, R["drawdown_reduce"]] = reducing
            halted = self.state == HALTED
            if nz(halted):
                w[halted] = 0.0
                flags[:, R["drawdown_halt"]] = halted

        # 8. volatility ceiling and VaR (both homogeneous of degree 1 in the weights)
        self._scale_for_vol_and_var(w, t)

        if nz(flags):
            self.counts += flags
            if self._debug:
                for k in np.flatnonzero(flags.any(axis=1)):
                    log.debug("t=%s agent %d risk events: %s", t, k, ", ".join(self.events(int(k))))
        return w

    def _optional_sizing(self, w: np.ndarray, t: int | np.ndarray, per_row: bool) -> np.ndarray:
        lim, flags, mr = self.limits, self.flags, self.market_risk
        if lim.regime_mult is not None and mr.regime is not None:
            regime = mr.regime[t].astype(np.int64)
            mult = lim.regime_mult[np.arange(self.k), regime] if per_row else lim.regime_mult[:, int(regime)]
            cut = (mult < 1.0) & (w.sum(axis=1) > 0)
            if nz(cut):
                w *= mult[:, None]
                flags[:, R["regime"]] = cut
        if np.isfinite(lim.kelly_fraction).any():
            cap = np.where(
                np.isnan(lim.kelly_fraction)[:, None],
                np.inf,
                lim.kelly_fraction[:, None] * np.maximum(mr.kelly[t], 0.0),
            )
            over = w > cap + TOL
            if nz(over):
                np.minimum(w, cap, out=w)
                flags[:, R["kelly"]] = over.any(axis=1)
        if lim.vol_sizing.any():
            vol = mr.vol[t]
            ref = np.median(vol, axis=-1, keepdims=True)
            scale = np.where(vol > ref, ref / np.maximum(vol, 1e-12), 1.0)
            sized = lim.vol_sizing[:, None] & (scale < 1.0) & (w > 0)
            if nz(sized):
                w = np.where(lim.vol_sizing[:, None], w * scale, w)
                flags[:, R["vol_sizing"]] = sized.any(axis=1)
        return w

    def _scale_for_vol_and_var(self, w: np.ndarray, t: int | np.ndarray) -> None:
        lim = self.limits
        p = self.trailing.of(w, t)
        if p.shape[1] < 3:
            return
        vol = rules.sample_std(p[:, -lim.vol_lookback :]) * np.sqrt(ANNUAL)
        var, cvar = rules.value_at_risk(p[:, -lim.var_lookback :], lim.var_confidence, lim.var_method, self._z)
        scale = rules.exposure_scale(vol, var, lim.vol_target, lim.var_limit)
        cut = scale < 1.0
        if nz(cut):
            # a hair below the limit so that the scaled portfolio passes `<= limit` in floating point
            scale[cut] *= 1.0 - 1e-9
            w *= scale[:, None]
            self.flags[:, R["vol_target"]] = vol > lim.vol_target
            self.flags[:, R["var_limit"]] = var > lim.var_limit
        self.port_vol[:] = vol * scale
        self.var[:] = var * scale
        self.cvar[:] = cvar * scale
