"""The simulation core every env is a thin shell over: market clock + book + risk gate + reward.

`TradingCore` steps `n_envs` independent episodes of A agents each (K = n_envs * A portfolios,
row e * A + a) as arrays: the agents of one episode share its market clock, episodes run on their
own days. One step:

    actions [K, N+1] --ActionMap--> target weights --PortfolioManager (risk gate, book, costs)-->
    values at t+1 --CompositeReward--> rewards [K] --ObservationBuilder--> observations [K, D]

The parts live in their own modules: `envs.data` (what depends on the date alone), `envs.actions`
(action mapping and asset order), `envs.observation`, `envs.rewards`, `envs.infos` and
`envs.critic` (training-only inputs of the value function).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from wealtharena.arrays import nz
from wealtharena.config import Config
from wealtharena.envs.actions import ActionMap, AssetOrder
from wealtharena.envs.critic import ForwardReturns
from wealtharena.envs.data import EnvData, check_data, load_env_data
from wealtharena.envs.infos import InfoBuilder
from wealtharena.envs.observation import AGENT_BOUND, ObservationBuilder
from wealtharena.envs.record import StepRecord
from wealtharena.envs.rewards import TERMS, CompositeReward
from wealtharena.portfolio import PortfolioManager
from wealtharena.portfolio.risk import HALTED


class TradingCore:
    """`n_envs` episodes of the agents with `profiles`, on `split` of `data` (see the module docstring)."""

    def __init__(
        self,
        cfg: Config,
        profiles: Sequence[str],
        split: str,
        data: EnvData | None = None,
        desk: bool = False,
        n_envs: int = 1,
    ):
        self.cfg = cfg
        self.data = check_data(cfg, data) if data is not None else load_env_data(cfg)
        market = self.data.market
        self.split = split
        self.lo, self.hi = self.data.usable_rows(split)  # decisions run from lo to hi - 1
        self.n_envs, self.n_agents = int(n_envs), len(profiles)
        self.k, self.n = self.n_envs * self.n_agents, market.n_assets
        self.profiles = list(profiles) * self.n_envs
        risks = [cfg.profile_risk(p) for p in self.profiles]
        self.portfolio = PortfolioManager(
            market,
            risks,
            cfg.env.execution,
            cfg.env.initial_cash,
            regime=self.data.features.regime,
            market_risk=self.data.market_risk,
            clock_group=self.n_agents,
        )
        if self.n_envs > 1:
            # episodes on different days need a full trailing window for the risk gate
            self.lo = max(self.lo, self.data.market_risk.lookback_max)
            if self.hi - self.lo < 2:
                raise ValueError(f"split '{split}' has no rows after the risk lookback")
        self.reward = CompositeReward([cfg.profile_reward(p) for p in self.profiles], self.n, cfg.env.reward_scale)
        self.ruin_value = cfg.env.ruin_fraction * cfg.env.initial_cash
        self.terminate_on_halt = cfg.env.terminate_on_halt
        self.desk = desk
        self.close = self.portfolio.close
        limits = self.portfolio.limits
        self.names = self.data.observation_names(desk)
        self.observer = ObservationBuilder(
            self.data.block,
            self.names,
            self.n_envs,
            self.n_agents,
            self.n,
            desk,
            limits.vol_target,
            limits.max_drawdown,
            limits.var_limit,
            cfg.env.initial_cash,
        )
        self.dim = self.observer.dim
        self.obs_bound = float(max(cfg.features.clip, AGENT_BOUND)) if cfg.features.normalize else np.inf
        self.order = AssetOrder(
            self.k, self.n, self.n_agents, self.data.features.n_asset_features, cfg.env.window, self.data.block.shape[1]
        )
        self.shuffle = bool(cfg.env.shuffle_assets)
        self.actions = ActionMap(self.k, self.n, cfg.env.action_scale, cfg.env.rebalance_speed)
        self.done = np.zeros(self.k, dtype=bool)
        self.t0 = np.full(self.n_envs, self.lo, dtype=np.int64)  # per episode
        self.t_end = self.t0.copy()
        self.length = np.ones(self.n_envs, dtype=np.int64)
        self._row_t0 = np.full(self.k, self.lo, dtype=np.int64)  # per row, for progress
        self._row_len = np.ones(self.k)
        self.episode_terms = np.zeros((self.k, len(TERMS)))
        risk = self.portfolio.risk
        self.record = StepRecord(
            value=self.portfolio.book.value,
            costs=np.zeros(self.k),
            weights=np.zeros((self.k, self.n)),
            drawdown=risk.drawdown,
            risk_flags=risk.flags,
            risk_state=risk.state,
            reward_terms=self.reward.contrib,
            rewards=np.zeros(self.k),
            episode_terms=self.episode_terms,
            clock=self.portfolio.clock,
        )
        self.forward: ForwardReturns | None = None
        self.info_builder = InfoBuilder(self.profiles, self.data.market.dates)
        self.obs = self.observer.obs

    # ------------------------------------------------------------------ training-only critic inputs
    def enable_critic_inputs(self, horizons: Sequence[int]) -> None:
        """Add `critic` (the market's realised log returns over the next h days, [H * N] float32,
        horizon-major, in the row's slot order) to every info (envs.critic)."""
        self.forward = ForwardReturns(self.close, self.hi, horizons)

    def critic_inputs(self, rows: np.ndarray) -> np.ndarray:
        """[len(rows), H * N] at each row's current day (see `enable_critic_inputs`)."""
        assert self.forward is not None, "enable_critic_inputs first"
        return self.forward.at(self.portfolio.clock[rows], self.order, rows)

    # ------------------------------------------------------------------ episode
    def max_steps(self) -> int:
        return self.hi - self.lo

    def _rows(self, envs: np.ndarray) -> np.ndarray:
        return (envs[:, None] * self.n_agents + np.arange(self.n_agents)[None, :]).ravel()

    def _starts(
        self,
        envs: np.ndarray,
        rng: np.random.Generator | None,
        episode_length: int | None,
        starts: np.ndarray | None = None,
        lengths: np.ndarray | None = None,
    ) -> np.ndarray:
        """Draw (rng given), take (`starts`) or fix (the split's first usable row) the first day of
        each episode; `lengths` (one per episode, with rng) gives episodes their own lengths."""
        length = min(episode_length or self.max_steps(), self.max_steps())
        if lengths is not None and rng is not None:
            own = np.minimum(np.asarray(lengths, dtype=np.int64), self.max_steps())
            t0 = rng.integers(self.lo, self.hi - own + 1)
            self.t0[envs] = t0
            self.t_end[envs] = t0 + own
            self.length[envs] = own
            if self.shuffle:
                self.order.draw(envs, rng)
            return t0
        latest = self.hi - length
        if starts is not None:
            t0 = np.asarray(starts, dtype=np.int64)
            if t0.shape != (len(envs),) or t0.min() < self.lo or t0.max() > latest:
                raise ValueError(
                    f"episode starts must be {len(envs)} rows in [{self.lo}, {latest}] "
                    f"(split '{self.split}', {length}-day episodes); got {t0.tolist()}"
                )
        elif rng is not None and latest > self.lo:
            t0 = rng.integers(self.lo, latest + 1, size=len(envs))
        else:
            t0 = np.full(len(envs), self.lo, dtype=np.int64)
        self.t0[envs] = t0
        self.t_end[envs] = t0 + length
        self.length[envs] = length
        if self.shuffle and (rng is not None or self.order.shuffled):
            self.order.draw(envs, rng)
        return t0

    def _fresh(self, envs: np.ndarray, rows: np.ndarray) -> None:
        """Episode state of `rows` (the agents of `envs`) back to its start."""
        self.reward.reset(rows)
        self.done[rows] = False
        rec = self.record
        rec.weights[rows] = 0.0
        rec.costs[rows] = 0.0
        rec.rewards[rows] = 0.0
        rec.value, rec.drawdown, rec.clock = (
            self.portfolio.book.value,
            self.portfolio.risk.drawdown,
            self.portfolio.clock,
        )
        self.episode_terms[rows] = 0.0
        self._row_t0[rows] = np.repeat(self.t0[envs], self.n_agents)
        self._row_len[rows] = np.repeat(self.length[envs], self.n_agents)

    def reset(
        self,
        rng: np.random.Generator | None,
        episode_length: int | None,
        envs: np.ndarray | None = None,
        starts: np.ndarray | None = None,
        lengths: np.ndarray | None = None,
    ) -> np.ndarray:
        """Start episodes (all, or `envs`) at a random row (rng given), at the given first rows
        (`starts`, one per episode), or at the split's first usable row; returns obs [K, D].
        `lengths` (with rng): each episode's own length (at most the split's), instead of `episode_length`."""
        envs = np.arange(self.n_envs) if envs is None else np.asarray(envs, dtype=np.int64)
        t0 = self._starts(envs, rng, episode_length, starts, lengths)
        rows = self._rows(envs)
        if len(envs) == self.n_envs:
            self.portfolio.reset(t0[0] if self.n_envs == 1 else np.repeat(t0, self.n_agents))
        else:
            self.portfolio.reset(np.repeat(t0, self.n_agents), rows)
        self._fresh(envs, rows)
        return self._observe()

    def step(
        self,
        actions: np.ndarray,
        restart: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
        episode_length: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Advance one day. Returns (obs [K, D], rewards [K], terminated [K], truncated [n_envs]).

        `restart` ([n_envs] bool) starts new episodes in the same call (a vector env's autoreset):
        those episodes begin one day before their drawn first day, all in cash, so this step
        (which ignores their actions) only carries the cash book to the first day. Their
        observation is then the reset observation, their reward 0 and they are not done.
        """
        portfolio = self.portfolio
        target = self.actions.target(actions, portfolio.book.weights(), self.order)
        new_envs = new_rows = None
        if restart is not None and nz(restart):
            new_envs = np.flatnonzero(restart)
            new_rows = self._rows(new_envs)
            t0 = self._starts(new_envs, rng, episode_length)
            portfolio.reset(np.repeat(t0 - 1, self.n_agents), new_rows)
            self.done[new_rows] = True  # in cash for the carry step
        if nz(self.done):
            target[self.done] = 0.0
        t = portfolio.t
        res = portfolio.step(target, check=False)
        costs = res.fill.costs
        rewards = self.reward(
            res.value_before,
            res.value_after,
            costs,
            res.fill.traded,
            res.allowed,
            self.data.momentum[t],
            res.drawdown_before,
            res.drawdown_after,
        )
        self.episode_terms += self.reward.contrib
        rec = self.record
        rec.value, rec.costs, rec.weights, rec.drawdown = res.value_after, costs, res.allowed, res.drawdown_after
        rec.rewards, rec.clock = rewards, portfolio.clock
        terminated = res.value_after <= self.ruin_value
        if self.terminate_on_halt:
            terminated |= portfolio.risk.state == HALTED
        terminated &= ~self.done
        self.done |= terminated
        if new_envs is not None and new_rows is not None:  # in cash with no target, the gate flagged nothing
            self._fresh(new_envs, new_rows)
        truncated = portfolio.clock[:: self.n_agents] >= self.t_end
        return self._observe(), rewards, terminated, truncated

    def _observe(self) -> np.ndarray:
        portfolio = self.portfolio
        progress = (portfolio.clock - self._row_t0) / self._row_len
        return self.observer.observe(
            portfolio.t,
            self.close[portfolio.t],
            portfolio.book,
            portfolio.risk,
            self.reward,
            progress,
            self.order,
        )

    # ------------------------------------------------------------------ info
    def info(self, k: int, final: bool = False) -> dict:
        """Info of agent (row) k; `final` adds the episode's summed reward terms (for training metrics)."""
        return self.infos([k], [final])[0]

    def infos(self, rows: Sequence[int], final: Sequence[bool]) -> list[dict]:
        """Infos of many rows at once (envs.infos), from the last step's record."""
        return self.info_builder.infos(self.record, rows, final, self._critic(rows))

    def step_infos(self, rows: Sequence[int], final: Sequence[bool], every_step: bool) -> list[dict]:
        """Infos of `rows` after a step (envs.infos.InfoBuilder.step_infos)."""
        return self.info_builder.step_infos(self.record, rows, final, every_step, self._critic(rows))

    def _critic(self, rows: Sequence[int]) -> np.ndarray | None:
        return self.critic_inputs(np.asarray(rows, dtype=np.int64)) if self.forward is not None else None
