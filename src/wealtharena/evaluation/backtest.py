"""Backtests over a whole split: trained policies (deterministic actions) and baselines, through the
same simulation core, with the same costs, starting on the same day.

Every series starts at the close of the split's first usable day (after the indicators' warm-up)
with the configured cash; a step's return includes the costs paid that step.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from wealtharena.config import Config, RiskConfig
from wealtharena.envs.core import EnvData, load_env_data, usable_rows
from wealtharena.envs.rewards import TERMS
from wealtharena.portfolio import PortfolioManager, metrics
from wealtharena.portfolio.risk import REASONS

# Episodes on the 25-year train split start every quarter (validation and test: every training.eval_stride days).
TRAIN_STRIDE = 63

# Maps {agent id: observation} to {agent id: action}.
ActFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]

NO_LIMITS = dict(max_position=1.0, vol_target=None, stop_loss=None, take_profit=None, max_drawdown=1.0,
                 halt_drawdown=1.0, var_limit=1.0, max_correlation=1.0)


@dataclass
class Track:
    """One strategy's path over a split: values at each close, weights held, costs paid."""

    name: str
    kind: str                      # "agent", "ensemble" or "benchmark"
    dates: np.ndarray              # [S + 1]
    values: np.ndarray             # [S + 1]
    weights: np.ndarray | None     # [S, N] decision weights (after risk)
    costs: np.ndarray              # [S]
    rewards: np.ndarray | None = None
    events: Counter = field(default_factory=Counter)
    profile: str | None = None

    @property
    def returns(self) -> np.ndarray:
        return self.values[1:] / self.values[:-1] - 1.0


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
            rows.append({"strategy": tr.name, "kind": tr.kind, **m, "sharpe_ci_low": lo, "sharpe_ci_high": hi,
                         "costs_paid": float(tr.costs.sum()),
                         "episode_reward": float(tr.rewards.sum()) if tr.rewards is not None else np.nan,
                         "risk_events": sum(tr.events.values())})
        return pd.DataFrame(rows).set_index("strategy")

    def title(self) -> str:
        return f"{self.split} split, {self.start} .. {self.end}, costs included"


def run_agents(cfg: Config, act: ActFn, split: str, data: EnvData | None = None) -> list[Track]:
    """Run every configured agent over the whole split with `act` choosing actions."""
    from wealtharena.envs.multi_agent_env import MultiAgentTradingEnv

    env = MultiAgentTradingEnv({"config": cfg, "split": split, "random_start": False})
    obs, _ = env.reset(options={"full": True})
    core = env.core
    steps = core.max_steps()
    ids = env.possible_agents
    k = len(ids)
    values = np.empty((steps + 1, k))
    values[0] = core.pm.book.value
    weights = np.zeros((steps, k, core.n))
    costs = np.zeros((steps, k))
    rewards = np.zeros((steps, k))
    events = [Counter() for _ in ids]
    s = 0
    done = False
    while not done:
        actions = act(obs)
        obs, rew, term, trunc, infos = env.step(actions)
        weights[s] = core.last_weights
        costs[s] = core.last_costs
        rewards[s] = core.rewards
        values[s + 1] = core.pm.book.value
        for j in range(k):
            for reason in np.flatnonzero(core.pm.risk.flags[j]):
                events[j][REASONS[reason]] += 1
        s += 1
        done = term["__all__"] or trunc["__all__"]
    t0 = int(core.t0[0])
    dates = core.data.market.dates[t0:t0 + s + 1]
    return [Track(name=a, kind="agent", dates=dates, values=values[: s + 1, j], weights=weights[:s, j],
                  costs=costs[:s, j], rewards=rewards[:s, j], events=events[j], profile=core.profiles[j])
            for j, a in enumerate(ids)]


