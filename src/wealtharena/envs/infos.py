"""Per-agent info dicts, read from the simulation core after a step (one conversion per array).

Keys: `portfolio_value`, `weights` (after risk, universe order), `drawdown`, `costs`, `risk_events`
(the gate's reasons this step), `risk_state`, `reward_terms` (signed, weighted; they add up to the
reward), `date` (of the close the observation is taken at), `profile`; on an episode's last step
`episode_reward_terms` (the episode's sums); in training runners with critic inputs, `critic`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from wealtharena.envs.record import StepRecord
from wealtharena.envs.rewards import TERMS
from wealtharena.portfolio.risk import REASONS, STATES


class InfoBuilder:
    """Builds info dicts for rows of a `StepRecord`; memoises event tuples and date strings. `profiles`
    names each row's profile, `dates` the market's days."""

    def __init__(self, profiles: Sequence[str], dates: np.ndarray):
        self.profiles = list(profiles)
        self.dates = dates
        self._flag_bits = 1 << np.arange(len(REASONS), dtype=np.int64)
        self._events: dict[int, tuple[str, ...]] = {}
        self._dates: dict[int, str] = {}

    def infos(
        self, record: StepRecord, rows: Sequence[int], final: Sequence[bool], critic: np.ndarray | None = None
    ) -> list[dict[str, Any]]:
        """Infos of `rows`; `final[i]` adds the episode's summed reward terms to row i's; `critic` [len(rows), C]
        (training runners with critic inputs) adds each row's `critic` array."""
        idx = np.asarray(rows, dtype=np.int64)
        value = record.value[idx].tolist()
        dd = record.drawdown[idx].tolist()
        costs = record.costs[idx].tolist()
        weights = record.weights[idx]  # a fresh array: rows are views of it
        codes = (record.risk_flags[idx] @ self._flag_bits).tolist()
        states = record.risk_state[idx].tolist()
        terms = record.reward_terms[idx].tolist()
        clock = record.clock[idx].tolist()
        dates = self.dates
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
                "profile": self.profiles[k],
            }
            if final[i]:
                info["episode_reward_terms"] = dict(zip(TERMS, record.episode_terms[k].tolist()))
            out.append(info)
        if critic is not None:
            for info, c in zip(out, critic):
                info["critic"] = c
        return out

    def step_infos(
        self,
        record: StepRecord,
        rows: Sequence[int],
        final: Sequence[bool],
        every_step: bool,
        critic: np.ndarray | None = None,
    ) -> list[dict[str, Any]]:
        """Infos after a step: full ones (`every_step`), or, for training runners, empty ones except on
        each row's last step, which keeps the episode summary (RLlib does not learn from infos)."""
        if every_step:
            return self.infos(record, rows, final, critic)
        last = [k for k, f in zip(rows, final) if f]
        summary = dict(zip(last, self.infos(record, last, [True] * len(last)))) if last else {}
        if critic is None:
            return [summary.get(k, {}) for k in rows]
        return [{**summary.get(k, {}), "critic": critic[i]} for i, k in enumerate(rows)]
