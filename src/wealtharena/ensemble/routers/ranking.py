"""`ranking`: specialised experts score every stock, a general expert ranks the stocks by pairwise votes,
and the desk holds the top K (after TradExpert's ranking mode, Ding et al., arXiv 2411.00782, where
language-model experts compare stocks pairwise and a relaxed sort orders them).

Scorers (`StockScorer`): every agent expert (its target weight in each stock is its score) and the
factor experts built from prices (63-day momentum, 5-day reversal, low 63-day volatility). Each
scorer's vote weight is its trailing rank information coefficient (the Spearman correlation of its
scores with the next day's returns, averaged over `ic_days`), floored at 0 (all zero: equal). Stock a
ranks above b when the weighted votes sign(score_e(a) - score_e(b)) sum to more than 0; pairwise
preferences need not be transitive (a > b > c > a), so the order is a relaxed sort by Copeland score
(wins minus losses), ties broken by the weighted mean rank, then by universe order. The desk holds the
top K stocks equally, through the fund's risk gate.

News and fundamentals experts (TradExpert's other specialists) need data this offline platform does
not ship; any object with `name` and `scores(view) -> [N]` is a `StockScorer` and can join the vote.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from wealtharena.config import RankingConfig
from wealtharena.ensemble.routers.base import DayView, Decision, normalise


class StockScorer(Protocol):
    name: str

    def scores(self, view: DayView) -> np.ndarray:
        """[N] a score per stock from what is known at the view's close (higher: better)."""


class AgentScorer:
    def __init__(self, name: str, expert: int):
        self.name, self.expert = name, expert

    def scores(self, view: DayView) -> np.ndarray:
        return view.books[self.expert]


class FactorScorer:
    def __init__(self, factor: str):
        self.name = factor

    def scores(self, view: DayView) -> np.ndarray:
        return getattr(view.signals, self.name)[-1]


def average_ranks(x: np.ndarray) -> np.ndarray:
    """[E, N] -> each row's ranks 1..N, ties given their average rank (scipy's rankdata, 'average')."""
    less = (x[:, None, :] < x[:, :, None]).sum(axis=2)
    equal = (x[:, None, :] == x[:, :, None]).sum(axis=2)
    return less + (equal + 1) / 2.0


def copeland_order(scores: np.ndarray, votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(stocks from best to worst, Copeland score per stock) of `scores` [E, N] under vote weights `votes` [E]."""
    diff = np.sign(scores[:, :, None] - scores[:, None, :])  # [E, N, N]: +1 where scorer e puts a above b
    margin = np.tensordot(votes, diff, axes=1)  # [N, N]
    copeland = (margin > 1e-12).sum(axis=1) - (margin < -1e-12).sum(axis=1)
    ranks = average_ranks(-scores)  # 1 = best, ties averaged
    mean_rank = np.round(votes @ ranks, 9)  # equal to rounding: a tie, settled by universe order
    order = np.lexsort((np.arange(scores.shape[1]), mean_rank, -copeland))
    return order, copeland


def rank_ic(scores: np.ndarray, returns: np.ndarray) -> np.ndarray:
    """[E] Spearman correlation of each scorer's scores with the realised returns (0 where undefined)."""
    a = average_ranks(scores)
    b = average_ranks(returns[None, :])[0]
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean()
    denom = np.sqrt((a * a).sum(axis=1) * (b * b).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, (a @ b) / denom, 0.0)


class RankingRouter:
    name = "ranking"

    def __init__(self, cfg: RankingConfig, scorers: Sequence[StockScorer], tickers: tuple[str, ...]):
        self.cfg = cfg
        self.scorers = list(scorers)
        self.columns = tuple(s.name for s in self.scorers)
        self.tickers = tickers
        self.ics: deque[np.ndarray] = deque(maxlen=cfg.ic_days)
        self.previous: np.ndarray | None = None

    def decide(self, view: DayView) -> Decision:
        scores = np.stack([s.scores(view) for s in self.scorers])  # [E, N]
        if self.previous is not None:  # how yesterday's scores did on today's returns (known at this close)
            self.ics.append(rank_ic(self.previous, view.signals.asset_returns[-1]))
        self.previous = scores
        mean_ic = np.mean(self.ics, axis=0) if self.ics else np.zeros(len(self.scorers))
        votes = normalise(np.maximum(mean_ic, 0.0))
        order, copeland = copeland_order(scores, votes)
        k = self.cfg.top_k
        book = np.zeros(scores.shape[1])
        book[order[:k]] = 1.0 / k
        top = ", ".join(f"{self.tickers[i]} ({copeland[i]:+d})" for i in order[: min(k, 5)])
        voters = ", ".join(f"{n} {v:.2f}" for n, v in sorted(zip(self.columns, votes), key=lambda x: -x[1])[:3])
        text = f"Copeland top {k}: {top}{' ...' if k > 5 else ''}; votes by trailing rank IC: {voters}"
        return Decision(votes, label="", explanation=text, book=book)