def paired_change(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """Mean change between two evaluations of the same windows and its standard error, paired
    window by window (the market of a window moves both alike); SE nan for a single window."""
    d = np.asarray(after, dtype=np.float64) - np.asarray(before, dtype=np.float64)
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return float(d.mean()), se


@dataclass
class EpisodeSet:
    """Episode rewards of every agent over many fixed windows of a split."""

    starts: list[str]                 # first day of each window
    length: int                       # days per episode (the training episode length)
    rewards: np.ndarray               # [windows, agents] summed reward of each agent's episode
    agents: list[str]
    profiles: list[str]
    terms: np.ndarray                 # [windows, agents, 7] the same sums per weighted term (adding up to `rewards`)

    def _columns(self, p: str) -> list[int]:
        return [j for j, q in enumerate(self.profiles) if q == p]

    def per_window(self) -> dict[str, np.ndarray]:
        """profile -> [windows] episode reward of its agents (their mean) in each window."""
        return {p: self.rewards[:, self._columns(p)].mean(axis=1) for p in dict.fromkeys(self.profiles)}

    def per_window_terms(self) -> dict[str, np.ndarray]:
        """profile -> [windows, 7] its agents' mean episode sum of each weighted term (`rewards.TERMS`)."""
        return {p: self.terms[:, self._columns(p)].mean(axis=1) for p in dict.fromkeys(self.profiles)}

    def by_policy(self) -> dict[str, tuple[float, float]]:
        """profile -> (mean episode reward, its standard error over windows)."""
        out = {}
        for p, per_window in self.per_window().items():
            se = per_window.std(ddof=1) / np.sqrt(len(per_window)) if len(per_window) > 1 else float("nan")
            out[p] = (float(per_window.mean()), float(se))
        return out


def zero_scores(n_assets: int) -> Callable[[np.ndarray, list[str]], np.ndarray]:
    """act_rows giving every row all-zero scores: the equal-weight book (1/(N+1) per asset and in
    cash before the limits), which is what an untrained asset-shared policy holds."""
    return lambda obs, profiles: np.zeros((obs.shape[0], n_assets + 1), dtype=np.float32)


def run_episodes(cfg: Config, act_rows: Callable[[np.ndarray, list[str]], np.ndarray], split: str,
                 stride: int, length: int | None = None, data: EnvData | None = None) -> EpisodeSet:
    """Every agent, deterministically, over training-length episodes of `split` that start every
    `stride` days (each from cash, with fresh risk and reward state, as in training), all stepped
    together as one vector TradingCore (one episode per window). `act_rows(obs [K, D], profiles [K]) -> actions [K, N+1]`."""
    from wealtharena.envs.core import TradingCore

    data = data or load_env_data(cfg)
    length = length or cfg.env.episode_length
    lo, hi = usable_rows(data, split)
    lo = max(lo, data.market_risk.lookback_max)
    if hi - lo <= length:
        raise ValueError(f"split '{split}' has {hi - lo} usable days, too few for {length}-day episodes")
    starts = np.arange(lo, hi - length + 1, stride)
    profiles = [a.profile for a in cfg.agents]
    core = TradingCore(cfg, profiles, split, data=data, desk=cfg.env.desk_observation, n_envs=len(starts))
    obs = core.reset(None, length, starts=starts)
    rewards = np.zeros(core.k)
    terms = np.zeros((core.k, len(TERMS)))
    for _ in range(length):
        active = ~core.done
        obs, rew, _, truncated = core.step(act_rows(obs, core.profiles))
        rewards += np.where(active, rew, 0.0)
        terms += np.where(active[:, None], core.reward.contrib, 0.0)
        if truncated.all() or core.done.all():
            break
    a = core.n_agents
    return EpisodeSet(starts=[str(data.market.dates[t]) for t in starts.tolist()], length=length,
                      rewards=rewards.reshape(len(starts), a), agents=[x.id for x in cfg.agents], profiles=profiles,
                      terms=terms.reshape(len(starts), a, len(TERMS)))


def run_weights(cfg: Config, name: str, weights_at: Callable[[int], np.ndarray], split: str,
                data: EnvData | None = None, risk: RiskConfig | None = None, kind: str = "benchmark") -> Track:
    """A rule-based strategy (target weights as a function of the row) through the same book and costs."""
    data = data or load_env_data(cfg)
    lo, hi = usable_rows(data, split)
    risk = risk or RiskConfig(**NO_LIMITS)
    pm = PortfolioManager(data.market, [risk], cfg.env.execution, cfg.env.initial_cash,
                          regime=data.features.regime, market_risk=data.market_risk)
    pm.reset(lo)
    steps = hi - lo
    values = np.empty(steps + 1)
    values[0] = pm.book.value[0]
    w_hist = np.zeros((steps, data.market.n_assets))
    costs = np.zeros(steps)
    for s in range(steps):
        res = pm.step(weights_at(pm.t)[None, :])
        w_hist[s] = res.allowed[0]
        costs[s] = res.fill.costs[0]
        values[s + 1] = res.value_after[0]
    dates = data.market.dates[lo:hi + 1]
    return Track(name=name, kind=kind, dates=dates, values=values, weights=w_hist, costs=costs)


def benchmark_buy_and_hold(cfg: Config, split: str, data: EnvData | None = None) -> Track | None:
    """Buy the benchmark index at the first close (paying commission + slippage once) and hold."""
    data = data or load_env_data(cfg)
    market = data.market
    if market.benchmark is None:
        return None
    lo, hi = usable_rows(data, split)
    ex = cfg.env.execution
    entry_cost = (ex.commission_bps + ex.slippage_bps) / 1e4
    idx = market.benchmark[lo:hi + 1]
    v0 = cfg.env.initial_cash
    values = v0 * (1.0 - entry_cost) * idx / idx[0]
    values[0] = v0
    costs = np.zeros(len(idx) - 1)
    costs[0] = v0 * entry_cost
    return Track(name=f"{market.benchmark_name} buy & hold", kind="benchmark",
                 dates=market.dates[lo:hi + 1], values=values, weights=None, costs=costs)


FIT_DAYS = 1008  # classic portfolios are fit on the four years before the split starts


def classic_weights(data: EnvData, split: str, start_row: int) -> dict[str, np.ndarray]:
    """Inverse volatility, minimum variance and hierarchical risk parity (skfolio), fit on the
    `FIT_DAYS` daily returns before `start_row`: out of sample for the split."""
    from skfolio import RiskMeasure
    from skfolio.optimization import HierarchicalRiskParity, InverseVolatility, MeanRisk, ObjectiveFunction

    close = data.market.close
    a = max(1, start_row - FIT_DAYS)
    returns = pd.DataFrame(close[a:start_row + 1] / close[a - 1:start_row] - 1.0, columns=list(data.market.tickers))
    models = {"inverse volatility": InverseVolatility(),
              "minimum variance": MeanRisk(objective_function=ObjectiveFunction.MINIMIZE_RISK,
                                           risk_measure=RiskMeasure.VARIANCE),
              "hierarchical risk parity": HierarchicalRiskParity()}
    out = {}
    for name, model in models.items():
        model.fit(returns)
        w = np.clip(np.asarray(model.weights_, dtype=np.float64), 0.0, None)
        out[name] = w / w.sum()
    return out


def run_baselines(cfg: Config, split: str, data: EnvData | None = None, classic: bool = True) -> list[Track]:
    """Index buy-and-hold, equal weight rebalanced daily, and (`classic`) inverse volatility, minimum
    variance and HRP fit before the split: all with the same costs, no risk limits, same first day."""
    data = data or load_env_data(cfg)
    n = data.market.n_assets
    tracks = []
    bh = benchmark_buy_and_hold(cfg, split, data)
    if bh is not None:
        tracks.append(bh)
    equal = np.full(n, 1.0 / n)
    tracks.append(run_weights(cfg, "equal weight (daily)", lambda t: equal, split, data))
    if classic:
        start = usable_rows(data, split)[0]
        for name, w in classic_weights(data, split, start).items():
            tracks.append(run_weights(cfg, name, lambda t, w=w: w, split, data))
    return tracks


def backtest(cfg: Config, act: ActFn | None, split: str) -> Backtest:
    data = load_env_data(cfg)
    tracks = (run_agents(cfg, act, split, data) if act is not None else []) + run_baselines(cfg, split, data)
    ref = tracks[0]
    bench = None
    if data.market.benchmark is not None:
        a = int(np.searchsorted(data.market.dates, ref.dates[0]))
        b = a + len(ref.dates)
        idx = data.market.benchmark[a:b]
        bench = idx[1:] / idx[:-1] - 1.0
    return Backtest(split=split, start=str(ref.dates[0]), end=str(ref.dates[-1]), tracks=tracks,
                    benchmark_returns=bench, tickers=data.market.tickers)
