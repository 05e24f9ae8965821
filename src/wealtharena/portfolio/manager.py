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
from wealtharena.portfolio.market_risk import MarketRisk
from wealtharena.portfolio.risk import RiskLimits, RiskManager


@dataclass
class StepResult:
    allowed: np.ndarray        # [K, N] weights after the risk gate (decision time)
    fill: Fill
    value_before: np.ndarray   # [K] at the close of t
    value_after: np.ndarray    # [K] at the close of t+1


class PortfolioManager:
    def __init__(self, market: MarketData, risks: Sequence[RiskConfig], execution: ExecutionConfig,
                 initial_cash: float, regime: np.ndarray | None = None,
                 market_risk: MarketRisk | None = None):
        self.market = market
        self.close = np.ascontiguousarray(market.close)
        self.market_risk = market_risk or MarketRisk.build(market, risks[0], regime)
        self.execution = ExecutionModel.build(market, execution, self.market_risk)
        self.limits = RiskLimits.from_configs(risks)
        self.risk = RiskManager(self.limits, self.market_risk)
        self.book = Book(len(risks), market.n_assets, initial_cash, self.limits.max_leverage)
        self.t = 0

    @property
    def n_agents(self) -> int:
        return self.book.k

    def reset(self, t0: int) -> None:
        """Start every portfolio in cash at the close of day t0."""
        if not 0 <= t0 < len(self.close) - 1:
            raise ValueError(f"start row {t0} leaves no next day to fill at (rows 0..{len(self.close) - 2})")
        self.book.reset()
        self.book.mark(self.close[t0])
        self.risk.reset(self.book.value)
        self.t = t0

    def step(self, target: np.ndarray, validate: bool = True) -> StepResult:
        """Apply target weights [K, N] decided at the close of `self.t`; advance to t+1."""
        t = self.t
        close_t = self.close[t]
        value_before = self.book.value.copy()
        allowed = self.risk.apply(target, t, value_before, self.book.weights(), close_t, self.book.entry, validate)
        fill = self.book.rebalance(allowed, close_t, t, self.execution)
        self.t = t + 1
        value_after = self.book.mark(self.close[t + 1])
        return StepResult(allowed, fill, value_before, value_after)
