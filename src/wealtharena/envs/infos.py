"""Per-agent info dicts, read from the simulation core after a step (one conversion per array).

Keys: `portfolio_value`, `weights` (after risk, universe order), `drawdown`, `costs`, `risk_events`
(the gate's reasons this step), `risk_state`, `reward_terms` (signed, weighted; they add up to the
reward), `date` (of the close the observation is taken at), `profile`; on an episode's last step
`episode_reward_terms` (the episode's sums); in training runners with critic inputs, `critic`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from wealtharena.envs.rewards import TERMS
from wealtharena.portfolio.risk import REASONS, STATES

if TYPE_CHECKING:
    from wealtharena.envs.core import TradingCore


class InfoBuilder:
    """Builds info dicts for rows of a `TradingCore`; memoises event tuples and date strings."""

    def __init__(self, core: TradingCore):
        self.core = core
        self._flag_bits = 1 << np.arange(len(REASONS), dtype=np.int64)
        self._events: dict[int, tuple[str, ...]] = {}
        self._dates: dict[int, str] = {}

    def infos(self, rows: Sequence[int], final: Sequence[bool]) -> list[dict[str, Any]]:
        """Infos of `rows`; `final[i]` adds the episode's summed reward terms to row i's."""
        core = self.core
        risk = core.portfolio.risk
        idx = np.asarray(rows, dtype=np.int64)
        value = core.portfolio.book.value[idx].tolist()
        dd = core.reward.drawdown[idx].tolist()
        costs = core.last_costs[idx].tolist()
        weights = core.last_weights[idx]  # a fresh array: rows are views of it
        codes = (risk.flags[idx] @ self._flag_bits).tolist()
        states = risk.state[idx].tolist()
        terms = core.reward.contrib[idx].tolist()
        clock = core.portfolio.clock[idx].tolist()
        dates = core.data.market.dates
        out = []
        for i, k in enumerate(idx.tolist()):
            events = self._events.get(codes[i])
            if events is None:
                events = self._events[codes[i]] = tuple(REASONS[j] for j in range(len(REASONS)) if codes[i] >> j & 1)
            date = self._dates.get(clock[i])
            if date is None:
                date = self._dates[clock[i]] = str(dates[clock[i]])
            info = {
                "portfolio_value": value[i],
                "weights": weights[i],
                "drawdown": dd[i],
                "costs": costs[i],
                "risk_events": list(events),
                "risk_state": STATES[states[i]],
                "reward_terms": dict(zip(TERMS, terms[i])),
                "date": date,
                "profile": core.profiles[k],
            }
            if final[i]:
                info["episode_reward_terms"] = dict(zip(TERMS, core.episode_terms[k].tolist()))
            out.append(info)
        if core.forward is not None:
            for info, critic in zip(out, core.critic_inputs(idx)):
                info["critic"] = critic
        return out

    def step_infos(self, rows: Sequence[int], final: Sequence[bool], every_step: bool) -> list[dict[str, Any]]:
        """Infos after a step: full ones (`every_step`), or, for training runners, empty ones except on
        each row's last step, which keeps the episode summary (RLlib does not learn from infos)."""
        if every_step:
            return self.infos(rows, final)
        last = [k for k, f in zip(rows, final) if f]
        summary = dict(zip(last, self.infos(last, [True] * len(last)))) if last else {}
        if self.core.forward is None:
            return [summary.get(k, {}) for k in rows]
        critic = self.core.critic_inputs(np.asarray(rows, dtype=np.int64))
        return [{**summary.get(k, {}), "critic": critic[i]} for i, k in enumerate(rows)]
