"""PortfolioManager: the book, the execution model and the risk gate for K portfolios, stepped
together over one `MarketData`. Used by both envs and by every baseline, so an RL agent and a
buy-and-hold benchmark pay the same costs and pass the same limits.

One `step(target, t)`:
    value_t, weights_t  marked at the close of t (known when deciding)
    allowed = risk.apply(target, t, ...)        every limit, with reasons
    fill    = book.rebalance(allowed, t)        fills at t+1 (open, else close), costs paid
    value_{t+1}         marked at the close of t+1
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from wealtharena.config import ExecutionConfig, RiskConfig
from wealtharena.data.market_data import MarketData
from wealtharena.portfolio.book import Book, Fill
from wealtharena.portfolio.execution import ExecutionModel
from wealtharena.portfolio.limits import RiskLimits
from wealtharena.portfolio.market_risk import MarketRisk
from wealtharena.portfolio.risk import RiskManager


@dataclass
class StepResult:
    allowed: np.ndarray  # [K, N] weights after the risk gate (decision time)
    fill: Fill
    value_before: np.ndarray  # [K] at the close of t
    value_after: np.ndarray  # [K] at the close of t+1
    drawdown_before: np.ndarray  # [K] at the close of t, as the gate acted on it (after any peak reset)
    drawdown_after: np.ndarray  # [K] at the close of t+1 (`RiskManager.mark`)


class PortfolioManager:
    def __init__(
        self,
        market: MarketData,
        risks: Sequence[RiskConfig],
        execution: ExecutionConfig,
        initial_cash: float,
        regime: np.ndarray | None = None,
        market_risk: MarketRisk | None = None,
        clock_group: int = 1,
    ):
        self.market = market
        self.close = np.ascontiguousarray(market.close)
        self.market_risk = market_risk or MarketRisk.build(market, risks[0], regime)
        self.execution = ExecutionModel.build(market, execution, self.market_risk)
        self.limits = RiskLimits.from_configs(risks)
        self.risk = RiskManager(self.limits, self.market_risk, clock_group)
        self.book = Book(len(risks), market.n_assets, initial_cash, self.limits.max_leverage)
        self.clock = np.zeros(len(risks), dtype=np.int64)  # each portfolio's day
        self.t: int | np.ndarray = 0

    @property
    def n_agents(self) -> int:
        return self.book.k

    def reset(self, t0: int | np.ndarray, rows: np.ndarray | None = None) -> None:
        """Start every portfolio (or only `rows`, indices) in cash at the close of day t0 (an int,
        or one day per row). Portfolios may then run on different days: `self.t` is an int while
        they share one clock and an int array [K] once they do not."""
        t0 = np.asarray(t0, dtype=np.int64)
        if t0.size and not (0 <= t0.min() and t0.max() < len(self.close) - 1):
            raise ValueError(
                f"start row {int(t0.min()) if t0.min() < 0 else int(t0.max())} leaves no next day "
                f"to fill at (rows 0..{len(self.close) - 2})"
            )
        if rows is None:
            self.clock[:] = t0
            self.book.reset()
        else:
            self.clock[rows] = t0
            self.book.reset(rows)
        self.t = int(self.clock[0]) if (self.clock == self.clock[0]).all() else self.clock.copy()
        self.book.mark(self.close[self.t])
        self.risk.reset(self.book.value, rows)

    def step(self, target: np.ndarray, check: bool = True) -> StepResult:
        """Apply target weights [K, N] decided at the close of `self.t`; advance to t+1. `check`: validate
        the targets first (`RiskManager.check_targets`)."""
        t = self.t
        close_t = self.close[t]
        value_before = self.book.value.copy()
        allowed = self.risk.apply(target, t, value_before, self.book.weights(), close_t, self.book.entry, check)
        drawdown_before = self.risk.drawdown
        fill = self.book.rebalance(allowed, close_t, t, self.execution)
        self.t = t + 1
        self.clock += 1
        value_after = self.book.mark(self.close[self.t])
        return StepResult(allowed, fill, value_before, value_after, drawdown_before, self.risk.mark(value_after))
