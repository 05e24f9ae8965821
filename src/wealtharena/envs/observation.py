"""Names of every observation column (the market block's names come from `core.load_env_data`).

Layout of one agent's observation (float32):

| block        | columns                                   | meaning, range                                          | as of     |
|--------------|-------------------------------------------|---------------------------------------------------------|-----------|
| asset window | `<feature>.<TICKER>.t-<lag>`, W x N x F    | TA-Lib features, z-scored on train, clipped to +-5      | close t-lag |
| market       | `market.<feature>`, M                      | index returns/vol/trend, dispersion, breadth, regime 0/1 | close t   |
| weights      | `weight.<TICKER>`, N                       | position value / portfolio value, [0, 1]                | close t   |
| unrealised   | `upnl.<TICKER>`, N                         | close / average entry - 1 (0 when flat)                 | close t   |
| portfolio    | `portfolio.cash`                           | cash weight, [0, 1]                                     | close t   |
|              | `portfolio.log_value`                      | log(value / initial cash)                               | close t   |
| risk         | `risk.vol_over_target`                     | trailing vol of the last allowed weights / vol target   | close t-1 |
|              | `risk.drawdown_over_limit`                 | drawdown / max_drawdown                                 | close t   |
|              | `risk.var_over_limit`                      | one-day VaR of the last allowed weights / VaR limit     | close t-1 |
|              | `risk.sharpe_ema`                          | EMA Sharpe of the agent's returns (annualised, +-10)    | close t   |
|              | `risk.state_normal/reducing/halted`        | the risk manager's drawdown state, one-hot              | close t   |
| time         | `time.progress`, `time.remaining`          | share of the episode done / left, [0, 1]                | t         |
| desk (multi-agent only) | `desk.<TICKER>`, N              | the other agents' mean weight per asset                 | close t   |
"""
from __future__ import annotations

from collections.abc import Sequence

AGENT_FIELDS = ("portfolio.cash", "portfolio.log_value", "risk.vol_over_target", "risk.drawdown_over_limit",
                "risk.var_over_limit", "risk.sharpe_ema", "risk.state_normal", "risk.state_reducing",
                "risk.state_halted", "time.progress", "time.remaining")


def agent_names(tickers: Sequence[str]) -> tuple[str, ...]:
    return tuple(f"weight.{t}" for t in tickers) + tuple(f"upnl.{t}" for t in tickers) + AGENT_FIELDS
