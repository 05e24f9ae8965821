"""Causal features from TA-Lib: per-asset indicators [T, N, F] and market features [T, M].

Every value at row t uses prices up to and including day t (TA-Lib's functions are forward
recursions and trailing windows; nothing is shifted backwards, nothing is back-filled).
Decisions are made after the close of day t and fill on day t+1 (see `portfolio.execution`).

Indicators are grouped; `features.indicators: all` takes every group the data supports. The
closes-only groups give 35 features per asset; with OHLCV another 28 (63 in all). A group that
needs fields the data lacks (e.g. ATR on closes only) is skipped and listed once in
`FeatureSet.skipped`: highs and lows are never invented.

Market features come from the benchmark index when there is one (else the equal-weight index of
the assets): index returns, realised volatility, trend, drawdown, cross-sectional dispersion,
average pairwise correlation, breadth, and a regime label:
    volatile  if the 21-day realised index volatility (annualised) > `regime_vol_threshold`
    bull      else if the index is at or above its `regime_trend_window`-day moving average
    bear      otherwise

Normalisation (`features.normalize`): z-scores whose mean and standard deviation are fit on the
train split only (rows from `first_valid` to the end of train, pooled over assets), then
clipped at +-`clip`. Regime one-hot columns are left as 0/1.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import talib

from wealtharena.config import FeaturesConfig
from wealtharena.data.market_data import MarketData
from wealtharena.errors import ConfigError, DataError

log = logging.getLogger(__name__)

ANNUAL = 252
REGIMES = ("bull", "bear", "volatile")


@dataclass(frozen=True)
class FeatureSet:
    """Model inputs. `asset[t, i, f]` is feature `asset_names[f]` of ticker i on `dates[t]`."""

    asset: np.ndarray  # float32 [T, N, F]
    market: np.ndarray  # float32 [T, M]
    asset_names: tuple[str, ...]
    market_names: tuple[str, ...]
    regime: np.ndarray  # int8 [T]: index into REGIMES (valid from first_valid)
    first_valid: int  # first row where every feature is finite
    dates: np.ndarray
    tickers: tuple[str, ...]
    skipped: dict[str, str] = field(default_factory=dict)
    asset_stats: tuple[np.ndarray, np.ndarray] | None = None  # mean, std fit on train
    market_stats: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def n_asset_features(self) -> int:
        return len(self.asset_names)

    @property
    def n_market_features(self) -> int:
        return len(self.market_names)


# ----------------------------------------------------------------------------- helpers
def _div(a: np.ndarray, b: np.ndarray, where_zero: float = 0.0) -> np.ndarray:
    """a / b with a defined value where b == 0 (e.g. a flat price window), NaN where inputs are NaN."""
    out = np.full_like(a, where_zero, dtype=np.float64)
    np.divide(a, b, out=out, where=b != 0)
    out[np.isnan(a) | np.isnan(b)] = np.nan
    return out


def _lag(x: np.ndarray, k: int) -> np.ndarray:
    """x[t - k] at row t (NaN for the first k rows)."""
    out = np.full_like(x, np.nan, dtype=np.float64)
    out[k:] = x[:-k]
    return out


def _logret(x: np.ndarray, k: int) -> np.ndarray:
    return np.log(x / _lag(x, k))


def _ratio(c: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return _div(c, ref, 1.0) - 1.0


_ABSENT = np.empty(0)  # a field the data lacks: its groups are skipped; any use by mistake fails on the length


class _Prices:
    """One asset's price arrays (float64) with memoised intermediates."""

    def __init__(self, fields: dict[str, np.ndarray]):
        self.c = fields["close"]
        self.o = fields.get("open", _ABSENT)
        self.h = fields.get("high", _ABSENT)
        self.l = fields.get("low", _ABSENT)  # noqa: E741  (low, beside o, h, c, v)
        self.v = fields.get("volume", _ABSENT)
        self.r1 = _logret(self.c, 1)


Group = Callable[[_Prices], dict[str, np.ndarray]]


def _returns(p: _Prices) -> dict[str, np.ndarray]:
    return {f"ret_{k}": _logret(p.c, k) for k in (1, 5, 10, 21, 63)}


def _moving_averages(p: _Prices) -> dict[str, np.ndarray]:
    out = {f"sma_ratio_{k}": _ratio(p.c, talib.SMA(p.c, k)) for k in (10, 20, 50, 200)}
    out |= {f"ema_ratio_{k}": _ratio(p.c, talib.EMA(p.c, k)) for k in (12, 26)}
    out["dema_ratio_20"] = _ratio(p.c, talib.DEMA(p.c, 20))
    out["tema_ratio_20"] = _ratio(p.c, talib.TEMA(p.c, 20))
    out["kama_ratio_20"] = _ratio(p.c, talib.KAMA(p.c, 20))
    return out


