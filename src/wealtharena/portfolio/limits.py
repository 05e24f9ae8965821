"""`RiskLimits`: every agent's limits as arrays [K] (one row per portfolio), from its `RiskConfig`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from wealtharena.config import SHARED_RISK_KEYS, RiskConfig


@dataclass(frozen=True)
class RiskLimits:
    """Per-portfolio limits; `inf` (or nan for Kelly, -1 for `resume_after` / `reduce_after`) where a limit is off."""

    max_position: np.ndarray
    max_leverage: np.ndarray
    vol_target: np.ndarray  # inf when off
    stop_loss: np.ndarray  # inf when off
    take_profit: np.ndarray  # inf when off
    cooldown_days: np.ndarray
    max_drawdown: np.ndarray
    halt_drawdown: np.ndarray
    resume_after: np.ndarray  # -1 = never
    reduce_after: np.ndarray  # -1 = only by recovery
    var_limit: np.ndarray
    max_correlation: np.ndarray
    corr_min_weight: np.ndarray
    kelly_fraction: np.ndarray  # nan when off
    vol_sizing: np.ndarray  # bool
    regime_mult: np.ndarray | None  # [K, 3] (bull, bear, volatile) or None when no agent uses it
    vol_lookback: int
    var_lookback: int
    var_confidence: float
    var_method: str

    @classmethod
    def from_configs(cls, risks: Sequence[RiskConfig]) -> RiskLimits:
        first = risks[0]
        for r in risks[1:]:
            for key in SHARED_RISK_KEYS:
                if getattr(r, key) != getattr(first, key):
                    raise ValueError(f"risk.{key} must be the same for every agent")

        def arr(fn: Callable[[RiskConfig], object], dtype: type = np.float64) -> np.ndarray:
            return np.array([fn(r) for r in risks], dtype=dtype)

        def off(value: float | None, default: float = np.inf) -> float:
            return default if value is None else value

        regime = None
        if any(r.regime_multipliers for r in risks):
            regime = np.array(
                [[(r.regime_multipliers or {}).get(g, 1.0) for g in ("bull", "bear", "volatile")] for r in risks]
            )
        return cls(
            max_position=arr(lambda r: r.max_position),
            max_leverage=arr(lambda r: r.max_leverage),
            vol_target=arr(lambda r: off(r.vol_target)),
            stop_loss=arr(lambda r: off(r.stop_loss)),
            take_profit=arr(lambda r: off(r.take_profit)),
            cooldown_days=arr(lambda r: r.reentry_cooldown_days, np.int64),
            max_drawdown=arr(lambda r: r.max_drawdown),
            halt_drawdown=arr(lambda r: r.halt_drawdown),
            resume_after=arr(lambda r: r.resume_after_days if r.resume == "cooldown" else -1, np.int64),
            reduce_after=arr(lambda r: r.reduce_after_days if r.reduce_exit == "cooldown" else -1, np.int64),
            var_limit=arr(lambda r: r.var_limit),
            max_correlation=arr(lambda r: r.max_correlation),
            corr_min_weight=arr(lambda r: r.correlation_min_weight),
            kelly_fraction=arr(lambda r: off(r.kelly_fraction, np.nan)),
            vol_sizing=arr(lambda r: r.vol_scaled_sizing, bool),
            regime_mult=regime,
            vol_lookback=first.vol_lookback,
            var_lookback=first.var_lookback,
            var_confidence=first.var_confidence,
            var_method=first.var_method,
        )
