from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import csv_config, write_ohlcv_csv
from wealtharena.config import config_from_dict
from wealtharena.data import load_market_data
from wealtharena.data.providers import YFinanceProvider, split_yfinance_frame
from wealtharena.errors import DataError, DataQualityError

FIXTURES = Path(__file__).parent / "fixtures"


def test_sample_provider_loads_the_real_set(sample_market):
    m = sample_market
    assert m.n_assets == 20 and m.n_dates == 8313
    assert str(m.dates[0]) == "1990-01-02" and str(m.dates[-1]) == "2022-12-28"
    assert m.tickers[:3] == ("AAPL", "AMD", "BAC") and m.fields == ("close",)
    assert m.benchmark_name == "SP500" and m.benchmark is not None and m.benchmark[0] == pytest.approx(359.69)
    assert m.close[0, 0] == pytest.approx(0.264)  # AAPL's adjusted close on 1990-01-02 in the data set
    assert m.split_dates("test") == (date(2019, 1, 2), date(2022, 12, 28))
    assert m.report.quality.counts["jump"] == 2  # AAPL 2000-09-29 and RRC 1990-04-10, allowed for the sample set


def test_sample_provider_rejects_unknown_ticker(cache_dir):
    cfg = config_from_dict({"data": {"tickers": ["AAPL", "NOPE"], "cache": {"enabled": False}}})
    with pytest.raises(DataError, match=r"\['NOPE'\] are not in the sample data set"):
        load_market_data(cfg.data)


