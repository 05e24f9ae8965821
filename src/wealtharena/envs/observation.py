"""What an agent observes: the columns, their names, and `ObservationBuilder`, which fills them.

Layout of one agent's observation (float32):

| block     | columns                                 | meaning, range                                   | as of       |
|-----------|-----------------------------------------|--------------------------------------------------|-------------|
| asset     | `<feature>.<TICKER>.t-<lag>`, W x N x F | TA-Lib features, z-scored on train, clip +-5     | close t-lag |
| market    | `market.<feature>`, M                   | index return/vol/trend, dispersion, breadth, regime | close t  |
| weights   | `weight.<TICKER>`, N                    | position value / portfolio value, [0, 1]         | close t     |
| upnl      | `upnl.<TICKER>`, N                      | close / average entry - 1 (0 when flat)          | close t     |
| portfolio | `portfolio.cash`                        | cash weight, [0, 1]                              | close t     |
|           | `portfolio.log_value`                   | log(value / initial cash)                        | close t     |
| risk      | `risk.vol_over_target`                  | trailing vol of the allowed weights / vol target | close t-1   |
|           | `risk.drawdown_over_limit`              | drawdown / max_drawdown                          | close t     |
|           | `risk.var_over_limit`                   | one-day VaR of the allowed weights / VaR limit   | close t-1   |
|           | `risk.sharpe_ema`                       | EMA Sharpe of the agent's returns (annual, +-10) | close t     |
|           | `risk.state_normal/reducing/halted`     | the risk manager's drawdown state, one-hot       | close t     |
| time      | `time.progress`, `time.remaining`       | share of the episode done / left, [0, 1]         | t           |
| desk      | `desk.<TICKER>`, N (multi-agent only)   | the other agents' mean weight per asset          | close t     |

The asset window and market block are the same for every agent on a day and come precomputed
(`EnvData.block`); the rest is the agent's own state, filled in place every step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from wealtharena.envs.actions import AssetOrder
    from wealtharena.envs.rewards import CompositeReward
    from wealtharena.portfolio import Book, RiskManager

AGENT_FIELDS = (
    "portfolio.cash",
    "portfolio.log_value",
    "risk.vol_over_target",
    "risk.drawdown_over_limit",
    "risk.var_over_limit",
    "risk.sharpe_ema",
    "risk.state_normal",
    "risk.state_reducing",
    "risk.state_halted",
    "time.progress",
    "time.remaining",
)
AGENT_BOUND = 10.0  # portfolio / risk observation values are clipped to +-10
SQRT_YEAR = float(np.sqrt(252.0))


def agent_names(tickers: Sequence[str]) -> tuple[str, ...]:
    return tuple(f"weight.{t}" for t in tickers) + tuple(f"upnl.{t}" for t in tickers) + AGENT_FIELDS


class ObservationBuilder:
    """Fills the [K, D] observations of K portfolios (n_envs episodes of n_agents) in place.

    `vol_target`, `max_drawdown` and `var_limit` ([K]) scale the risk columns; `initial` is the
    starting cash. The returned array is reused by the next call."""

    def __init__(
        self,
        block: np.ndarray,
        names: tuple[str, ...],
        n_envs: int,
        n_agents: int,
        n_assets: int,
        desk: bool,
        vol_target: np.ndarray,
        max_drawdown: np.ndarray,
        var_limit: np.ndarray,
        initial: float,
    ):
        self.block = block
        self.names = names
        self.n_envs, self.n_agents, self.n = n_envs, n_agents, n_assets
        self.k = n_envs * n_agents
        self.desk = desk
        self.market_dim = block.shape[1]
        self.agent_dim = 2 * n_assets + len(AGENT_FIELDS)
        self.dim = self.market_dim + self.agent_dim + (n_assets if desk else 0)
        self.obs = np.zeros((self.k, self.dim), dtype=np.float32)
        self._fields = np.zeros((self.k, len(AGENT_FIELDS)))
        self._onehot = np.eye(3)
        self.vol_target = np.where(np.isfinite(vol_target), vol_target, 1.0)
        self.max_drawdown = max_drawdown
        self.var_limit = var_limit
        self.initial = initial

    def observe(
        self,
        t: int | np.ndarray,
        close_t: np.ndarray,
        book: Book,
        risk: RiskManager,
        reward: CompositeReward,
        progress: np.ndarray,
        order: AssetOrder,
    ) -> np.ndarray:
        """Observations at the close of day `t` (one day, or one per row); `progress` [K] in [0, 1]."""
        obs = self.obs
        dm, n = self.market_dim, self.n
        w = book.weights()
        entry = book.entry
        # close / entry - 1 for held positions, 0 when flat (entry 0)
        upnl = (close_t - entry) / np.maximum(entry, 1e-300) * (entry > 0)
        if order.shuffled:  # asset order -> each row's slot order
            block = np.broadcast_to(self.block[t], (self.k, dm))
            obs[:, :dm] = np.take_along_axis(block, order.cols, 1)
            obs[:, dm : dm + n] = order.to_slots(w)
            obs[:, dm + n : dm + 2 * n] = order.to_slots(upnl)
        else:
            obs[:, :dm] = self.block[t]
            obs[:, dm : dm + n] = w
            obs[:, dm + n : dm + 2 * n] = upnl
        a = self._fields
        a[:, 0] = 1.0 - np.add.reduce(w, 1)
        a[:, 1] = np.log(book.value / self.initial)
        a[:, 2] = risk.port_vol / self.vol_target
        a[:, 3] = risk.drawdown / self.max_drawdown
        a[:, 4] = risk.var / self.var_limit
        a[:, 5] = reward.sharpe_ema() * SQRT_YEAR
        a[:, 6:9] = self._onehot[risk.state]
        a[:, 9] = progress
        a[:, 10] = 1.0 - progress
        agent = obs[:, dm : dm + self.agent_dim]
        agent[:, 2 * n :] = a
        np.minimum(agent, AGENT_BOUND, out=agent)
        np.maximum(agent, -AGENT_BOUND, out=agent)
        if self.desk:
            # what the other agents of the same episode hold, on average, by asset
            g = w.reshape(self.n_envs, self.n_agents, n)
            others = ((np.add.reduce(g, 1)[:, None, :] - g) / max(self.n_agents - 1, 1)).reshape(self.k, n)
            obs[:, -n:] = order.to_slots(others) if order.shuffled else others
        return obs
