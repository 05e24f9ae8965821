"""Execution model: when orders fill, at what price, and what they cost.

An order decided after the close of day t fills on day t+1: at the open where the data has opens
and `fill_price: next_open`, else at the close of t+1. It never fills at a price the decision saw.

Costs, per asset and order, in basis points of the traded value:
    commission = commission_bps
    slippage   = slippage_bps + slippage_vol_coef * vol_t * 1e4             (vol_t: daily, trailing)
                 + impact_coef * |order value| / adv_t * 1e4                 (only where volume exists)
Buys fill at price * (1 + slippage), sells at price * (1 - slippage); commission is paid in cash.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wealtharena.config import ExecutionConfig
from wealtharena.data.market_data import MarketData
from wealtharena.portfolio.market_risk import MarketRisk


@dataclass
class ExecutionModel:
    """Per-date arrays: `fill[t]` is the price an order decided at t fills at (day t+1)."""

    fill: np.ndarray  # [T, N]; the last row (no t+1) is NaN
    base_slip: np.ndarray  # [T, N] fraction (fixed + volatility part)
    adv: np.ndarray | None  # [T, N] traded value, for the impact part
    commission: float  # fraction
    impact_coef: float
    fills_at: str  # "open" or "close", for reports

    @classmethod
    def build(cls, market: MarketData, cfg: ExecutionConfig, market_risk: MarketRisk) -> ExecutionModel:
        use_open = cfg.fill_price == "next_open" and market.has("open")
        src = market.field("open") if use_open else market.close
        fill = np.full_like(market.close, np.nan)
        fill[:-1] = src[1:]
        base = (cfg.slippage_bps + cfg.slippage_vol_coef * market_risk.vol * 1e4) / 1e4
        return cls(
            fill=fill,
            base_slip=base,
            adv=market_risk.adv,
            commission=cfg.commission_bps / 1e4,
            impact_coef=cfg.impact_coef,
            fills_at="open" if use_open else "close",
        )

    def slippage(self, t: int | np.ndarray, order_value: np.ndarray) -> np.ndarray:
        """Slippage fraction per order, [K, N], for orders of `order_value` (absolute, [K, N])."""
        if self.adv is None or self.impact_coef == 0.0:
            return self.base_slip[t]
        adv = self.adv[t]
        impact = np.zeros_like(order_value)
        np.divide(order_value, adv, out=impact, where=adv > 0)
        return self.base_slip[t] + self.impact_coef * impact