def _oscillators(p: _Prices) -> dict[str, np.ndarray]:
    macd, signal, hist = talib.MACD(p.c, 12, 26, 9)
    k, d = talib.STOCHRSI(p.c, 14, 5, 3, talib.MA_Type.SMA)
    return {
        "rsi_14": talib.RSI(p.c, 14) / 100.0 - 0.5,
        "macd": _div(macd, p.c),
        "macd_signal": _div(signal, p.c),
        "macd_hist": _div(hist, p.c),
        "roc_10": talib.ROC(p.c, 10) / 100.0,
        "mom_10": _div(talib.MOM(p.c, 10), p.c),
        "cmo_14": talib.CMO(p.c, 14) / 100.0,
        "trix_15": talib.TRIX(p.c, 15),
        "ppo_12_26": talib.PPO(p.c, 12, 26, talib.MA_Type.SMA) / 100.0,
        "linreg_slope_20": _div(talib.LINEARREG_SLOPE(p.c, 20), p.c),
        "stochrsi_k": k / 100.0 - 0.5,
        "stochrsi_d": d / 100.0 - 0.5,
    }


def _bands(p: _Prices) -> dict[str, np.ndarray]:
    upper, mid, lower = talib.BBANDS(p.c, 20, 2.0, 2.0, talib.MA_Type.SMA)
    return {"bb_pctb_20": _div(p.c - lower, upper - lower, 0.5), "bb_width_20": _div(upper - lower, mid)}


def _volatility(p: _Prices) -> dict[str, np.ndarray]:
    out = {f"vol_{k}": talib.STDDEV(p.r1, k, 1.0) * np.sqrt(ANNUAL) for k in (21, 63)}
    for k in (20, 60):
        out[f"zscore_{k}"] = _div(p.c - talib.SMA(p.c, k), talib.STDDEV(p.c, k, 1.0))
    return out


def _ranges(p: _Prices) -> dict[str, np.ndarray]:
    return {
        "drawdown_63": _ratio(p.c, talib.MAX(p.c, 63)),
        "dist_high_252": _ratio(p.c, talib.MAX(p.c, 252)),
        "dist_low_252": _ratio(p.c, talib.MIN(p.c, 252)),
    }


def _trend_hl(p: _Prices) -> dict[str, np.ndarray]:
    up, down = talib.AROON(p.h, p.l, 14)
    return {
        "adx_14": talib.ADX(p.h, p.l, p.c, 14) / 100.0,
        "adxr_14": talib.ADXR(p.h, p.l, p.c, 14) / 100.0,
        "plus_di_14": talib.PLUS_DI(p.h, p.l, p.c, 14) / 100.0,
        "minus_di_14": talib.MINUS_DI(p.h, p.l, p.c, 14) / 100.0,
        "dx_14": talib.DX(p.h, p.l, p.c, 14) / 100.0,
        "aroon_up_14": up / 100.0,
        "aroon_down_14": down / 100.0,
        "aroonosc_14": talib.AROONOSC(p.h, p.l, 14) / 100.0,
        "sar_ratio": _ratio(p.c, talib.SAR(p.h, p.l, 0.02, 0.2)),
        "midprice_ratio_14": _ratio(p.c, talib.MIDPRICE(p.h, p.l, 14)),
    }


def _oscillators_hl(p: _Prices) -> dict[str, np.ndarray]:
    k, d = talib.STOCH(p.h, p.l, p.c, 14, 3, talib.MA_Type.SMA, 3, talib.MA_Type.SMA)
    fk, _ = talib.STOCHF(p.h, p.l, p.c, 14, 3, talib.MA_Type.SMA)
    return {
        "cci_20": talib.CCI(p.h, p.l, p.c, 20) / 100.0,
        "stoch_k": k / 100.0 - 0.5,
        "stoch_d": d / 100.0 - 0.5,
        "stochf_k": fk / 100.0 - 0.5,
        "willr_14": talib.WILLR(p.h, p.l, p.c, 14) / 100.0,
        "ultosc": talib.ULTOSC(p.h, p.l, p.c, 7, 14, 28) / 100.0 - 0.5,
        "close_location": _div(p.c - p.l, p.h - p.l, 0.5),
    }


def _true_range(p: _Prices) -> dict[str, np.ndarray]:
    return {
        "natr_14": talib.NATR(p.h, p.l, p.c, 14) / 100.0,
        "trange_ratio": _div(talib.TRANGE(p.h, p.l, p.c), p.c),
        "hl_range": _div(p.h - p.l, p.c),
    }


def _open_gap(p: _Prices) -> dict[str, np.ndarray]:
    return {"gap_open": np.log(p.o / _lag(p.c, 1)), "bop": _div(p.c - p.o, p.h - p.l)}


