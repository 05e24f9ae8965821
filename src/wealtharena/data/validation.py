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

Gaps (`nan_run`) are handled when the panel is aligned (`market_data.align`). Which rules only warn
depends on the provider when `warn_only` is null (`QualityConfig.allowed`). Allowed events are
logged once per load, in one line, and listed in the load report (`download_data.py` and every
run's data summary print them).
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
    """Events that broke a rule the config allows, counted by rule and listed with ticker and date."""

    counts: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    per_ticker: Counter[str] = field(default_factory=Counter)

    def add(self, rule: str, ticker: str, date: object, detail: str) -> None:
        self.counts[rule] += 1
        self.per_ticker[ticker] += 1
        self.warnings.append(f"{rule}: {ticker} {str(date)[:10]}: {detail}")

    def summary(self, limit: int = 5) -> str:
        """One line: how many allowed events, and the first `limit` of them."""
        if not self.warnings:
            return "no data-quality events"
        shown = "; ".join(self.warnings[:limit])
        more = f"; and {len(self.warnings) - limit} more" if len(self.warnings) > limit else ""
        return f"{len(self.warnings)} allowed data-quality event(s) (data.quality.warn_only): {shown}{more}"


class _Checker:
    def __init__(self, allowed: tuple[str, ...], report: QualityReport, ticker: str, source: str | None):
        self.allowed, self.report, self.ticker, self.source = allowed, report, ticker, source

    def broken(self, rule: str, date: object, detail: str, hint: str = "") -> None:
        if rule in self.allowed:
            self.report.add(rule, self.ticker, date, detail)
        else:
            raise DataQualityError(rule, self.ticker, date, detail + hint, self.source)


def check_frames(
    raw: RawPrices, cfg: QualityConfig, provider: str = ""
) -> tuple[dict[str, pd.DataFrame], pd.Series | None, QualityReport]:
    """Validate every ticker frame and the benchmark; return numeric, sorted, de-duplicated copies.
    `provider` decides which rules only warn when `cfg.warn_only` is null."""
    report = QualityReport()
    allowed = cfg.allowed(provider)
    clean: dict[str, pd.DataFrame] = {}
    for ticker, frame in raw.frames.items():
        clean[ticker] = check_frame(frame, ticker, cfg, report, raw.origins.get(ticker, raw.source), allowed)
    bench = None
    if raw.benchmark is not None:
        name = raw.benchmark_name or "benchmark"
        bench = check_frame(raw.benchmark.to_frame("close"), name, cfg, report, raw.source, allowed)["close"]
    if report.warnings:
        log.info("%s", report.summary())
    return clean, bench, report


def check_frame(
    frame: pd.DataFrame,
    ticker: str,
    cfg: QualityConfig,
    report: QualityReport,
    source: str | None = None,
    allowed: tuple[str, ...] | None = None,
) -> pd.DataFrame:
    check = _Checker(cfg.allowed("") if allowed is None else allowed, report, ticker, source)
    if frame is None or len(frame) == 0:
        raise DataQualityError("empty", ticker, None, "no rows in the requested date range", source)
    if "close" not in frame.columns:
        raise DataQualityError(
            "missing_column", ticker, None, f"no close column (columns: {list(frame.columns)})", source
        )
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
        check.broken(
            "non_numeric",
            numeric.index[row],
            f"{int(became_nan.sum())} non-numeric value(s), first {frame.iat[row, col]!r} in {frame.columns[col]}",
        )
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
        first = numeric.iat[row, numeric.columns.get_loc(cols[col])]
        check.broken(
            "non_positive", numeric.index[row], f"{int(mask.sum())} non-positive value(s), first {first} in {cols[col]}"
        )
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
            check.broken(
                "jump",
                at,
                f"close moved x{ratio:.3f} from {before.date()} (|log return| "
                f"{jumps[k]:.2f} > data.quality.max_abs_log_return {cfg.max_abs_log_return})",
                hint="; if this is an unadjusted split, use adjusted prices; if it is a real move, allow it "
                "with data.quality.warn_only: [jump]",
            )
    numeric.index.name = "date"
    return numeric
