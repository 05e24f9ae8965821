"""`meeting`: the experts meet every `round_days`, propose their books, and agree or vote.

At a meeting each expert proposes the book it holds now (its target weights, cash included) with a
confidence: its trailing Sharpe ratio over `confidence_days` of its realised net returns, floored at
0 (all zero: equal). The agreement score is 1 minus the confidence-weighted mean total-variation
distance between each proposal and the consensus book (the confidence-weighted mean proposal), so 1
means identical books. At or above `agreement_threshold` the desk adopts the consensus (capital in
proportion to confidence); below it a weighted vote decides: each expert's vote weight is learnt from
the past rounds' realised returns (multiplied by exp(rate x round log return) after every round), and
capital goes in proportion to vote weight x confidence (`proportional`) or all to the largest
(`plurality`). Between meetings the capital weights drift with the sleeves' returns (no rebalancing).
Every meeting is recorded (`meetings`) for the decision log and the round table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from wealtharena.config import MeetingConfig
from wealtharena.ensemble.routers.base import DayView, Decision, drift, normalise, top_text

ANNUAL = np.sqrt(252.0)


def trailing_sharpe(returns: np.ndarray, days: int) -> np.ndarray:
    """[E] annualised Sharpe of each column over its last `days` rows (nan with fewer than 2 rows)."""
    r = returns[-days:]
    if len(r) < 2:
        return np.full(returns.shape[1], np.nan)
    sd = r.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, r.mean(axis=0) / sd * ANNUAL, np.nan)


def agreement(proposals: np.ndarray, confidence: np.ndarray) -> tuple[float, np.ndarray]:
    """(agreement score in [0, 1], consensus book) of `proposals` [E, N+1] (cash last) under `confidence` [E]."""
    consensus = confidence @ proposals
    distance = 0.5 * np.abs(proposals - consensus).sum(axis=1)
    return float(1.0 - confidence @ distance), consensus


def with_cash(books: np.ndarray) -> np.ndarray:
    return np.c_[books, np.maximum(1.0 - books.sum(axis=1), 0.0)]


@dataclass
class Meeting:
    """One expert meeting: what was proposed, voted and decided; after the round ends, what it earned
    (`desk_return`) against the S&P 500 bought and held over the same days (`index_return`)."""

    date: str
    step: int
    decision: str  # consensus or vote
    agreement: float
    threshold: float
    proposals: dict[str, dict[str, float]]  # each expert's top holdings
    confidence: dict[str, float]
    votes: dict[str, float]
    capital_before: dict[str, float]
    capital_after: dict[str, float]
    consensus_top: dict[str, float]
    desk_return: float | None = None
    index_return: float | None = None
    end: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ExpertMeeting:
    name = "meeting"

    def __init__(self, cfg: MeetingConfig, experts: tuple[str, ...], tickers: tuple[str, ...]):
        self.cfg = cfg
        self.columns = experts
        self.tickers = tickers
        self.capital = np.full(len(experts), 1.0 / len(experts))
        self.votes = self.capital.copy()
        self.last: int | None = None  # step of the last meeting
        self.last_decision = ""
        self.meetings: list[Meeting] = []

    def meet(self, view: DayView) -> Decision:
        cfg, before = self.cfg, self.capital.copy()
        if self.last is not None:  # learn the votes from the round that just ended
            round_return = np.prod(1.0 + view.past_returns[self.last : view.s], axis=0) - 1.0
            self.votes = normalise(
                self.votes * np.exp(cfg.vote_learning_rate * np.log1p(np.maximum(round_return, -0.999999)))
            )
        confidence = normalise(np.nan_to_num(np.maximum(trailing_sharpe(view.past_returns, cfg.confidence_days), 0.0)))
        score, consensus = agreement(with_cash(view.books), confidence)
        if score >= cfg.agreement_threshold:
            decision, capital = "consensus", confidence
        else:
            decision = "vote"
            weighted = self.votes * confidence if (self.votes * confidence).sum() > 0 else self.votes
            capital = normalise(weighted)
            if cfg.vote == "plurality":
                capital = np.eye(len(capital))[int(np.argmax(capital))]
        self.capital, self.last, self.last_decision = capital, view.s, decision
        self.meetings.append(
            Meeting(
                date=view.date,
                step=view.s,
                decision=decision,
                agreement=round(score, 4),
                threshold=cfg.agreement_threshold,
                proposals={e: self._top(view.books[i]) for i, e in enumerate(self.columns)},
                confidence={e: round(float(c), 4) for e, c in zip(self.columns, confidence)},
                votes={e: round(float(v), 4) for e, v in zip(self.columns, self.votes)},
                capital_before={e: round(float(c), 4) for e, c in zip(self.columns, before)},
                capital_after={e: round(float(c), 4) for e, c in zip(self.columns, capital)},
                consensus_top=self._top(consensus[:-1]),
            )
        )
        text = (
            f"meeting: agreement {score:.2f} {'>=' if decision == 'consensus' else '<'} "
            f"{cfg.agreement_threshold:g}, {decision}: {top_text(self.columns, capital)}"
        )
        return Decision(capital.copy(), label=decision, explanation=text)

    def _top(self, book: np.ndarray, n: int = 3) -> dict[str, float]:
        order = np.argsort(-book, kind="stable")[:n]
        return {self.tickers[i]: round(float(book[i]), 4) for i in order if book[i] > 0}

    def decide(self, view: DayView) -> Decision:
        if view.s > 0:
            self.capital = drift(self.capital, view.past_returns[-1])
        if view.s % self.cfg.round_days == 0:
            return self.meet(view)
        return Decision(
            self.capital.copy(),
            label="held",
            explanation=f"held since the meeting of {self.meetings[-1].date} ({self.last_decision}), "
            "drifting with the sleeves",
        )
