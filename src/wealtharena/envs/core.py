"""The simulation core both envs are thin shells over: market clock + book + risk gate + reward.

`TradingCore` steps K portfolios together on one market clock. Everything that depends only on
the date (features, the observation's market block, momentum, trailing risk quantities) is
computed once per process and data set (`load_env_data`) and shared by every env instance.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from wealtharena.config import SHARED_RISK_KEYS, Config, ServiceSettings
from wealtharena.data import load_market_data
from wealtharena.data.features import FeatureSet, build_features
from wealtharena.data.market_data import MarketData
from wealtharena.envs.observation import AGENT_FIELDS, agent_names
from wealtharena.envs.rewards import TERMS, CompositeReward, momentum_signal
from wealtharena.errors import ActionError
from wealtharena.portfolio import MarketRisk, PortfolioManager
from wealtharena.portfolio.risk import HALTED, REASONS, STATES

log = logging.getLogger(__name__)

_nz = np.count_nonzero
AGENT_BOUND = 10.0          # portfolio/risk observation values are clipped to +-10
SQRT_YEAR = float(np.sqrt(252.0))


@dataclass(frozen=True)
class EnvData:
    """Date-only arrays shared by every env in a process."""

    market: MarketData
    features: FeatureSet
    market_risk: MarketRisk
    momentum: np.ndarray          # [T, N] centred 21-day momentum per day
    block: np.ndarray             # [T, Dm] float32: the market part of every observation
    block_names: tuple[str, ...]
    first_row: int                # first row whose features (and window) are all valid
    origin: str = "loaded"        # "loaded" (provider/cache) or "object_store" (shared by the driver)


_CACHE: dict[str, EnvData] = {}
_LOCK = threading.Lock()


def data_key(cfg: Config) -> str:
    shared = {k: getattr(cfg.risk, k) for k in SHARED_RISK_KEYS}
    blob = json.dumps([cfg.data.model_dump(mode="json"), cfg.features.model_dump(mode="json"), shared,
                       cfg.env.window], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def load_env_data(cfg: Config, services: ServiceSettings | None = None,
                  market: MarketData | None = None) -> EnvData:
    """Market data, features and the observation block for `cfg`, built once per process.
    `market`, when given (e.g. fetched from the Ray object store), is used instead of loading."""
    key = data_key(cfg)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        origin = "object_store" if market is not None else "loaded"
        market = market if market is not None else load_market_data(cfg.data, services)
        features = build_features(market, cfg.features)
        mr = MarketRisk.build(market, cfg.risk, features.regime)
        w = cfg.env.window
        n, f = market.n_assets, features.n_asset_features
        t_len = market.n_dates
        block = np.zeros((t_len, w * n * f + features.n_market_features), dtype=np.float32)
        names: list[str] = []
        for lag in range(w):
            block[lag:, lag * n * f:(lag + 1) * n * f] = features.asset[: t_len - lag].reshape(t_len - lag, n * f)
            names += [f"{feat}.{ticker}.t-{lag}" for ticker in market.tickers for feat in features.asset_names]
        block[:, w * n * f:] = features.market
        names += [f"market.{m}" for m in features.market_names]
        data = EnvData(market=market, features=features, market_risk=mr, momentum=momentum_signal(market.close),
                       block=block, block_names=tuple(names), first_row=features.first_valid + w - 1,
                       origin=origin)
        _CACHE[key] = data
        return data


def observation_names(data: EnvData, desk: bool) -> tuple[str, ...]:
    """Every column of one agent's observation, in order (see envs.observation)."""
    tickers = data.market.tickers
    return data.block_names + agent_names(tickers) + (tuple(f"desk.{t}" for t in tickers) if desk else ())


def usable_rows(data: EnvData, split: str) -> tuple[int, int]:
    """(first decision row, last markable row) of a split, after the indicators' warm-up."""
    a, b = data.market.splits[split]
    lo, hi = max(a, data.first_row), b - 1
    if hi - lo < 2:
        raise ValueError(f"split '{split}' has no rows after the indicators' warm-up")
    return lo, hi


