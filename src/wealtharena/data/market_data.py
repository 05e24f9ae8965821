"""MarketData: one aligned panel (dates x assets x fields, float64) with a benchmark, split by date.

Alignment: the calendar is the union of the tickers' dates inside [start, end]. The panel starts
on the first date on which every kept ticker has a price. A missing day is forward-filled from
the previous close for at most `data.max_fill_days` consecutive days (counted per ticker); a
longer gap drops the ticker (`on_long_gap: drop`) or fails the load (`fail`). Volume is not
forward-filled: a filled day has volume 0 (nothing traded). No value is ever back-filled.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from wealtharena.config import DataConfig, SplitsConfig
from wealtharena.data.providers import FIELDS
from wealtharena.data.validation import QualityReport
from wealtharena.errors import DataError, DataQualityError

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


@dataclass
class TickerReport:
    ticker: str
    rows: int
    first: date | None
    last: date | None
    filled: int
    warnings: int = 0
    dropped: str | None = None


@dataclass
class LoadReport:
    """What happened while loading: per ticker rows/fills/drops, quality warnings, cache status."""

    tickers: list[TickerReport] = field(default_factory=list)
    quality: QualityReport = field(default_factory=QualityReport)
    cache: str = "off"  # "hit", "miss", "off", "unavailable"
    cache_location: str | None = None
    trimmed_start: date | None = None

    @property
    def filled_total(self) -> int:
        return sum(t.filled for t in self.tickers)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "ticker": t.ticker,
                    "rows": t.rows,
                    "first": t.first,
                    "last": t.last,
                    "days filled": t.filled,
                    "warnings": t.warnings,
                    "status": t.dropped or "ok",
                }
                for t in self.tickers
            ]
        )


@dataclass(frozen=True)
class MarketData:
    """An aligned price panel. `values[t, i, f]` is field `fields[f]` of `tickers[i]` on `dates[t]`.

    `splits[name]` is the half-open row range [start, stop) of that split. Everything is numpy:
    no pandas is needed downstream.
    """

    dates: np.ndarray  # datetime64[D], [T]
    tickers: tuple[str, ...]
    fields: tuple[str, ...]
    values: np.ndarray  # float64 [T, N, F]
    benchmark: np.ndarray | None  # float64 [T]
    benchmark_name: str | None
    splits: dict[str, tuple[int, int]]
    source: str
    provider: str
    report: LoadReport = field(default_factory=LoadReport, compare=False)

    @property
    def n_dates(self) -> int:
        return len(self.dates)

    @property
    def n_assets(self) -> int:
        return len(self.tickers)

    def has(self, name: str) -> bool:
        return name in self.fields

    def field(self, name: str) -> np.ndarray:
        """[T, N] view of one field."""
        try:
            return self.values[:, :, self.fields.index(name)]
        except ValueError:
            raise DataError(f"field '{name}' is not in this data set (fields: {self.fields})") from None

    @property
    def close(self) -> np.ndarray:
        return self.field("close")

    def split_dates(self, name: str) -> tuple[date, date]:
        a, b = self.splits[name]
        return _to_date(self.dates[a]), _to_date(self.dates[b - 1])

    def fingerprint(self) -> str:
        """sha256 over dates, tickers, fields, prices and benchmark: the data version a run logs."""
        h = hashlib.sha256()
        h.update(self.dates.astype("datetime64[D]").tobytes())
        h.update("|".join(self.tickers).encode())
        h.update("|".join(self.fields).encode())
        h.update(np.ascontiguousarray(self.values).tobytes())
        if self.benchmark is not None:
            h.update(self.benchmark.tobytes())
        return h.hexdigest()


def _to_date(value: np.datetime64) -> date:
    return pd.Timestamp(value).date()


def align(
    frames: dict[str, pd.DataFrame],
    benchmark: pd.Series | None,
    benchmark_name: str | None,
    cfg: DataConfig,
    quality: QualityReport,
    source: str,
    provider: str,
) -> MarketData:
    """Align validated per-ticker frames into a `MarketData` panel (see module docstring)."""
    if not frames:
        raise DataError("no tickers to load: data.tickers is empty or the provider returned nothing")
    fields = tuple(f for f in FIELDS if all(f in fr.columns for fr in frames.values()))
    partial = sorted({c for fr in frames.values() for c in fr.columns} - set(fields))
    if partial:
        log.warning("fields %s are missing for some tickers and are not used for any", partial)
    calendar = pd.DatetimeIndex(
        np.unique(
            np.concatenate([pd.DatetimeIndex(fr.index).to_numpy().astype("datetime64[ns]") for fr in frames.values()])
        )
    )
    if benchmark is not None:
        # Index days the stocks did not trade (rare data errors) are not added to the calendar.
        benchmark = benchmark.reindex(calendar)

    firsts = {t: fr["close"].first_valid_index() for t, fr in frames.items()}
    start = max(firsts.values())
    if start > calendar[0]:
        late = [t for t, d in firsts.items() if d == start]
        log.warning(
            "panel starts %s, the first day every ticker has a price (latest starter: %s)",
            start.date(),
            ", ".join(late),
        )
    first_day = calendar[0]
    calendar = calendar[calendar >= start]

    reports: list[TickerReport] = []
    kept: list[str] = []
    blocks: list[np.ndarray] = []
    limit = cfg.max_fill_days
    for ticker, frame in frames.items():
        frame = frame.reindex(calendar)
        close = frame["close"].to_numpy()
        missing = ~np.isfinite(close)
        run, first_bad = _longest_run(missing)
        rows = int((~missing).sum())
        rep = TickerReport(ticker, rows, _first_date(frame), _last_date(frame), 0, quality.per_ticker.get(ticker, 0))
        if run > limit:
            when = calendar[first_bad]
            detail = f"{run} consecutive missing days from {when.date()} (data.max_fill_days is {limit})"
            if cfg.on_long_gap == "fail":
                raise DataQualityError(
                    "nan_run", ticker, when, detail + "; raise max_fill_days or set on_long_gap: drop"
                )
            rep.dropped = f"dropped: {detail}"
            log.warning("dropping %s: %s", ticker, detail)
            reports.append(rep)
            continue
        block = np.empty((len(calendar), len(fields)), dtype=np.float64)
        close_filled = frame["close"].ffill(limit=limit)
        for j, name in enumerate(fields):
            col = frame[name]
            if name == "volume":
                block[:, j] = col.fillna(0.0).to_numpy()
            elif name == "close":
                block[:, j] = close_filled.to_numpy()
            else:
                # A missing open/high/low takes that day's close, itself filled from the last close.
                block[:, j] = col.fillna(close_filled).to_numpy()
        rep.filled = int(missing.sum())
        reports.append(rep)
        kept.append(ticker)
        blocks.append(block)

    if len(kept) < cfg.min_tickers:
        raise DataError(
            f"only {len(kept)} ticker(s) left after cleaning ({kept}); data.min_tickers is {cfg.min_tickers}. "
            "See the warnings above for the dropped ones."
        )
    values = np.stack(blocks, axis=1)
    bench = None
    if benchmark is not None:
        b = benchmark.reindex(calendar).ffill(limit=limit)
        if b.isna().any():
            bad = b.index[b.isna().to_numpy()][0]
            raise DataQualityError(
                "nan_run",
                benchmark_name or "benchmark",
                bad,
                f"benchmark has no value within {limit} days before {bad.date()}",
            )
        bench = b.to_numpy(dtype=np.float64)
    dates = calendar.to_numpy().astype("datetime64[D]")
    report = LoadReport(tickers=reports, quality=quality, trimmed_start=start.date() if start > first_day else None)
    return MarketData(
        dates=dates,
        tickers=tuple(kept),
        fields=fields,
        values=values,
        benchmark=bench,
        benchmark_name=benchmark_name,
        splits=split_rows(dates, cfg.splits),
        source=source,
        provider=provider,
        report=report,
    )


def split_rows(dates: np.ndarray, splits: SplitsConfig) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for name in SPLITS:
        rng = getattr(splits, name)
        a = int(np.searchsorted(dates, np.datetime64(rng.start, "D"), side="left"))
        b = int(np.searchsorted(dates, np.datetime64(rng.end, "D"), side="right"))
        if b - a < 2:
            span = f"{dates[0]} .. {dates[-1]}" if len(dates) else "nothing"
            raise DataError(
                f"split '{name}' ({rng.start} .. {rng.end}) has {max(b - a, 0)} trading day(s) in the "
                f"loaded data ({span}): adjust data.splits.{name} or the data range"
            )
        out[name] = (a, b)
    return out


def _longest_run(mask: np.ndarray) -> tuple[int, int]:
    """Length and start of the longest run of True in `mask`."""
    if not mask.any():
        return 0, -1
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    starts, ends = edges[::2], edges[1::2]
    k = int(np.argmax(ends - starts))
    return int(ends[k] - starts[k]), int(starts[k])


def _first_date(frame: pd.DataFrame) -> date | None:
    idx = frame["close"].first_valid_index()
    return idx.date() if idx is not None else None


def _last_date(frame: pd.DataFrame) -> date | None:
    idx = frame["close"].last_valid_index()
    return idx.date() if idx is not None else None
