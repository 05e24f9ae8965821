"""Data-quality checks on raw provider frames.

Each broken rule is a `DataQualityError` naming the ticker, the date and the rule, unless the
rule is listed in `data.quality.warn_only`; then it is a counted warning and the value is
repaired the documented way:

| rule            | what it catches                                 | repair when warn_only            |
|-----------------|-------------------------------------------------|----------------------------------|
| empty           | a ticker with no rows                           | (always an error)                |
| missing_column  | no Date or Close column                         | (always an error)                |
| bad_date        | an unparseable date                             | (always an error)                |
| non_numeric     | a price that is not a number (e.g. "n/a")       | becomes missing, then filled     |
| non_positive    | a price <= 0 or a negative volume               | becomes missing, then filled     |
| duplicate_date  | the same date twice                             | the last row is kept             |
| unsorted_dates  | dates out of order                              | rows are sorted                  |
| jump            | |log return| > max_abs_log_return (e.g. an unadjusted split) | kept as is          |

Gaps (`nan_run`) are handled when the panel is aligned (`market_data.align`).
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from wealtharena.config import QualityConfig
from wealtharena.data.providers import FIELDS, RawPrices
from wealtharena.errors import DataQualityError

log = logging.getLogger(__name__)


@dataclass
class QualityReport:
    """Warnings that were allowed, counted by rule and listed with ticker and date."""

    counts: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    per_ticker: Counter[str] = field(default_factory=Counter)

    def add(self, rule: str, ticker: str, date: object, detail: str) -> None:
        self.counts[rule] += 1
        self.per_ticker[ticker] += 1
        self.warnings.append(f"{rule}: {ticker} {str(date)[:10]}: {detail}")


class _Checker:
    def __init__(self, cfg: QualityConfig, report: QualityReport, ticker: str, source: str | None):
        self.cfg, self.report, self.ticker, self.source = cfg, report, ticker, source

    def broken(self, rule: str, date: object, detail: str) -> None:
        if rule in self.cfg.warn_only:
            self.report.add(rule, self.ticker, date, detail)
        else:
            raise DataQualityError(rule, self.ticker, date, detail, self.source)


def check_frames(raw: RawPrices, cfg: QualityConfig) -> tuple[dict[str, pd.DataFrame], pd.Series | None, QualityReport]:
    """Validate every ticker frame and the benchmark; return numeric, sorted, de-duplicated copies."""
    report = QualityReport()
    clean: dict[str, pd.DataFrame] = {}
    for ticker, frame in raw.frames.items():
        clean[ticker] = check_frame(frame, ticker, cfg, report, raw.origins.get(ticker, raw.source))
    bench = None
    if raw.benchmark is not None:
        name = raw.benchmark_name or "benchmark"
        bench = check_frame(raw.benchmark.to_frame("close"), name, cfg, report, raw.source)["close"]
    for line in report.warnings[:20]:
        log.warning("data quality (allowed by config): %s", line)
    if len(report.warnings) > 20:
        log.warning("... and %d more data-quality warnings", len(report.warnings) - 20)
    return clean, bench, report


def check_frame(frame: pd.DataFrame, ticker: str, cfg: QualityConfig, report: QualityReport,
                source: str | None = None) -> pd.DataFrame:
    check = _Checker(cfg, report, ticker, source)
    if frame is None or len(frame) == 0:
        raise DataQualityError("empty", ticker, None, "no rows in the requested date range", source)
    if "close" not in frame.columns:
        raise DataQualityError("missing_column", ticker, None, f"no close column (columns: {list(frame.columns)})", source)
    frame = frame[[c for c in FIELDS if c in frame.columns]]

    index = pd.DatetimeIndex(frame.index)
    if not index.is_monotonic_increasing:
        pos = int(np.argmax(np.diff(index.asi8) < 0)) + 1
        check.broken("unsorted_dates", index[pos], f"{index[pos].date()} comes after {index[pos - 1].date()}")
        frame = frame.sort_index(kind="stable")
        index = pd.DatetimeIndex(frame.index)
    dup = index.duplicated(keep="last")
    if dup.any():
        first = index[int(np.argmax(dup))]
        check.broken("duplicate_date", first, f"{int(dup.sum())} duplicated date(s), first {first.date()}")
        frame = frame[~dup]

    numeric = frame.apply(pd.to_numeric, errors="coerce").astype("float64")
    was_value = frame.notna().to_numpy()
    became_nan = was_value & numeric.isna().to_numpy()
    if became_nan.any():
        row, col = np.argwhere(became_nan)[0]
        check.broken("non_numeric", numeric.index[row],
                     f"{int(became_nan.sum())} non-numeric value(s), first {frame.iat[row, col]!r} in {frame.columns[col]}")
    prices = [c for c in ("open", "high", "low", "close") if c in numeric.columns]
    bad = (numeric[prices] <= 0).to_numpy()
    if "volume" in numeric.columns:
        bad_vol = (numeric[["volume"]] < 0).to_numpy()
    else:
        bad_vol = np.zeros((len(numeric), 0), dtype=bool)
    if bad.any() or bad_vol.any():
        mask = np.concatenate([bad, bad_vol], axis=1)
        row, col = np.argwhere(mask)[0]
        cols = prices + (["volume"] if bad_vol.shape[1] else [])
        check.broken("non_positive", numeric.index[row],
                     f"{int(mask.sum())} non-positive value(s), first {numeric.iat[row, numeric.columns.get_loc(cols[col])]} in {cols[col]}")
        numeric[prices] = numeric[prices].where(~bad)
        if bad_vol.shape[1]:
            numeric["volume"] = numeric["volume"].where(~bad_vol[:, 0])

    close = numeric["close"].to_numpy()
    valid = np.flatnonzero(np.isfinite(close))
    if valid.size == 0:
        raise DataQualityError("empty", ticker, None, "no valid close price in the requested range", source)
    if valid.size > 1:
        jumps = np.abs(np.diff(np.log(close[valid])))
        for k in np.flatnonzero(jumps > cfg.max_abs_log_return):
            at, before = numeric.index[valid[k + 1]], numeric.index[valid[k]]
            ratio = close[valid[k + 1]] / close[valid[k]]
            check.broken("jump", at, f"close moved x{ratio:.3f} from {before.date()} (limit |log return| "
                                     f"{cfg.max_abs_log_return}); an unadjusted split? Use adjusted prices")
    numeric.index.name = "date"
    return numeric