class TradingCore:
    """`n_envs` independent episodes of A agents each (K = n_envs * A portfolios, row
    e * A + a), stepped together as arrays: the agents of one episode share its market clock,
    episodes run on their own days. Actions [K, N+1] (any real numbers) -> weights by
    softmax(scale * tanh(a)): smooth everywhere, so a Gaussian policy keeps its gradient
    beyond +-1 (clipping would make every sample past the bound look the same)."""

    def __init__(self, cfg: Config, profiles: Sequence[str], split: str, data: EnvData | None = None,
                 desk: bool = False, n_envs: int = 1):
        self.cfg = cfg
        self.data = data or load_env_data(cfg)
        market = self.data.market
        self.split = split
        self.lo, self.hi = usable_rows(self.data, split)   # decisions run from lo to hi - 1
        self.n_envs, self.n_agents = int(n_envs), len(profiles)
        self.k, self.n = self.n_envs * self.n_agents, market.n_assets
        self.profiles = list(profiles) * self.n_envs
        risks = [cfg.profile_risk(p) for p in self.profiles]
        self.pm = PortfolioManager(market, risks, cfg.env.execution, cfg.env.initial_cash,
                                   regime=self.data.features.regime, market_risk=self.data.market_risk,
                                   clock_group=self.n_agents)
        if self.n_envs > 1:
            # episodes on different days need a full trailing window for the risk gate
            self.lo = max(self.lo, self.data.market_risk.lookback_max)
            if self.hi - self.lo < 2:
                raise ValueError(f"split '{split}' has no rows after the risk lookback")
        self.reward = CompositeReward([cfg.profile_reward(p) for p in self.profiles], self.n, cfg.env.reward_scale)
        self.scale = cfg.env.action_scale
        self.speed = cfg.env.rebalance_speed
        self.ruin_value = cfg.env.ruin_fraction * cfg.env.initial_cash
        self.terminate_on_halt = cfg.env.terminate_on_halt
        self.desk = desk
        self.initial = cfg.env.initial_cash
        self.close = self.pm.close
        self.max_dd = self.pm.limits.max_drawdown
        self.vol_target = np.where(np.isfinite(self.pm.limits.vol_target), self.pm.limits.vol_target, 1.0)
        self.var_limit = self.pm.limits.var_limit
        dm = self.data.block.shape[1]
        self.dm = dm
        self.n_agent = 2 * self.n + len(AGENT_FIELDS)
        self.dim = dm + self.n_agent + (self.n if desk else 0)
        self.names = observation_names(self.data, desk)
        self.obs = np.zeros((self.k, self.dim), dtype=np.float32)
        self.obs_bound = float(max(cfg.features.clip, AGENT_BOUND)) if cfg.features.normalize else np.inf
        self._agent = np.zeros((self.k, len(AGENT_FIELDS)))
        self._onehot = np.eye(3)
        self.done = np.zeros(self.k, dtype=bool)
        self.env_of_row = np.repeat(np.arange(self.n_envs), self.n_agents)
        self.t0 = np.full(self.n_envs, self.lo, dtype=np.int64)      # per episode
        self.t_end = self.t0.copy()
        self.length = np.ones(self.n_envs, dtype=np.int64)
        self._row_t0 = np.full(self.k, self.lo, dtype=np.int64)      # per row, for progress
        self._row_len = np.ones(self.k)
        self.last_weights = np.zeros((self.k, self.n))
        self.last_costs = np.zeros(self.k)
        self.rewards = np.zeros(self.k)
        self.episode_terms = np.zeros((self.k, len(TERMS)))
        # asset order per row: slot j shows asset perm[k, j] (identity unless env.shuffle_assets)
        self.shuffle = bool(cfg.env.shuffle_assets)
        self.perm = np.tile(np.arange(self.n), (self.k, 1))
        self.inv = self.perm.copy()
        self._shuffled = False
        self._cols = np.tile(np.arange(dm), (self.k, 1))          # observation column map per row
        self._feat = self.data.features.n_asset_features
        self._flag_bits = 1 << np.arange(len(REASONS), dtype=np.int64)
        self._events: dict[int, tuple[str, ...]] = {}
        self._dates: dict[int, str] = {}
        self._forward: np.ndarray | None = None

    # ------------------------------------------------------------------ training-only critic inputs
    def enable_critic_inputs(self, horizons: Sequence[int]) -> None:
        """Add `critic`, the market's realised log returns over the next h days (h in `horizons`,
        each asset, [H * N] float32, horizon-major, in the row's slot order), to every info.

        For training runners only (`EnvOptions.critic_horizons`): the value function uses them as an
        input-driven baseline (training/models.py); the policy never sees them. Returns stop at the
        split's last row, so a train-split critic never sees validation prices."""
        hs = tuple(int(h) for h in horizons)
        close = self.close
        rows = np.arange(close.shape[0])
        fwd = np.zeros((close.shape[0], len(hs), self.n), dtype=np.float32)
        for j, h in enumerate(hs):
            ahead = np.minimum(rows + h, self.hi)
            fwd[:, j] = np.log(close[np.maximum(ahead, rows)] / close)
        fwd[self.hi:] = 0.0
        self._forward = fwd

    def critic_inputs(self, rows: Sequence[int]) -> np.ndarray:
        """[len(rows), H * N] (see `enable_critic_inputs`), at each row's current day."""
        idx = np.asarray(rows, dtype=np.int64)
        fwd = self._forward[self.pm.clock[idx]]                           # [R, H, N]
        if self._shuffled:
            fwd = np.take_along_axis(fwd, self.perm[idx][:, None, :], 2)
        return fwd.reshape(len(idx), -1)

    # ------------------------------------------------------------------ episode
    def max_steps(self) -> int:
        return self.hi - self.lo

    def _rows(self, envs: np.ndarray) -> np.ndarray:
        return (envs[:, None] * self.n_agents + np.arange(self.n_agents)[None, :]).ravel()

    def _starts(self, envs: np.ndarray, rng: np.random.Generator | None, episode_length: int | None,
                starts: np.ndarray | None = None) -> np.ndarray:
        """Draw (rng given), take (`starts`) or fix (the split's first usable row) the first day of
        each episode."""
        length = min(episode_length or self.max_steps(), self.max_steps())
        latest = self.hi - length
        if starts is not None:
            t0 = np.asarray(starts, dtype=np.int64)
            if t0.shape != (len(envs),) or t0.min() < self.lo or t0.max() > latest:
                raise ValueError(f"episode starts must be {len(envs)} rows in [{self.lo}, {latest}] "
                                 f"(split '{self.split}', {length}-day episodes); got {t0.tolist()}")
        elif rng is not None and latest > self.lo:
            t0 = rng.integers(self.lo, latest + 1, size=len(envs))
        else:
            t0 = np.full(len(envs), self.lo, dtype=np.int64)
        self.t0[envs] = t0
        self.t_end[envs] = t0 + length
        self.length[envs] = length
        if self.shuffle and (rng is not None or self._shuffled):
            self._order(envs, rng)
        return t0

    def _order(self, envs: np.ndarray, rng: np.random.Generator | None) -> None:
        """A random asset order for each of `envs` (the identity without rng), shared by its agents."""
        n, f, a = self.n, self._feat, self.n_agents
        lags = np.arange(self.cfg.env.window) * n * f
        for e in envs.tolist():
            p = rng.permutation(n) if rng is not None else np.arange(n)
            rows = slice(e * a, (e + 1) * a)
            self.perm[rows] = p
            self.inv[rows] = np.argsort(p)
            asset_cols = (lags[:, None, None] + p[None, :, None] * f + np.arange(f)[None, None, :]).ravel()
            self._cols[rows, : asset_cols.size] = asset_cols
        self._shuffled = bool(_nz(self.perm != np.arange(n)))

    def _fresh(self, envs: np.ndarray, rows: np.ndarray) -> None:
        """Episode state of `rows` (the agents of `envs`) back to its start."""
        self.reward.reset(self.pm.book.value, rows)
        self.done[rows] = False
        self.last_weights[rows] = 0.0
        self.last_costs[rows] = 0.0
        self.rewards[rows] = 0.0
        self.episode_terms[rows] = 0.0
        self._row_t0[rows] = np.repeat(self.t0[envs], self.n_agents)
        self._row_len[rows] = np.repeat(self.length[envs], self.n_agents)

    def reset(self, rng: np.random.Generator | None, episode_length: int | None,
              envs: np.ndarray | None = None, starts: np.ndarray | None = None) -> np.ndarray:
        """Start episodes (all, or `envs`) at a random row (rng given), at the given first rows
        (`starts`, one per episode), or at the split's first usable row; returns obs [K, D]."""
        envs = np.arange(self.n_envs) if envs is None else np.asarray(envs, dtype=np.int64)
        t0 = self._starts(envs, rng, episode_length, starts)
        rows = self._rows(envs)
        if len(envs) == self.n_envs:
            self.pm.reset(t0[0] if self.n_envs == 1 else np.repeat(t0, self.n_agents))
        else:
            self.pm.reset(np.repeat(t0, self.n_agents), rows)
        self._fresh(envs, rows)
        self._observe()
        return self.obs

    def weights_from_actions(self, actions: np.ndarray) -> np.ndarray:
        a = np.asarray(actions, dtype=np.float64)
        if a.shape != (self.k, self.n + 1):
            raise ActionError(f"actions must have shape ({self.k}, {self.n + 1}) (agents, assets + cash); got {a.shape}")
        e = np.tanh(a)                                   # any real score; NaN stays NaN, +-inf -> +-1
        e *= self.scale
        np.exp(e, out=e)
        total = np.add.reduce(e, 1)
        if _nz(total != total):
            k = int(np.flatnonzero(total != total)[0])
            raise ActionError(f"action of agent {k} contains NaN: {a[k]}")
        w = e[:, : self.n]
        w /= total[:, None]
        return w

    def step(self, actions: np.ndarray, restart: np.ndarray | None = None,
             rng: np.random.Generator | None = None, episode_length: int | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Advance one day. Returns (obs [K, D], rewards [K], terminated [K], truncated [n_envs]).

        `restart` ([n_envs] bool) starts new episodes in the same call (a vector env's autoreset):
        those episodes begin one day before their drawn first day, all in cash, so this step
        (which ignores their actions) only carries the cash book to the first day. Their
        observation is then the reset observation, their reward 0 and they are not done.
        """
        target = self.weights_from_actions(actions)
        if self._shuffled:                               # slot order -> asset order
            target = np.take_along_axis(target, self.inv, 1)
        if self.speed < 1.0:
            target *= self.speed
            target += (1.0 - self.speed) * self.pm.book.weights()
        new_envs = new_rows = None
        if restart is not None and _nz(restart):
            new_envs = np.flatnonzero(restart)
            new_rows = self._rows(new_envs)
            t0 = self._starts(new_envs, rng, episode_length)
            self.pm.reset(np.repeat(t0 - 1, self.n_agents), new_rows)
            self.done[new_rows] = True                   # in cash for the carry step
        if _nz(self.done):
            target[self.done] = 0.0
        t = self.pm.t
        res = self.pm.step(target, validate=False)
        self.last_weights = res.allowed
        costs = res.fill.costs
        self.last_costs = costs
        self.rewards = self.reward(res.value_before, res.value_after, costs, res.fill.traded, res.allowed,
                                   self.data.momentum[t])
        self.episode_terms += self.reward.contrib
        value = res.value_after
        terminated = value <= self.ruin_value
        if self.terminate_on_halt:
            terminated |= self.pm.risk.state == HALTED
        terminated &= ~self.done
        self.done |= terminated
        if new_envs is not None:                         # in cash with no target, the gate flagged nothing
            self._fresh(new_envs, new_rows)
        truncated = self.pm.clock[:: self.n_agents] >= self.t_end
        self._observe()
        return self.obs, self.rewards, terminated, truncated

    # ------------------------------------------------------------------ observation
    def _observe(self) -> None:
        """Fill `self.obs` in place for the close of the current day (see observation.py)."""
        t = self.pm.t
        obs = self.obs
        dm, n = self.dm, self.n
        book, rm, rw = self.pm.book, self.pm.risk, self.reward
        w = book.weights()
        entry = book.entry
        # close / entry - 1 for held positions, 0 when flat (entry 0)
        upnl = (self.close[t] - entry) / np.maximum(entry, 1e-300) * (entry > 0)
        if self._shuffled:                               # asset order -> each row's slot order
            block = np.broadcast_to(self.data.block[t], (self.k, dm))
            obs[:, :dm] = np.take_along_axis(block, self._cols, 1)
            obs[:, dm:dm + n] = np.take_along_axis(w, self.perm, 1)
            obs[:, dm + n:dm + 2 * n] = np.take_along_axis(upnl, self.perm, 1)
        else:
            obs[:, :dm] = self.data.block[t]
            obs[:, dm:dm + n] = w
            obs[:, dm + n:dm + 2 * n] = upnl
        a = self._agent
        a[:, 0] = 1.0 - np.add.reduce(w, 1)
        a[:, 1] = np.log(book.value / self.initial)
        a[:, 2] = rm.port_vol / self.vol_target
        a[:, 3] = rw.dd / self.max_dd
        a[:, 4] = rm.var / self.var_limit
        a[:, 5] = rw.a / np.sqrt(np.maximum(rw.b - rw.a * rw.a, 1e-12)) * SQRT_YEAR
        a[:, 6:9] = self._onehot[rm.state]
        progress = (self.pm.clock - self._row_t0) / self._row_len
        a[:, 9] = progress
        a[:, 10] = 1.0 - progress
        agent = obs[:, dm:dm + self.n_agent]
        agent[:, 2 * n:] = a
        np.minimum(agent, AGENT_BOUND, out=agent)
        np.maximum(agent, -AGENT_BOUND, out=agent)
        if self.desk:
            # what the other agents of the same episode hold, on average, by asset
            g = w.reshape(self.n_envs, self.n_agents, n)
            others = ((np.add.reduce(g, 1)[:, None, :] - g) / max(self.n_agents - 1, 1)).reshape(self.k, n)
            obs[:, -n:] = np.take_along_axis(others, self.perm, 1) if self._shuffled else others

    # ------------------------------------------------------------------ info
    def info(self, k: int, final: bool = False) -> dict:
        """Info of agent (row) k; `final` adds the episode's summed reward terms (for training metrics)."""
        return self.infos([k], [final])[0]

    def step_infos(self, rows: Sequence[int], final: Sequence[bool], every_step: bool) -> list[dict]:
        """Infos of `rows` after a step: full ones (`every_step`), or, for training runners, empty
        ones except on each row's last step, which keeps the episode summary."""
        if every_step:
            return self.infos(rows, final)
        last = [k for k, f in zip(rows, final) if f]
        summary = dict(zip(last, self.infos(last, [True] * len(last)))) if last else {}
        if self._forward is None:
            return [summary.get(k, {}) for k in rows]
        critic = self.critic_inputs(rows)
        return [{**summary.get(k, {}), "critic": critic[i]} for i, k in enumerate(rows)]

    def infos(self, rows: Sequence[int], final: Sequence[bool]) -> list[dict]:
        """Infos of many rows at once (one conversion to Python per array, not per row)."""
        rm = self.pm.risk
        idx = np.asarray(rows, dtype=np.int64)
        value = self.pm.book.value[idx].tolist()
        dd = self.reward.dd[idx].tolist()
        costs = self.last_costs[idx].tolist()
        weights = self.last_weights[idx]                      # a fresh array: rows are views of it
        codes = (rm.flags[idx] @ self._flag_bits).tolist()
        states = rm.state[idx].tolist()
        terms = self.reward.contrib[idx].tolist()
        clock = self.pm.clock[idx].tolist()
        out = []
        for i, k in enumerate(idx.tolist()):
            events = self._events.get(codes[i])
            if events is None:
                events = self._events[codes[i]] = tuple(REASONS[j] for j in range(len(REASONS)) if codes[i] >> j & 1)
            date = self._dates.get(clock[i])
            if date is None:
                date = self._dates[clock[i]] = str(self.data.market.dates[clock[i]])
            info = {
                "portfolio_value": value[i],
                "weights": weights[i],
                "drawdown": dd[i],
                "costs": costs[i],
                "risk_events": list(events),
                "risk_state": STATES[states[i]],
                "reward_terms": dict(zip(TERMS, terms[i])),
                "date": date,
                "profile": self.profiles[k],
            }
            if final[i]:
                info["episode_reward_terms"] = dict(zip(TERMS, self.episode_terms[k].tolist()))
            out.append(info)
        if self._forward is not None:
            for info, critic in zip(out, self.critic_inputs(idx)):
                info["critic"] = critic
        return out