def test_sample_jumps_are_allowed_events_reported_once_without_a_split_hint(caplog):
    """The sample set's two jumps are real (AAPL's -52% day of 2000-09-29, a stale RRC quote of 1990):
    by default they are allowed for it, listed in the load report and logged in one line, and no
    message calls them an unadjusted split; with warn_only: [] they are errors that say what to do."""
    import logging

    cfg = config_from_dict({"data": {"tickers": ["AAPL", "MSFT", "RRC"], "cache": {"enabled": False}}})
    with caplog.at_level(logging.INFO, logger="wealtharena.data"):
        market = load_market_data(cfg.data)
    quality = market.report.quality
    assert [w.split(":")[1].strip() for w in quality.warnings] == ["AAPL 2000-09-29", "RRC 1990-04-10"]
    lines = [r for r in caplog.records if "data-quality event" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO and "AAPL 2000-09-29" in lines[0].getMessage()
    assert "unadjusted" not in caplog.text
    strict = config_from_dict(
        {"data": {"tickers": ["AAPL", "MSFT"], "cache": {"enabled": False}, "quality": {"warn_only": []}}}
    )
    with pytest.raises(
        DataQualityError,
        match=r"(?s)'jump' broken for ticker AAPL on 2000-09-29.*"
        r"unadjusted split.*warn_only: \[jump\]",
    ):
        load_market_data(strict.data)


@pytest.mark.parametrize(
    "data, message",
    [
        (
            {"start": "2090-01-01"},
            r"no data in the range asked for, 2090-01-01 \.\. 2022-12-31 \(data.start \.\. the "
            r"test split's end\): the sample set holds 1990-01-02 \.\. 2022-12-28",
        ),
        (
            {
                "start": "2023-06-01",
                "end": "2024-01-01",
                "splits": {"test": {"start": "2023-06-01", "end": "2024-01-01"}},
            },
            r"2023-06-01 \.\. 2024-01-01 \(data.start \.\. data.end\): the sample set holds",
        ),
    ],
)
def test_a_range_outside_the_sample_set_is_refused_before_loading(data, message, monkeypatch):
    from wealtharena.data import providers

    def never(*args, **kwargs):
        raise AssertionError("the range must be checked before anything is loaded")

    monkeypatch.setattr(providers.SampleProvider, "fetch", never)
    cfg = config_from_dict({"data": {**data, "cache": {"enabled": False}}})
    with pytest.raises(DataError, match=message):
        load_market_data(cfg.data)


def test_csv_range_error_names_the_range_asked_for_and_the_files(tmp_path):
    write_ohlcv_csv(tmp_path, "AAA")
    cfg = csv_config(tmp_path, start="2030-01-01", end="2030-12-31")
    with pytest.raises(
        DataQualityError,
        match=r"no rows in the range asked for, 2030-01-01 \.\. 2030-12-31; "
        r"the file holds 2015-01-02 \.\. 2016-07-",
    ):
        load_market_data(cfg.data)


# ---------------------------------------------------------------------------------- yfinance
def _saved_download() -> pd.DataFrame:
    """What yfinance.download(["AAPL","MSFT"], group_by="column", auto_adjust=True) returns (values synthetic)."""
    frame = pd.read_csv(
        FIXTURES / "yfinance_download_group_by_column.csv", header=[0, 1], index_col=0, parse_dates=True
    )
    frame.columns = frame.columns.set_names(["Price", "Ticker"])
    return frame


def test_yfinance_layouts_are_all_understood():
    raw = _saved_download()
    by_column = split_yfinance_frame(raw, ["AAPL", "MSFT"])
    by_ticker = split_yfinance_frame(raw.swaplevel(axis=1).sort_index(axis=1), ["AAPL", "MSFT"])
    flat = split_yfinance_frame(raw.xs("AAPL", axis=1, level="Ticker"), ["AAPL"])
    for frames in (by_column, by_ticker):
        assert list(frames["AAPL"].columns) == ["open", "high", "low", "close", "volume"]
        pd.testing.assert_frame_equal(frames["AAPL"], by_column["AAPL"])
    pd.testing.assert_frame_equal(flat["AAPL"], by_column["AAPL"])
    assert by_column["MSFT"]["close"].iloc[0] == pytest.approx(raw[("Close", "MSFT")].iloc[0])


class _Downloads:
    """A stand-in for the network: serves the saved frame, optionally failing first."""

    def __init__(self, fail_times: int = 0, empty_for: set[str] | None = None):
        self.fail_times, self.empty_for, self.calls = fail_times, empty_for or set(), []

    def __call__(self, tickers, **kwargs):
        self.calls.append((list(tickers), kwargs))
        if len(self.calls) <= self.fail_times:
            raise ConnectionError("simulated connection reset")
        raw = _saved_download()
        if tickers == ["^GSPC"]:
            return raw.xs("AAPL", axis=1, level="Ticker")
        keep = [t for t in tickers if t in ("AAPL", "MSFT") and t not in self.empty_for]
        return raw.loc[:, raw.columns.get_level_values("Ticker").isin(keep)]


def _yf_config(**yf):
    return config_from_dict(
        {
            "data": {
                "provider": "yfinance",
                "tickers": ["AAPL", "MSFT"],
                "start": "2024-01-01",
                "end": "2024-01-31",
                "cache": {"enabled": False},
                "splits": {
                    "train": {"start": "2024-01-01", "end": "2024-01-04"},
                    "validation": {"start": "2024-01-05", "end": "2024-01-08"},
                    "test": {"start": "2024-01-09", "end": "2024-01-31"},
                },
                "yfinance": {"retries": 2, "backoff_seconds": 1.0, **yf},
            }
        }
    )


def test_yfinance_provider_retries_with_backoff_then_loads():
    cfg = _yf_config()
    sleeps: list[float] = []
    downloads = _Downloads(fail_times=2)
    market = load_market_data(cfg.data, provider=YFinanceProvider(cfg.data, downloads, sleeps.append))
    assert sleeps == [1.0, 2.0]
    assert market.tickers == ("AAPL", "MSFT") and market.fields == ("open", "high", "low", "close", "volume")
    assert downloads.calls[0][1]["auto_adjust"] is True and downloads.calls[0][1]["end"] == "2024-02-01"
    assert market.benchmark_name == "^GSPC" and market.n_dates == 8


def test_yfinance_gives_up_with_a_clear_error():
    cfg = _yf_config(retries=1)
    with pytest.raises(DataError, match=r"failed for \['AAPL', 'MSFT'\] after 2 attempts.*simulated"):
        YFinanceProvider(cfg.data, _Downloads(fail_times=5), lambda s: None).fetch(
            cfg.data.tickers, cfg.data.load_start, cfg.data.load_end
        )


def test_yfinance_ticker_with_no_data_is_named():
    cfg = _yf_config()
    with pytest.raises(DataError, match=r"no prices for \['MSFT'\]"):
        YFinanceProvider(cfg.data, _Downloads(empty_for={"MSFT"}), lambda s: None).fetch(
            cfg.data.tickers, cfg.data.load_start, cfg.data.load_end
        )


# --------------------------------------------------------------------------------------- csv
def test_csv_per_ticker_ohlcv_loads(tmp_path):
    for i, t in enumerate(["AAA", "BBB", "CCC"]):
        write_ohlcv_csv(tmp_path, t, seed=i)
    market = load_market_data(csv_config(tmp_path).data)
    assert market.tickers == ("AAA", "BBB", "CCC") and market.values.shape == (400, 3, 5)
    assert market.benchmark is None and market.report.cache == "off"


def test_csv_parquet_files_load(tmp_path):
    for i, t in enumerate(["AAA", "BBB"]):
        path = write_ohlcv_csv(tmp_path / "src", t, seed=i)
        pd.read_csv(path).to_parquet(tmp_path / f"{t}.parquet")
    market = load_market_data(csv_config(tmp_path).data)
    assert market.values.shape == (400, 2, 5)


def test_csv_wide_file_of_closes(tmp_path):
    dates = pd.bdate_range("2015-01-02", periods=400)
    rng = np.random.default_rng(1)
    wide = pd.DataFrame(
        {
            "Date": dates,
            "X": 10 * np.exp(np.cumsum(rng.normal(0, 0.01, 400))),
            "Y": 20 * np.exp(np.cumsum(rng.normal(0, 0.01, 400))),
        }
    )
    wide.to_csv(tmp_path / "closes.csv", index=False)
    cfg = csv_config(tmp_path, csv={"path": str(tmp_path / "closes.csv"), "layout": "wide"})
    market = load_market_data(cfg.data)
    assert market.tickers == ("X", "Y") and market.fields == ("close",)


def _two_good(tmp_path):
    write_ohlcv_csv(tmp_path, "AAA", seed=1)
    write_ohlcv_csv(tmp_path, "BBB", seed=2)


def _edit(path: Path, fn) -> None:
    frame = pd.read_csv(path)
    frame = fn(frame)
    frame.to_csv(path, index=False)


@pytest.mark.parametrize(
    "rule, edit, match",
    [
        (
            "non_numeric",
            lambda f: f.astype({"Close": object}).assign(Close=lambda d: d.Close.where(d.index != 100, "n/a")),
            r"'non_numeric' broken for ticker BAD on 2015-05-22.*'n/a'",
        ),
        (
            "non_positive",
            lambda f: f.assign(Close=lambda d: d.Close.where(d.index != 50, -1.0)),
            r"'non_positive' broken for ticker BAD on 2015-03-13",
        ),
        (
            "duplicate_date",
            lambda f: pd.concat([f.iloc[:10], f.iloc[9:10], f.iloc[10:]]),
            r"'duplicate_date' broken for ticker BAD on 2015-01-15",
        ),
        (
            "unsorted_dates",
            lambda f: pd.concat([f.iloc[:10], f.iloc[11:12], f.iloc[10:11], f.iloc[12:]]),
            r"'unsorted_dates' broken for ticker BAD on 2015-01-16",
        ),
        (
            "jump",
            lambda f: f.assign(**{c: f[c].where(f.index < 200, f[c] / 2) for c in ["Open", "High", "Low", "Close"]}),
            r"'jump' broken for ticker BAD on 2015-10-09.*x0\.5",
        ),
    ],
)
def test_csv_quality_rule_is_an_error_then_a_counted_warning(tmp_path, rule, edit, match):
    _two_good(tmp_path)
    _edit(write_ohlcv_csv(tmp_path, "BAD", seed=3), edit)
    with pytest.raises(DataQualityError, match=match) as err:
        load_market_data(csv_config(tmp_path).data)
    assert err.value.rule == rule and err.value.ticker == "BAD" and "BAD.csv" in str(err.value)
    market = load_market_data(csv_config(tmp_path, quality={"warn_only": [rule]}).data)
    assert market.report.quality.counts[rule] >= 1 and "BAD" in market.tickers
    assert np.isfinite(market.values).all()


def test_csv_empty_file(tmp_path):
    _two_good(tmp_path)
    (tmp_path / "BAD.csv").write_text("")
    with pytest.raises(DataQualityError, match=r"'empty' broken for ticker BAD.*empty"):
        load_market_data(csv_config(tmp_path).data)


def test_csv_header_only_file(tmp_path):
    _two_good(tmp_path)
    (tmp_path / "BAD.csv").write_text("Date,Open,High,Low,Close,Volume\n")
    with pytest.raises(DataQualityError, match=r"'empty' broken for ticker BAD"):
        load_market_data(csv_config(tmp_path).data)


def test_csv_missing_close_column(tmp_path):
    _two_good(tmp_path)
    _edit(write_ohlcv_csv(tmp_path, "BAD"), lambda f: f.drop(columns=["Close"]))
    with pytest.raises(DataQualityError, match=r"'missing_column' broken for ticker BAD.*no 'Close' column"):
        load_market_data(csv_config(tmp_path).data)


def test_csv_missing_date_column(tmp_path):
    _two_good(tmp_path)
    _edit(write_ohlcv_csv(tmp_path, "BAD"), lambda f: f.rename(columns={"Date": "Day"}))
    with pytest.raises(DataQualityError, match=r"'missing_column' broken for ticker BAD.*no 'Date' column"):
        load_market_data(csv_config(tmp_path).data)


def test_csv_unparseable_date(tmp_path):
    _two_good(tmp_path)
    _edit(write_ohlcv_csv(tmp_path, "BAD"), lambda f: f.assign(Date=f.Date.where(f.index != 7, "not-a-date")))
    with pytest.raises(DataQualityError, match=r"'bad_date' broken for ticker BAD on not-a-date"):
        load_market_data(csv_config(tmp_path).data)


def test_short_gap_is_filled_and_counted(tmp_path):
    _two_good(tmp_path)
    _edit(write_ohlcv_csv(tmp_path, "GAP", seed=4), lambda f: f.drop(index=range(100, 103)))
    market = load_market_data(csv_config(tmp_path).data)
    gap = market.report.tickers[market.tickers.index("GAP")]
    assert gap.filled == 3
    i = market.tickers.index("GAP")
    close = market.close[:, i]
    assert close[100] == close[99] == close[102]  # forward-filled from the last close
    assert market.field("volume")[100, i] == 0.0  # nothing traded on a filled day


def test_long_gap_drops_or_fails(tmp_path):
    _two_good(tmp_path)
    _edit(write_ohlcv_csv(tmp_path, "GAP", seed=4), lambda f: f.drop(index=range(100, 110)))
    market = load_market_data(csv_config(tmp_path).data)
    assert "GAP" not in market.tickers
    assert "10 consecutive missing days from 2015-05-22" in market.report.tickers[-1].dropped
    with pytest.raises(DataQualityError, match=r"'nan_run' broken for ticker GAP on 2015-05-22"):
        load_market_data(csv_config(tmp_path, on_long_gap="fail").data)


def test_late_starting_ticker_trims_the_panel(tmp_path):
    _two_good(tmp_path)
    write_ohlcv_csv(tmp_path, "NEW", seed=5, n=380, start="2015-01-30")
    market = load_market_data(csv_config(tmp_path).data)
    assert str(market.dates[0]) == "2015-01-30" and market.report.trimmed_start == date(2015, 1, 30)


def test_empty_split_is_a_clear_error(tmp_path):
    _two_good(tmp_path)
    cfg = csv_config(
        tmp_path,
        splits={
            "train": {"start": "2015-01-01", "end": "2015-12-31"},
            "validation": {"start": "2016-01-01", "end": "2016-03-31"},
            "test": {"start": "2020-01-01", "end": "2020-12-31"},
        },
    )
    with pytest.raises(DataError, match=r"split 'test' \(2020-01-01 \.\. 2020-12-31\) has 0 trading day"):
        load_market_data(cfg.data)
