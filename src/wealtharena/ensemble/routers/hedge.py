"""`hedge`: online learning with expert advice, Fixed Share over the sleeves' log returns.

Herbster and Warmuth (1998), "Tracking the best expert": with loss l_e = -log(1 + r_e) of each
sleeve's realised day,
    v_e = w_e exp(-eta l_e) / sum_j w_j exp(-eta l_j)        (exponential weights: Hedge)
    w'_e = (1 - alpha) v_e + alpha / E                        (share: every expert keeps a floor)
so the weights grow as each sleeve's wealth to the power eta, and the share lets capital return to
an expert after a regime change (the regret bound is against the best *sequence* of experts).
With `learning_rate: adahedge` the rate is AdaHedge's (de Rooij, van Erven, Grunwald and Koolen
2014): eta_t = ln(E) / Delta_{t-1}, Delta the cumulative mixability gap, which needs no tuning.
"""

from __future__ import annotations

import numpy as np

from wealtharena.config import HedgeConfig
from wealtharena.ensemble.routers.base import DayView, Decision, top_text

MAX_RATE = 1e12  # AdaHedge before any gap: follow the leader


def _logsumexp(x: np.ndarray) -> float:
    m = float(x.max())
    return m + float(np.log(np.exp(x - m).sum()))


class FixedShare:
    """Fixed Share with a fixed or AdaHedge rate; `capital` starts equal."""

    name = "hedge"

    def __init__(self, cfg: HedgeConfig, experts: tuple[str, ...]):
        self.columns = experts
        self.adaptive = cfg.learning_rate == "adahedge"
        self.rate = 0.0 if self.adaptive else float(cfg.learning_rate)
        self.share = cfg.share
        self.log_w = np.full(len(experts), -np.log(len(experts)))
        self.gap = 0.0  # AdaHedge's cumulative mixability gap
        self.seen = 0

    def update(self, returns: np.ndarray) -> None:
        """One day of sleeve returns [E]."""
        loss = -np.log1p(np.maximum(returns, -0.999999))
        eta = (np.log(len(loss)) / self.gap if self.gap > 0 else MAX_RATE) if self.adaptive else self.rate
        w = np.exp(self.log_w)
        if self.adaptive:
            mix = -_logsumexp(self.log_w - eta * loss) / eta  # the mix loss
            self.gap += max(float(w @ loss) - mix, 0.0)
        v = self.log_w - eta * loss
        v -= _logsumexp(v)
        shared = (1.0 - self.share) * np.exp(v) + self.share / len(loss)
        self.log_w = np.log(np.maximum(shared, 1e-300))
        self.rate_used = eta

    def decide(self, view: DayView) -> Decision:
        while self.seen < view.s:  # every day realised since the last decision
            self.update(view.past_returns[self.seen])
            self.seen += 1
        capital = np.exp(self.log_w)
        capital /= capital.sum()
        rate = (
            f"AdaHedge rate {self.rate_used:.3g}"
            if self.adaptive and self.seen
            else f"rate {self.rate:g}"
            if not self.adaptive
            else "AdaHedge, no day seen yet"
        )
        return Decision(
            capital,
            label="",
            explanation=f"Fixed Share ({rate}, share {self.share:g}): {top_text(self.columns, capital)}",
        )
