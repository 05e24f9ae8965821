"""`volatility`: the volatility-regime mixture with a static weight table.

Each day the regime is the index's realised volatility against the `vol_quantile` quantile of its own
history up to the day before (calm / volatile), crossed with the sign of its `trend_days` return (up /
down): one of calm_up, calm_down, volatile_up, volatile_down (`ensemble.signals`). The capital weights
are that regime's row of `ensemble.volatility.table` (e.g. calm: more aggressive; volatile: more
conservative). The learnt version of this router is `gate`.
"""

from __future__ import annotations

import numpy as np

from wealtharena.config import REGIMES
from wealtharena.ensemble.routers.base import DayView, Decision, top_text


class VolatilityRegime:
    name = "volatility"

    def __init__(self, table: dict[str, np.ndarray], experts: tuple[str, ...]):
        """`table`: regime -> capital weights [E] (resolved from the config by `ExpertSet.resolve`)."""
        self.columns = experts
        self.table = table

    def decide(self, view: DayView) -> Decision:
        sig = view.signals
        t = len(sig.vol) - 1
        regime = REGIMES[int(sig.regime[t])]
        capital = self.table[regime]
        threshold = sig.vol_threshold[t]
        above = (
            f"above its {threshold:.1%} threshold"
            if sig.regime[t] >= 2
            else (f"below its {threshold:.1%} threshold" if np.isfinite(threshold) else "no threshold yet")
        )
        text = (
            f"index volatility {sig.vol[t]:.1%} ({above}), trend {sig.trend[t]:+.1%}: {regime} -> "
            f"{top_text(self.columns, capital)}"
        )
        return Decision(capital.copy(), label=regime, explanation=text)
