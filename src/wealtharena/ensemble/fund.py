"""The fund: each router's mixed book through the fund profile's risk gate, with costs on its net trades.

At the close of day t every router decides (from `DayView`, what is known at that close) the capital
weight of each expert for t+1; the fund's target book is sum_e capital_e x book_e(t), the experts' books
decided at the same close. That book goes through the same `PortfolioManager` the agents trade through
(the fund profile's limits: position cap, volatility and VaR, stops, drawdown states, correlation) and
fills at t+1 with commission and slippage on the fund's own net trades: two sleeves that trade against
each other cost nothing, and the router's own re-mixing is paid for. All routers' funds are independent
portfolios stepped together as rows of one book (the same result as one at a time).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from wealtharena.config import ROUTER_NAMES, Config
from wealtharena.ensemble.experts import ExpertSet
from wealtharena.ensemble.routers.base import DayView, Router
from wealtharena.ensemble.signals import MarketSignals
from wealtharena.envs.data import EnvData
from wealtharena.evaluation.backtest import TrackKey
from wealtharena.portfolio import PortfolioManager
from wealtharena.portfolio.risk import REASONS


@dataclass
class FundRun:
    """One router's fund over the split, and every decision it took."""

    key: TrackKey  # a router (by its config name) or a desk baseline
    columns: tuple[str, ...]
    values: np.ndarray  # [S + 1]
    weights: np.ndarray  # [S, N] after the fund's gate
    costs: np.ndarray  # [S]
    capital: np.ndarray  # [S, C] the router's capital (or vote) weights
    labels: list[str] = field(default_factory=list)
    explanations: list[str] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.key.name

    @property
    def returns(self) -> np.ndarray:
        return self.values[1:] / self.values[:-1] - 1.0


StepHook = Callable[[int, PortfolioManager, np.ndarray, np.ndarray], None]


def run_funds(
    cfg: Config,
    data: EnvData,
    experts: ExpertSet,
    signals: MarketSignals,
    routers: Sequence[Router],
    profile: str,
    on_step: StepHook | None = None,
) -> list[FundRun]:
    """Every router's fund over the experts' split (see the module docstring). `on_step(t, manager, allowed,
    current)`, if given, sees the gate after each day: the day t decided on, the book's manager, the
    allowed weights [K, N] and the weights held when deciding (an audit hook: the property tests use it)."""
    k = len(routers)
    lo = int(experts.rows[0])
    steps, n = experts.steps, data.market.n_assets
    manager = PortfolioManager(
        data.market,
        [cfg.profile_risk(profile)] * k,
        cfg.env.execution,
        cfg.env.initial_cash,
        regime=data.features.regime,
        market_risk=data.market_risk,
    )
    manager.reset(lo)
    values = np.empty((steps + 1, k))
    values[0] = manager.book.value
    weights = np.zeros((steps, k, n))
    costs = np.zeros((steps, k))
    capital = [np.zeros((steps, len(r.columns))) for r in routers]
    labels: list[list[str]] = [[] for _ in routers]
    texts: list[list[str]] = [[] for _ in routers]
    counts = np.zeros((k, len(REASONS)), dtype=np.int64)
    target = np.zeros((k, n))
    for s in range(steps):
        t = lo + s
        view = DayView(s=s, t=t, books=experts.books[s], past_returns=experts.returns[:s], signals=signals.upto(t))
        for j, router in enumerate(routers):
            decision = router.decide(view)
            capital[j][s] = decision.capital
            target[j] = decision.book if decision.book is not None else decision.capital @ view.books
            labels[j].append(decision.label)
            texts[j].append(decision.explanation)
        current = manager.book.weights().copy() if on_step is not None else target
        res = manager.step(target)
        if on_step is not None:
            on_step(t, manager, res.allowed, current)
        weights[s] = res.allowed
        costs[s] = res.fill.costs
        values[s + 1] = res.value_after
        counts += manager.risk.flags
    return [
        FundRun(
            key=TrackKey("router" if r.name in ROUTER_NAMES else "desk_baseline", r.name),
            columns=tuple(r.columns),
            values=values[:, j],
            weights=weights[:, j],
            costs=costs[:, j],
            capital=capital[j],
            labels=labels[j],
            explanations=texts[j],
            events={REASONS[i]: int(c) for i, c in enumerate(counts[j]) if c},
        )
        for j, r in enumerate(routers)
    ]
