"""Judging policies and baselines on a split: backtests (`backtest`), the validation training is chosen on,
fixed-window episodes, reports, the seed study, and the statistics that count the strategies tried.

    from wealtharena.evaluation import backtest
    print(backtest(cfg, data, policy, "test").metrics_table())
"""

from wealtharena.evaluation.backtest import Backtest, Track, TrackKey, backtest
from wealtharena.evaluation.validation import ValidationResult, run_validation

__all__ = ["Backtest", "Track", "TrackKey", "ValidationResult", "backtest", "run_validation"]
