"""The router protocol: what a router sees at the close of a day, and what it decides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from wealtharena.ensemble.signals import MarketSignals


@dataclass(frozen=True)
class DayView:
    """Everything known at the close of day `t` (data row), step `s` of the split: nothing later.

    `books` [E, N]: each expert's target book decided at this close; `past_returns` [s, E]: every
    sleeve's realised net return of each earlier step (step j runs from close j to close j+1, so
    all of them are known now); `signals`: the market state up to and including `t`."""

    s: int
    t: int
    books: np.ndarray
    past_returns: np.ndarray
    signals: MarketSignals

    @property
    def date(self) -> str:
        return str(self.signals.dates[self.t])


@dataclass
class Decision:
    """Capital weight per expert for the next day (summing to 1), or, in ranking mode, the book itself
    (`book` [N]; `capital` then holds the scorers' vote weights). `label`: the regime or the day's
    label; `explanation`: one sentence a person can check."""

    capital: np.ndarray
    label: str = ""
    explanation: str = ""
    book: np.ndarray | None = None


class Router(Protocol):
    """Called once per step, in order, with the day's view; keeps its own state between days."""

    name: str
    columns: tuple[str, ...]  # what `Decision.capital` is over (the experts, or ranking's scorers)

    def decide(self, view: DayView) -> Decision: ...


def normalise(w: np.ndarray) -> np.ndarray:
    """`w` scaled to sum to 1 (equal weights where it sums to nothing)."""
    total = float(w.sum())
    return w / total if total > 0 else np.full(len(w), 1.0 / len(w))


def drift(capital: np.ndarray, returns: np.ndarray) -> np.ndarray:
    """Capital weights after one day of sleeve returns, without rebalancing (buy and hold of the sleeves)."""
    return normalise(capital * (1.0 + returns))


def top_text(columns: tuple[str, ...], weights: np.ndarray, n: int = 3) -> str:
    order = np.argsort(-weights, kind="stable")[:n]
    return ", ".join(f"{columns[i]} {weights[i]:.2f}" for i in order if weights[i] > 0)