def _volume(p: _Prices) -> dict[str, np.ndarray]:
    vol20 = talib.SUM(p.v, 20)
    obv = talib.OBV(p.c, p.v)
    ad = talib.AD(p.h, p.l, p.c, p.v)
    lv = np.log1p(p.v)
    return {
        "mfi_14": talib.MFI(p.h, p.l, p.c, p.v, 14) / 100.0 - 0.5,
        "obv_change_20": _div(obv - _lag(obv, 20), vol20),
        "ad_change_20": _div(ad - _lag(ad, 20), vol20),
        "adosc": _div(talib.ADOSC(p.h, p.l, p.c, p.v, 3, 10), talib.SMA(p.v, 10)),
        "volume_z_20": _div(lv - talib.SMA(lv, 20), talib.STDDEV(lv, 20, 1.0)),
        "volume_ratio_20": _div(p.v, talib.SMA(p.v, 20), 1.0) - 1.0,
        "volume_trend_5_60": _div(talib.SMA(p.v, 5), talib.SMA(p.v, 60), 1.0) - 1.0,
    }


# name -> (fields needed, function)
GROUPS: dict[str, tuple[tuple[str, ...], Group]] = {
    "returns": (("close",), _returns),
    "moving_averages": (("close",), _moving_averages),
    "oscillators": (("close",), _oscillators),
    "bands": (("close",), _bands),
    "volatility": (("close",), _volatility),
    "ranges": (("close",), _ranges),
    "trend_hl": (("high", "low", "close"), _trend_hl),
    "oscillators_hl": (("high", "low", "close"), _oscillators_hl),
    "true_range": (("high", "low", "close"), _true_range),
    "open_gap": (("open", "high", "low", "close"), _open_gap),
    "volume": (("high", "low", "close", "volume"), _volume),
}


