"""Baselines through the same desk, gate and costs as the routers.

- `FixedCapital`: a constant capital split (one expert: that sleeve through the fund's gate; the
  equal-weight stocks sleeve: equal weight under the fund's own limits, the like-for-like baseline;
  the best agent in hindsight, which no one could have picked);
- `EqualCapital`: equal capital across the agents (an expert standing for several agents gets their
  share), rebalanced to equal every `round_days`, drifting in between;
- `Picker`: FinRL's ensemble rule (Yang, Liu, Zhong and Walid, ICAIF 2020), all capital to the agent
  with the best trailing Sharpe over `days`, reviewed every `days` (equal capital across the agents until
  the first review has that much history).
"""

from __future__ import annotations

import numpy as np

from wealtharena.ensemble.routers.base import DayView, Decision, drift, normalise, top_text
from wealtharena.ensemble.routers.meeting import trailing_sharpe


class FixedCapital:
    def __init__(self, name: str, capital: np.ndarray, experts: tuple[str, ...], text: str):
        self.name, self.columns = name, experts
        self.capital, self.text = capital, text

    def decide(self, view: DayView) -> Decision:
        return Decision(self.capital.copy(), explanation=self.text)


class EqualCapital:
    name = "equal_capital"

    def __init__(self, agents: list[int], counts: list[int], n_experts: int, experts: tuple[str, ...], round_days: int):
        self.columns = experts
        target = np.zeros(n_experts)
        target[agents] = counts
        self.target = normalise(target)
        self.capital = self.target.copy()
        self.round_days = round_days

    def decide(self, view: DayView) -> Decision:
        if view.s % self.round_days == 0:
            self.capital = self.target.copy()
            text = "rebalanced to equal capital per agent"
        else:
            self.capital = drift(self.capital, view.past_returns[-1])
            text = "drifting since the last rebalance"
        return Decision(self.capital.copy(), explanation=f"{text}: {top_text(self.columns, self.capital)}")


class Picker:
    name = "picker"

    def __init__(self, agents: list[int], n_experts: int, experts: tuple[str, ...], days: int):
        self.columns = experts
        self.agents = agents
        self.days = days
        self.capital = np.zeros(n_experts)
        self.capital[agents] = 1.0 / len(agents)
        self.text = "equal capital across the agents until the first review"

    def decide(self, view: DayView) -> Decision:
        if view.s > 0 and view.s % self.days == 0 and view.s >= self.days:
            sharpe = np.nan_to_num(trailing_sharpe(view.past_returns[:, self.agents], self.days), nan=-np.inf)
            best = self.agents[int(np.argmax(sharpe))]
            self.capital = np.eye(len(self.capital))[best]
            self.text = (
                f"review {view.date}: {self.columns[best]} had the best {self.days}-day Sharpe ({sharpe.max():.2f})"
            )
        elif view.s > 0 and self.capital.max() < 1.0:
            self.capital = drift(self.capital, view.past_returns[-1])
        return Decision(self.capital.copy(), explanation=self.text)
