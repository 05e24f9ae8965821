"""Market-data providers: where raw prices come from.

A provider returns `RawPrices`: one DataFrame per ticker (DatetimeIndex, lower-case field
columns among open/high/low/close/volume) plus an optional benchmark close series. Nothing is
cleaned here; `validation.py` checks and `market_data.py` aligns.

- `SampleProvider`: real adjusted daily closes of 20 S&P 500 stocks and the S&P 500 index,
  1990-01-02 .. 2022-12-28, shipped inside the `skfolio` wheel. Works offline. Closes only.
- `YFinanceProvider`: batch download through yfinance with retries and backoff.
- `CsvProvider`: a folder of per-ticker CSV/Parquet files, or one wide file of closes.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Protocol

import pandas as pd
from skfolio.datasets import load_sp500_dataset, load_sp500_index

from wealtharena.config import DataConfig
from wealtharena.errors import DataError, DataQualityError

log = logging.getLogger(__name__)

FIELDS = ("open", "high", "low", "close", "volume")
BENCHMARK_KEY = "__benchmark__"


@dataclass
class RawPrices:
    """Provider output before validation. `frames[ticker]` has a DatetimeIndex and field columns."""

    frames: dict[str, pd.DataFrame]
    benchmark: pd.Series | None
    benchmark_name: str | None
    source: str
    origins: dict[str, str] = field(default_factory=dict)  # ticker -> file it came from, for errors


class Provider(Protocol):
    name: str

    def cache_key_parts(self) -> dict[str, object]: ...

    def check_range(self, start: date, end: date, asked: str) -> None:
        """Raise `DataError` before any loading when [start, end] is empty or outside what the source holds;
        `asked` describes the range for the message (`DataConfig.describe_range`)."""

    def fetch(
        self, tickers: list[str] | None, start: date, end: date, progress: Callable[[int], None] | None = None
    ) -> RawPrices: ...


# ------------------------------------------------------------------------------------ sample
class SampleProvider:
    """Real prices that ship with skfolio (BSD-3): 20 S&P 500 stocks + the S&P 500 index.

    Adjusted closes only, rounded to 3 decimals by the dataset (early, low-priced years show
    tick-sized steps). The universe was picked with hindsight: it is survivorship-biased.
    """

    name = "sample"
    universe = (
        "AAPL",
        "AMD",
        "BAC",
        "BBY",
        "CVX",
        "GE",
        "HD",
        "JNJ",
        "JPM",
        "KO",
        "LLY",
        "MRK",
        "MSFT",
        "PEP",
        "PFE",
        "PG",
        "RRC",
        "UNH",
        "WMT",
        "XOM",
    )
    span = (date(1990, 1, 2), date(2022, 12, 28))  # first and last day of skfolio's sp500 dataset

    def cache_key_parts(self) -> dict[str, object]:
        return {"dataset": "skfolio.sp500_dataset+sp500_index", "skfolio": version("skfolio")}

    def check_range(self, start: date, end: date, asked: str) -> None:
        first, last = self.span
        if start > end or start > last or end < first:
            raise DataError(
                f"no data in the range asked for, {asked}: the sample set holds {first} .. {last}. "
                "Change data.start / data.end (download_data.py --start / --end) or the splits, or use "
                "data.provider: yfinance or csv for other dates"
            )

    def fetch(
        self, tickers: list[str] | None, start: date, end: date, progress: Callable[[int], None] | None = None
    ) -> RawPrices:
        wide = load_sp500_dataset()
        index = load_sp500_index()["SP500"]
        wanted = list(tickers) if tickers else list(wide.columns)
        unknown = [t for t in wanted if t not in wide.columns]
        if unknown:
            raise DataError(
                f"tickers {unknown} are not in the sample data set; it holds: {', '.join(wide.columns)}. "
                "Use data.provider: yfinance or csv for other tickers."
            )
        lo, hi = pd.Timestamp(start), pd.Timestamp(end)
        wide = wide.loc[lo:hi]
        frames = {t: wide[[t]].rename(columns={t: "close"}) for t in wanted}
        if progress:
            progress(len(wanted))
        return RawPrices(frames, index.loc[lo:hi].astype("float64"), "SP500", "skfolio sp500_dataset (bundled)")


# ---------------------------------------------------------------------------------- yfinance
class YFinanceProvider:
    """Daily OHLCV from Yahoo Finance via yfinance, adjusted (`auto_adjust=True`), in batches.

    Handles both column layouts yfinance returns: (field, ticker) and (ticker, field)
    MultiIndex, and flat columns for a single ticker. Retries failed batches with exponential
    backoff; a ticker that returns nothing is a `DataError` naming it.
    """

    name = "yfinance"

    def __init__(
        self,
        cfg: DataConfig,
        download: Callable[..., pd.DataFrame] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.cfg = cfg.yfinance
        self._download = download
        self._sleep = sleep

    def cache_key_parts(self) -> dict[str, object]:
        return {"auto_adjust": True, "interval": "1d", "benchmark": self.cfg.benchmark}

    def check_range(self, start: date, end: date, asked: str) -> None:
        if start > end or start > date.today():
            raise DataError(
                f"no data in the range asked for, {asked}: Yahoo holds daily prices up to today "
                f"({date.today()}). Change data.start / data.end or the splits"
            )

    def _call(self, tickers: list[str], start: date, end: date) -> pd.DataFrame:
        download = self._download
        if download is None:
            import yfinance  # only the yfinance provider needs it (about a second to import)

            download = yfinance.download
        with _quiet_yfinance():
            return self._download_with(download, tickers, start, end)

    def _download_with(
        self, download: Callable[..., pd.DataFrame], tickers: list[str], start: date, end: date
    ) -> pd.DataFrame:
        # yfinance's `end` is exclusive.
        return download(
            tickers,
            start=start.isoformat(),
            end=(end + timedelta(days=1)).isoformat(),
            interval="1d",
            auto_adjust=True,
            group_by="column",
            progress=False,
            threads=True,
            timeout=self.cfg.timeout_seconds,
        )

    def _with_retries(self, tickers: list[str], start: date, end: date) -> pd.DataFrame:
        last: Exception | None = None
        for attempt in range(self.cfg.retries + 1):
            try:
                frame = self._call(tickers, start, end)
                if frame is not None and not frame.empty:
                    return frame
                last = DataError(f"yfinance returned no rows for {tickers} between {start} and {end}")
            except Exception as exc:  # network errors come in many types from requests/curl_cffi
                last = exc
            if attempt < self.cfg.retries:
                delay = self.cfg.backoff_seconds * (2**attempt)
                log.warning(
                    "yfinance batch %s failed (%s); retry %d/%d in %.1fs",
                    tickers[:3],
                    last,
                    attempt + 1,
                    self.cfg.retries,
                    delay,
                )
                self._sleep(delay)
        raise DataError(
            f"yfinance download failed for {tickers} after {self.cfg.retries + 1} attempts: {last}. "
            "Check the network and the ticker symbols, or use data.provider: sample / csv offline."
        )

    def fetch(
        self, tickers: list[str] | None, start: date, end: date, progress: Callable[[int], None] | None = None
    ) -> RawPrices:
        if not tickers:
            raise DataError("data.tickers must list the symbols to download with provider 'yfinance'")
        frames: dict[str, pd.DataFrame] = {}
        size = self.cfg.batch_size
        for i in range(0, len(tickers), size):
            batch = tickers[i : i + size]
            raw = self._with_retries(batch, start, end)
            for ticker, frame in split_yfinance_frame(raw, batch).items():
                frames[ticker] = frame
            if progress:
                progress(len(batch))
        empty = [t for t in tickers if t not in frames or frames[t]["close"].notna().sum() == 0]
        if empty:
            raise DataError(
                f"yfinance returned no prices for {empty} between {start} and {end}: "
                "check the symbols (Yahoo spelling, e.g. BRK-B) and the date range"
            )
        benchmark = None
        if self.cfg.benchmark:
            bench_raw = self._with_retries([self.cfg.benchmark], start, end)
            benchmark = split_yfinance_frame(bench_raw, [self.cfg.benchmark])[self.cfg.benchmark]["close"]
        return RawPrices(frames, benchmark, self.cfg.benchmark, "yfinance")


def split_yfinance_frame(raw: pd.DataFrame, tickers: list[str]) -> dict[str, pd.DataFrame]:
    """Turn what `yfinance.download` returned into one lower-case OHLCV frame per ticker."""
    out: dict[str, pd.DataFrame] = {}
    cols = raw.columns
    if isinstance(cols, pd.MultiIndex):
        lvl0 = {str(c).lower() for c in cols.get_level_values(0)}
        field_level = 0 if lvl0 & set(FIELDS) else 1
        ticker_level = 1 - field_level
        present = list(dict.fromkeys(cols.get_level_values(ticker_level)))
        for ticker in tickers:
            if ticker not in present:
                continue
            sub = raw.xs(ticker, axis=1, level=ticker_level)
            out[ticker] = _normalise_columns(sub)
    else:
        if len(tickers) != 1:
            raise DataError(f"yfinance returned flat columns {list(cols)} for several tickers {tickers}")
        out[tickers[0]] = _normalise_columns(raw)
    return out


def _normalise_columns(frame: pd.DataFrame) -> pd.DataFrame:
    renamed = frame.rename(columns=lambda c: str(c).lower().replace("adj close", "adj_close"))
    if "close" not in renamed and "adj_close" in renamed:
        renamed = renamed.rename(columns={"adj_close": "close"})
    keep = [c for c in FIELDS if c in renamed.columns]
    result = renamed[keep].copy()
    result.index = pd.DatetimeIndex(pd.to_datetime(result.index)).tz_localize(None).normalize()
    result.index.name = "date"
    return result.dropna(how="all")


# --------------------------------------------------------------------------------------- csv
class CsvProvider:
    """Per-ticker files `<TICKER>.csv` / `.parquet` (Date, Open, High, Low, Close, Volume; Date and
    Close required) or one wide file (Date + one close column per ticker)."""

    name = "csv"

    def __init__(self, cfg: DataConfig):
        assert cfg.csv is not None
        self.cfg = cfg.csv

    def cache_key_parts(self) -> dict[str, object]:
        return {"path": str(self.cfg.path.resolve()), "layout": self.cfg.layout}

    def check_range(self, start: date, end: date, asked: str) -> None:
        """Each file's own range is only known once read: `fetch` names it beside the range asked for."""
        if start > end:
            raise DataError(f"no data in the range asked for, {asked}: change data.start / data.end or the splits")

    def fetch(
        self, tickers: list[str] | None, start: date, end: date, progress: Callable[[int], None] | None = None
    ) -> RawPrices:
        path = self.cfg.path
        frames: dict[str, pd.DataFrame] = {}
        origins: dict[str, str] = {}
        if self.cfg.layout == "wide":
            wide = _read_table(path, ticker=WIDE)
            date_col = _date_column(wide, path, WIDE)
            wide = wide.set_index(date_col)
            columns = [c for c in wide.columns]
            wanted = list(tickers) if tickers else columns
            missing = [t for t in wanted if t not in columns]
            if missing:
                raise DataQualityError(
                    "missing_column",
                    ",".join(missing),
                    None,
                    f"no column for these tickers; the file has {columns}",
                    str(path),
                )
            for t in wanted:
                frames[t] = wide[[t]].rename(columns={t: "close"})
                origins[t] = str(path)
        else:
            if not path.is_dir():
                raise DataError(
                    f"data.csv.path {path} is not a folder (layout: per_ticker expects one file per ticker)"
                )
            files = {
                p.stem.upper(): p
                for p in sorted(path.iterdir())
                if p.suffix.lower() in (".csv", ".parquet", ".pq") and p.stem.upper() != BENCHMARK_KEY.upper()
            }
            wanted = list(tickers) if tickers else sorted(files)
            missing = [t for t in wanted if t not in files]
            if missing:
                raise DataError(f"no file for tickers {missing} in {path}; found: {sorted(files)}")
            for t in wanted:
                table = _read_table(files[t], ticker=t)
                date_col = _date_column(table, files[t], t)
                table = table.rename(columns={c: str(c).strip().lower() for c in table.columns if c != date_col})
                if "close" not in table.columns:
                    raise DataQualityError(
                        "missing_column", t, None, f"no 'Close' column (columns: {list(table.columns)})", str(files[t])
                    )
                frames[t] = table.set_index(date_col)[[c for c in FIELDS if c in table.columns]]
                origins[t] = str(files[t])
                if progress:
                    progress(1)
        for t, frame in frames.items():
            frame.index = _parse_dates(frame.index, t, origins[t])
            frame.index.name = "date"
            inside = frame.loc[(frame.index >= pd.Timestamp(start)) & (frame.index <= pd.Timestamp(end))]
            if inside.empty and len(frame):
                raise DataQualityError(
                    "empty",
                    t,
                    None,
                    f"no rows in the range asked for, {start} .. {end}; the file "
                    f"holds {frame.index.min().date()} .. {frame.index.max().date()}: change "
                    "data.start / data.end or the splits",
                    origins[t],
                )
            frames[t] = inside
        benchmark = None
        if self.cfg.benchmark_file is not None:
            table = _read_table(self.cfg.benchmark_file, ticker="benchmark")
            date_col = _date_column(table, self.cfg.benchmark_file, "benchmark")
            if self.cfg.benchmark_column not in table.columns:
                raise DataQualityError(
                    "missing_column",
                    "benchmark",
                    None,
                    f"no '{self.cfg.benchmark_column}' column",
                    str(self.cfg.benchmark_file),
                )
            series = table.set_index(date_col)[self.cfg.benchmark_column]
            series.index = _parse_dates(series.index, "benchmark", str(self.cfg.benchmark_file))
            benchmark = series.loc[pd.Timestamp(start) : pd.Timestamp(end)]
        return RawPrices(frames, benchmark, "benchmark" if benchmark is not None else None, str(path), origins)