def _selected_groups(cfg: FeaturesConfig, fields: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    names = list(GROUPS) if cfg.indicators == "all" else list(cfg.indicators)
    unknown = [n for n in names if n not in GROUPS]
    if unknown:
        raise ConfigError(f"features.indicators: unknown group(s) {unknown}; available: {', '.join(GROUPS)} (or 'all')")
    chosen, skipped = [], {}
    for name in names:
        needs = GROUPS[name][0]
        lacking = [f for f in needs if f not in fields]
        if lacking:
            skipped[name] = f"needs {', '.join(lacking)}; the data has {', '.join(fields)}"
        else:
            chosen.append(name)
    if not chosen:
        raise ConfigError(f"features.indicators: none of {names} can be computed from fields {fields}")
    return chosen, skipped


def compute_asset_features(
    market: MarketData, cfg: FeaturesConfig
) -> tuple[np.ndarray, tuple[str, ...], dict[str, str]]:
    """Raw (unnormalised) per-asset features, float64 [T, N, F]."""
    groups, skipped = _selected_groups(cfg, market.fields)
    names: list[str] | None = None
    out: np.ndarray | None = None
    for i in range(market.n_assets):
        prices = _Prices({f: np.ascontiguousarray(market.values[:, i, k]) for k, f in enumerate(market.fields)})
        cols: dict[str, np.ndarray] = {}
        for g in groups:
            cols |= GROUPS[g][1](prices)
        if out is None or names is None:
            names = list(cols)
            out = np.empty((market.n_dates, market.n_assets, len(names)), dtype=np.float64)
        out[:, i, :] = np.column_stack([cols[n] for n in names])
    assert out is not None and names is not None
    return out, tuple(names), skipped


def compute_market_features(market: MarketData, cfg: FeaturesConfig) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Raw market features float64 [T, M] and the regime label int8 [T]."""
    close = market.close
    asset_r1 = np.full_like(close, np.nan)
    asset_r1[1:] = np.log(close[1:] / close[:-1])
    if market.benchmark is not None:
        index = market.benchmark
    else:  # equal-weight index of the assets, rebalanced daily
        mean_r = np.zeros(len(close))
        mean_r[1:] = asset_r1[1:].mean(axis=1)
        index = 100.0 * np.exp(np.cumsum(mean_r))
    r1 = _logret(index, 1)
    vol21 = talib.STDDEV(r1, 21, 1.0) * np.sqrt(ANNUAL)
    sma_trend = talib.SMA(index, cfg.regime_trend_window)
    xs_mean = asset_r1.mean(axis=1)
    xs_disp = asset_r1.std(axis=1)
    # Average pairwise correlation over 63 days from variances: var(mean) = s2/N (1 + (N-1) rho).
    n = close.shape[1]
    var_mean = talib.VAR(np.nan_to_num(xs_mean), 63, 1.0)
    mean_var = np.mean([talib.VAR(np.nan_to_num(asset_r1[:, i]), 63, 1.0) for i in range(n)], axis=0)
    avg_corr = (_div(n * var_mean, mean_var, 1.0) - 1.0) / max(n - 1, 1)
    avg_corr[:63] = np.nan
    above = np.stack([close[:, i] >= talib.SMA(close[:, i], 50) for i in range(n)], axis=1)
    breadth = above.mean(axis=1) - 0.5
    breadth[:49] = np.nan
    cols = {
        "mkt_ret_1": r1,
        "mkt_ret_5": _logret(index, 5),
        "mkt_ret_21": _logret(index, 21),
        "mkt_vol_21": vol21,
        "mkt_vol_63": talib.STDDEV(r1, 63, 1.0) * np.sqrt(ANNUAL),
        "mkt_trend": _ratio(index, sma_trend),
        "mkt_drawdown_252": _ratio(index, talib.MAX(index, 252)),
        "xs_mean_ret_1": xs_mean,
        "xs_dispersion": xs_disp,
        "xs_avg_corr_63": avg_corr,
        "breadth_50": breadth,
    }
    regime = np.where(vol21 > cfg.regime_vol_threshold, 2, np.where(index >= sma_trend, 0, 1)).astype(np.int8)
    for k, name in enumerate(REGIMES):
        cols[f"regime_{name}"] = (regime == k).astype(np.float64)
        cols[f"regime_{name}"][np.isnan(vol21) | np.isnan(sma_trend)] = np.nan
    names = tuple(cols)
    return np.column_stack([cols[n] for n in names]), names, regime


def _first_all_finite(x: np.ndarray) -> int:
    finite = np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1)
    bad_after = np.flatnonzero(~finite)
    return int(bad_after[-1] + 1) if bad_after.size else 0


def _check_finite(x: np.ndarray, start: int, names: tuple[str, ...], market: MarketData, per_asset: bool) -> None:
    bad = ~np.isfinite(x[start:])
    if bad.any():
        idx = np.argwhere(bad)[0]
        t = start + int(idx[0])
        ticker = market.tickers[int(idx[1])] if per_asset else "market"
        feat = names[int(idx[-1])]
        raise DataError(
            f"feature '{feat}' is not finite for {ticker} on {market.dates[t]} after the warm-up: "
            "check that ticker's prices around that date"
        )


def _fit_stats(x: np.ndarray, rows: slice, skip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sample = x[rows].reshape(-1, x.shape[-1])
    mean = sample.mean(axis=0)
    std = sample.std(axis=0)
    std[std < 1e-12] = 1.0
    mean[skip], std[skip] = 0.0, 1.0
    return mean, std


def build_features(market: MarketData, cfg: FeaturesConfig) -> FeatureSet:
    """Compute, check and (optionally) normalise every feature; see the module docstring."""
    asset, asset_names, skipped = compute_asset_features(market, cfg)
    mkt, market_names, regime = compute_market_features(market, cfg)
    first_valid = max(_first_all_finite(asset), _first_all_finite(mkt))
    train_start, train_end = market.splits["train"]
    if first_valid >= train_end - 1:
        raise DataError(
            f"the train split ends {market.dates[train_end - 1]} before the indicators' warm-up "
            f"({first_valid} rows, to {market.dates[min(first_valid, market.n_dates - 1)]}) is over: "
            "start the data earlier or lengthen data.splits.train"
        )
    _check_finite(asset, first_valid, asset_names, market, per_asset=True)
    _check_finite(mkt, first_valid, market_names, market, per_asset=False)
    if skipped:
        log.info(
            "features: skipped indicator groups the data cannot support: %s",
            "; ".join(f"{k} ({v})" for k, v in skipped.items()),
        )
    asset_stats = market_stats = None
    if cfg.normalize:
        fit_rows = slice(max(first_valid, train_start), train_end)
        asset_stats = _fit_stats(asset, fit_rows, np.zeros(len(asset_names), dtype=bool))
        market_stats = _fit_stats(mkt, fit_rows, np.array([n.startswith("regime_") for n in market_names]))
        asset = np.clip((asset - asset_stats[0]) / asset_stats[1], -cfg.clip, cfg.clip)
        mkt = np.clip((mkt - market_stats[0]) / market_stats[1], -cfg.clip, cfg.clip)
    return FeatureSet(
        asset=asset.astype(np.float32),
        market=mkt.astype(np.float32),
        asset_names=asset_names,
        market_names=market_names,
        regime=regime,
        first_valid=first_valid,
        dates=market.dates,
        tickers=market.tickers,
        skipped=skipped,
        asset_stats=asset_stats,
        market_stats=market_stats,
    )
