"""Backtests over a whole split: trained policies (deterministic actions) and baselines, through the
same simulation core, with the same costs, starting on the same day.

Every series starts at the close of the split's first usable day (after the indicators' warm-up)
with the configured cash; a step's return includes the costs paid that step. Agents that act
identically (under deterministic evaluation, agents of one profile usually do) are one row of the
table, with the agents it stands for (`Track.members`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from skfolio import RiskMeasure
from skfolio.optimization import HierarchicalRiskParity, InverseVolatility, MeanRisk, ObjectiveFunction

from wealtharena.config import Config, RiskConfig
from wealtharena.envs.core import TradingCore
from wealtharena.envs.data import EnvData
from wealtharena.envs.policy import Policy
from wealtharena.portfolio import PortfolioManager, metrics
from wealtharena.portfolio.risk import REASONS

NO_LIMITS: dict[str, Any] = dict(
    max_position=1.0,
    vol_target=None,
    stop_loss=None,
    take_profit=None,
    max_drawdown=1.0,
    halt_drawdown=1.0,
    var_limit=1.0,
    max_correlation=1.0,
)
FIT_DAYS = 1008  # classic portfolios are fit on the four years before the split starts


TrackKind = Literal["agent", "benchmark", "baseline", "expert", "router", "desk_baseline"]

# The table's text for each strategy that is not an agent (an agent's row is its id) or the index (its name).
LABELS: dict[tuple[str, str], str] = {
    ("baseline", "equal_weight"): "equal weight (daily)",
    ("baseline", "inverse_volatility"): "inverse volatility",
    ("baseline", "minimum_variance"): "minimum variance",
    ("baseline", "hrp"): "hierarchical risk parity",
    ("router", "hedge"): "desk: hedge (Fixed Share)",
    ("router", "meeting"): "desk: expert meeting",
    ("router", "volatility"): "desk: volatility regimes",
    ("router", "gate"): "desk: learnt gate",
    ("router", "sentiment"): "desk: sentiment",
    ("router", "ranking"): "desk: ranking (top K)",
    ("desk_baseline", "equal_capital"): "desk baseline: equal capital (agents)",
    ("desk_baseline", "picker"): "desk baseline: picker (best trailing Sharpe)",
    ("desk_baseline", "chosen"): "desk baseline: agent chosen on validation",
    ("desk_baseline", "chosen_alone"): "desk baseline: agent chosen on validation, own limits",
    ("desk_baseline", "hindsight"): "desk baseline: best agent in hindsight",
    ("desk_baseline", "equal_weight_fund"): "desk baseline: equal weight (fund limits)",
}


@dataclass(frozen=True)
class TrackKey:
    """Which strategy a track is: select rows by key, never by their text. `kind` is agent, benchmark (the
    index bought and held; `name` is the index's), baseline (the classic portfolios), expert (a desk sleeve),
    router (a desk router, by its config name) or desk_baseline; `label` is the table's text."""

    kind: TrackKind
    name: str

    @property
    def label(self) -> str:
        if self.kind == "benchmark":
            return f"{self.name} buy & hold"
        if self.kind == "baseline" and self.name.startswith("equal_weight_"):  # under a profile's limits
            return f"equal weight ({self.name.removeprefix('equal_weight_')} limits)"
        return LABELS.get((self.kind, self.name), self.name)


@dataclass
class Track:
    """One strategy's path over a split: values at each close, weights held, costs paid, risk events."""

    key: TrackKey
    dates: np.ndarray  # [S + 1]
    values: np.ndarray  # [S + 1]
    weights: np.ndarray | None  # [S, N] decision weights (after risk)
    costs: np.ndarray  # [S]
    rewards: np.ndarray | None = None
    events: Counter = field(default_factory=Counter)
    profile: str | None = None
    members: tuple[str, ...] = ()  # the agents an agent row stands for (identical behaviour)
    note: str = ""  # e.g. "in-sample", "unattainable"
    daily_returns: np.ndarray | None = None  # [S] when given (a stitched track), the returns `values` compound

    @property
    def name(self) -> str:
        return self.key.name

    @property
    def kind(self) -> TrackKind:
        return self.key.kind

    @property
    def returns(self) -> np.ndarray:
        if self.daily_returns is not None:
            return self.daily_returns
        return self.values[1:] / self.values[:-1] - 1.0

    @property
    def label(self) -> str:
        """The table's row name: the key's label (for an agent row, the agents it stands for) and any note."""
        base = " / ".join(self.members) if len(self.members) > 1 else self.key.label
        return f"{base} ({self.note})" if self.note else base


@dataclass
class Backtest:
    split: str
    start: str
    end: str
    tracks: list[Track]
    benchmark_returns: np.ndarray | None
    tickers: tuple[str, ...] = ()

    def metrics_table(self) -> pd.DataFrame:
        rows = []
        for tr in self.tracks:
            r = tr.returns
            bench = self.benchmark_returns[: len(r)] if self.benchmark_returns is not None else None
            m = metrics.compute_metrics(r, bench, tr.weights).as_dict()
            lo, hi = metrics.sharpe_interval(r)
            rows.append(
                {
                    "strategy": tr.label,
                    "kind": tr.kind,
                    **m,
                    "sharpe_ci_low": lo,
                    "sharpe_ci_high": hi,
                    "costs_paid": float(tr.costs.sum()),
                    "episode_reward": float(tr.rewards.sum()) if tr.rewards is not None else np.nan,
                    "risk_events": sum(tr.events.values()),
                }
            )
        return pd.DataFrame(rows).set_index("strategy")

    def title(self) -> str:
        return f"{self.split} split, {self.start} .. {self.end}, costs included"

    def agents(self) -> list[Track]:
        return [tr for tr in self.tracks if tr.kind == "agent"]

    def track(self, key: TrackKey) -> Track | None:
        """The track of `key`, if the backtest has it."""
        return next((tr for tr in self.tracks if tr.key == key), None)


def run_agents(cfg: Config, data: EnvData, policy: Policy, split: str) -> list[Track]:
    """Every configured agent over the whole split (one multi-agent episode, the desk block included),
    `policy` choosing the actions; one track per agent."""
    core = TradingCore(cfg, [a.profile for a in cfg.agents], split, data=data, desk=cfg.env.desk_observation)
    obs = core.reset(None, None)
    steps = core.max_steps()
    ids = [a.id for a in cfg.agents]
    k = len(ids)
    values = np.empty((steps + 1, k))
    values[0] = core.portfolio.book.value
    weights = np.zeros((steps, k, core.n))
    costs = np.zeros((steps, k))
    rewards = np.zeros((steps, k))
    counts = np.zeros((k, len(REASONS)), dtype=np.int64)
    s = 0
    for s in range(1, steps + 1):
        obs, _, _, truncated = core.step(policy(obs, core.profiles))
        rec = core.record
        weights[s - 1] = rec.weights
        costs[s - 1] = rec.costs
        rewards[s - 1] = rec.rewards
        values[s] = rec.value
        counts += rec.risk_flags
        if truncated[0] or core.done.all():
            break
    t0 = int(core.t0[0])
    dates = data.market.dates[t0 : t0 + s + 1]
    return [
        Track(
            key=TrackKey("agent", a),
            dates=dates,
            values=values[: s + 1, j],
            weights=weights[:s, j],
            costs=costs[:s, j],
            rewards=rewards[:s, j],
            events=Counter({REASONS[r]: int(c) for r, c in enumerate(counts[j]) if c}),
            profile=core.profiles[j],
            members=(a,),
        )
        for j, a in enumerate(ids)
    ]


def _same_path(a: Track, b: Track) -> bool:
    """The same values and weights every day, to float32 rounding: agents of one profile see observations
    that differ in the last bits (each sees the others' mean weights), so their float32 actions, and
    their books, can differ by about 1e-9 while they act alike."""
    if a.weights is None or b.weights is None or a.values.shape != b.values.shape:
        return False
    return bool(
        np.allclose(a.values, b.values, rtol=1e-6, atol=0.0) and np.allclose(a.weights, b.weights, rtol=0.0, atol=1e-6)
    )


def distinct(tracks: list[Track]) -> list[Track]:
    """One track per distinct behaviour: agents whose weights and values are the same every day (agents
    of one profile under deterministic evaluation) become one track standing for all of them."""
    out: list[Track] = []
    for tr in tracks:
        same = next((o for o in out if o.profile == tr.profile and _same_path(o, tr)), None)
        if same is None:
            out.append(Track(**{**tr.__dict__, "members": tr.members or (tr.name,)}))
        else:
            same.members = (*same.members, *(tr.members or (tr.name,)))
    return out


def run_books(
    cfg: Config,
    data: EnvData,
    books: dict[str, np.ndarray],
    split: str,
    risk: RiskConfig | None = None,
    kind: TrackKind = "baseline",
) -> list[Track]:
    """Constant target books [N] (rebalanced to every day), one portfolio each, stepped together through
    one book and risk gate (`risk`, default none) with the same costs."""
    lo, hi = data.usable_rows(split)
    names = list(books)
    risk = risk or RiskConfig(**NO_LIMITS)
    manager = PortfolioManager(
        data.market,
        [risk] * len(names),
        cfg.env.execution,
        cfg.env.initial_cash,
        regime=data.features.regime,
        market_risk=data.market_risk,
    )
    manager.reset(lo)
    target = np.stack([books[n] for n in names])
    steps = hi - lo
    values = np.empty((steps + 1, len(names)))
    values[0] = manager.book.value
    w_hist = np.zeros((steps, len(names), data.market.n_assets))
    costs = np.zeros((steps, len(names)))
    counts = np.zeros((len(names), len(REASONS)), dtype=np.int64)
    for s in range(steps):
        res = manager.step(target)
        w_hist[s] = res.allowed
        costs[s] = res.fill.costs
        values[s + 1] = res.value_after
        counts += manager.risk.flags
    dates = data.market.dates[lo : hi + 1]
    return [
        Track(
            key=TrackKey(kind, n),
            dates=dates,
            values=values[:, j],
            weights=w_hist[:, j],
            costs=costs[:, j],
            events=Counter({REASONS[r]: int(c) for r, c in enumerate(counts[j]) if c}),
        )
        for j, n in enumerate(names)
    ]


def benchmark_buy_and_hold(cfg: Config, data: EnvData, split: str) -> Track | None:
    """Buy the benchmark index at the first close (paying commission + slippage once) and hold."""
    market = data.market
    if market.benchmark is None:
        return None
    lo, hi = data.usable_rows(split)
    ex = cfg.env.execution
    entry_cost = (ex.commission_bps + ex.slippage_bps) / 1e4
    idx = market.benchmark[lo : hi + 1]
    v0 = cfg.env.initial_cash
    values = v0 * (1.0 - entry_cost) * idx / idx[0]
    values[0] = v0
    costs = np.zeros(len(idx) - 1)
    costs[0] = v0 * entry_cost
    return Track(
        key=TrackKey("benchmark", str(market.benchmark_name)),
        dates=market.dates[lo : hi + 1],
        values=values,
        weights=None,
        costs=costs,
    )


def classic_weights(data: EnvData, start_row: int) -> dict[str, np.ndarray]:
    """Inverse volatility, minimum variance and hierarchical risk parity (skfolio), fit on the `FIT_DAYS`
    daily returns that end before `start_row` (the split's first day): only data before the split, out of
    sample for it. Keyed by expert name."""
    close = data.market.close
    a = max(1, start_row - FIT_DAYS)
    returns = pd.DataFrame(close[a:start_row] / close[a - 1 : start_row - 1] - 1.0, columns=list(data.market.tickers))
    models = {
        "inverse_volatility": InverseVolatility(),
        "minimum_variance": MeanRisk(
            objective_function=ObjectiveFunction.MINIMIZE_RISK, risk_measure=RiskMeasure.VARIANCE
        ),
        "hrp": HierarchicalRiskParity(),
    }
    out = {}
    for name, model in models.items():
        model.fit(returns)
        w = np.clip(np.asarray(model.weights_, dtype=np.float64), 0.0, None)
        out[name] = w / w.sum()
    return out


def run_baselines(cfg: Config, data: EnvData, split: str, classic: bool = True) -> list[Track]:
    """Index buy-and-hold, equal weight rebalanced daily, and (`classic`) inverse volatility, minimum
    variance and HRP fit before the split: all with the same costs, no risk limits, same first day."""
    n = data.market.n_assets
    bh = benchmark_buy_and_hold(cfg, data, split)
    books = {"equal_weight": np.full(n, 1.0 / n)}
    if classic:
        books |= classic_weights(data, data.usable_rows(split)[0])
    return ([bh] if bh is not None else []) + run_books(cfg, data, books, split)


def benchmark_returns(data: EnvData, dates: np.ndarray) -> np.ndarray | None:
    """The benchmark index's daily returns over `dates` (a track's dates), or None without one."""
    if data.market.benchmark is None:
        return None
    a = int(np.searchsorted(data.market.dates, dates[0]))
    idx = data.market.benchmark[a : a + len(dates)]
    return idx[1:] / idx[:-1] - 1.0


def backtest(cfg: Config, data: EnvData, policy: Policy | None, split: str) -> Backtest:
    """The agents (one row per distinct behaviour) and every baseline over `split`."""
    agents = distinct(run_agents(cfg, data, policy, split)) if policy is not None else []
    tracks = agents + run_baselines(cfg, data, split)
    ref = tracks[0]
    return Backtest(
        split=split,
        start=str(ref.dates[0]),
        end=str(ref.dates[-1]),
        tracks=tracks,
        benchmark_returns=benchmark_returns(data, ref.dates),
        tickers=data.market.tickers,
    )