@contextlib.contextmanager
def _quiet_yfinance() -> Iterator[None]:
    """yfinance's own output (its logger's errors, prints, pandas' deprecation warnings inside it) held back:
    a failure reaches the user once, as this module's `DataError` after the retries."""
    logger = logging.getLogger("yfinance")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


WIDE = "(wide file)"  # what a wide file's messages name instead of one ticker


def _read_table(path: Path, ticker: str) -> pd.DataFrame:
    if not path.exists():
        what = "the prices of every ticker (data.csv.layout: wide)" if ticker == WIDE else f"ticker {ticker}"
        raise DataError(
            f"{path} does not exist: it should hold {what}; check data.csv.path (relative paths start from the "
            "folder you run from)"
        )
    if path.stat().st_size == 0:
        raise DataQualityError("empty", ticker, None, "the file is empty", str(path))
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            table = pd.read_parquet(path)
            if table.index.name is not None and table.index.name.lower() == "date":
                table = table.reset_index()
        else:
            # Only empty cells are missing; "n/a", "null", "-" are reported as non-numeric.
            table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise DataQualityError("empty", ticker, None, "the file has no rows", str(path)) from None
    except Exception as exc:
        raise DataError(f"cannot read {path} for {ticker}: {exc}") from None
    if table.empty:
        raise DataQualityError("empty", ticker, None, "the file has a header but no rows", str(path))
    return table


def _date_column(table: pd.DataFrame, path: Path, ticker: str) -> str:
    for c in table.columns:
        if str(c).strip().lower() in ("date", "datetime", "timestamp"):
            return c
    raise DataQualityError(
        "missing_column", ticker, None, f"no 'Date' column (columns: {list(table.columns)})", str(path)
    )


def _parse_dates(index: Iterable[object], ticker: str, source: str) -> pd.DatetimeIndex:
    parsed = pd.to_datetime(pd.Index(index), errors="coerce", format="mixed")
    bad = [v for v, p in zip(index, parsed) if pd.isna(p)]
    if bad:
        raise DataQualityError("bad_date", ticker, bad[0], f"{len(bad)} unparseable date(s), first {bad[0]!r}", source)
    return pd.DatetimeIndex(parsed).tz_localize(None).normalize()


def make_provider(cfg: DataConfig) -> Provider:
    if cfg.provider == "sample":
        return SampleProvider()
    if cfg.provider == "yfinance":
        return YFinanceProvider(cfg)
    return CsvProvider(cfg)
