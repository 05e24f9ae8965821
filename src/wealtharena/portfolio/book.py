"""The book: cash, holdings and entry prices of K portfolios at once (arrays shaped [K, N]).

Everything is in shares and currency; weights are derived at a price. `rebalance` turns target
weights (decided at the close of t, on the value marked at that close) into orders that fill on
t+1 through the `ExecutionModel`, pays commission and slippage, and never lets cash fall below
-(max_leverage - 1) * value: buys are scaled down pro rata when a gap up would overdraw it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wealtharena.arrays import nz
from wealtharena.portfolio.execution import ExecutionModel


@dataclass
class Fill:
    """What one rebalance did, per portfolio: costs in currency, traded value over portfolio value."""

    commission: np.ndarray  # [K]
    slippage: np.ndarray  # [K]
    traded: np.ndarray  # [K] sum |order value| / value (two-way turnover)
    scaled: np.ndarray  # [K] bool: buys were scaled down for lack of cash

    @property
    def costs(self) -> np.ndarray:
        return self.commission + self.slippage


class Book:
    def __init__(self, n_agents: int, n_assets: int, initial_cash: float, max_leverage: np.ndarray | float = 1.0):
        self.k, self.n = n_agents, n_assets
        self.initial_cash = float(initial_cash)
        self.max_leverage = np.broadcast_to(np.asarray(max_leverage, dtype=np.float64), (n_agents,)).copy()
        self.shares = np.zeros((n_agents, n_assets))
        self.entry = np.zeros((n_agents, n_assets))
        self.cash = np.full(n_agents, self.initial_cash)
        self.value = np.full(n_agents, self.initial_cash)
        self._pos_value = np.zeros((n_agents, n_assets))
        self._weights = np.zeros((n_agents, n_assets))
        self._floor_factor = -(self.max_leverage - 1.0)  # cash may not fall below this x value

    def reset(self, rows: np.ndarray | None = None) -> None:
        """All cash again: every portfolio, or only `rows` (indices or a [K] mask)."""
        sel = slice(None) if rows is None else rows
        self.shares[sel] = 0.0
        self.entry[sel] = 0.0
        self.cash[sel] = self.initial_cash
        self.value[sel] = self.initial_cash
        self._pos_value[sel] = 0.0
        self._weights[sel] = 0.0

    def mark(self, close: np.ndarray) -> np.ndarray:
        """Value every portfolio at `close` ([N], or [K, N] with one day per portfolio); returns
        value [K] (also kept in `self.value`)."""
        np.multiply(self.shares, close, out=self._pos_value)
        np.add(self.cash, np.add.reduce(self._pos_value, 1), out=self.value)
        np.divide(self._pos_value, self.value[:, None], out=self._weights)
        return self.value

    def weights(self) -> np.ndarray:
        """Weights [K, N] at the last `mark` (position value over portfolio value). Read-only: the
        array is reused by the next `mark`."""
        return self._weights

    def rebalance(self, target: np.ndarray, close: np.ndarray, t: int | np.ndarray, execution: ExecutionModel) -> Fill:
        """Trade from the current holdings to `target` weights [K, N], decided at close t, filled at
        t+1. `t` is one day (close [N]) or one day per portfolio (an int array [K], close [K, N])."""
        value = self.value
        fill = execution.fill[t]
        delta = target * (value[:, None] / close)
        delta -= self.shares
        order_value = np.abs(delta)
        order_value *= fill
        slip = execution.slippage(t, order_value)
        px = np.copysign(slip, delta)  # buys pay up, sells receive less
        px += 1.0
        px *= fill
        flow = delta * px  # cash spent (+) or received (-) per order
        commission = order_value * execution.commission
        cash_after = self.cash - np.add.reduce(flow + commission, 1)
        scaled = cash_after < self._floor_factor * value - 1e-9
        if nz(scaled):
            floor = self._floor_factor * value
            buy = delta > 0
            buys = np.where(buy, flow + commission, 0.0).sum(axis=1)
            sells = np.where(buy, 0.0, -flow - commission).sum(axis=1)
            alpha = np.clip((self.cash + sells - floor) / np.maximum(buys, 1e-300), 0.0, 1.0)
            factor = np.where(buy & scaled[:, None], alpha[:, None], 1.0)
            delta *= factor
            order_value *= factor
            flow *= factor
            commission *= factor
            cash_after = self.cash - np.add.reduce(flow + commission, 1)
        new_shares = self.shares + delta
        # Average cost: adds blend in at their fill price (slippage included); sells keep it; an exit clears it.
        np.divide(self.shares * self.entry + flow, new_shares, out=self.entry, where=delta > 0)
        self.entry *= new_shares > 1e-12
        self.shares = new_shares
        self.cash = cash_after
        return Fill(
            commission=np.add.reduce(commission, 1),
            slippage=np.add.reduce(order_value * slip, 1),
            traded=np.add.reduce(order_value, 1) / value,
            scaled=scaled,
        )
