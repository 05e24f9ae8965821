import dataclasses

import numpy as np
import pytest

from tests.conftest import csv_config, write_ohlcv_csv
from wealtharena.config import FeaturesConfig
from wealtharena.data import load_market_data
from wealtharena.data.features import REGIMES, build_features, compute_asset_features
from wealtharena.errors import ConfigError


def _perturbed(market, after: int, seed: int = 0):
    """The same panel with every price after row `after` multiplied by random factors."""
    rng = np.random.default_rng(seed)
    values = market.values.copy()
    values[after + 1 :] *= rng.uniform(0.5, 1.5, size=values[after + 1 :].shape)
    bench = market.benchmark.copy()
    bench[after + 1 :] *= rng.uniform(0.5, 1.5, size=bench[after + 1 :].shape)
    return dataclasses.replace(market, values=values, benchmark=bench)


def test_closes_only_gives_at_least_20_features_and_lists_what_it_skipped(sample_features):
    fs = sample_features
    assert fs.asset.shape == (8313, 20, fs.n_asset_features) and fs.n_asset_features >= 20
    assert fs.asset.dtype == np.float32 and fs.market.dtype == np.float32
    assert len(fs.asset_names) == len(set(fs.asset_names)) == fs.asset.shape[2]
    assert len(fs.market_names) == fs.market.shape[1]
    assert set(fs.skipped) == {"trend_hl", "oscillators_hl", "true_range", "open_gap", "volume"}
    assert "needs high, low" in fs.skipped["trend_hl"]
    assert np.isfinite(fs.asset[fs.first_valid :]).all() and np.isfinite(fs.market[fs.first_valid :]).all()
    assert not np.isfinite(fs.asset[: fs.first_valid]).all()  # the warm-up is not filled in


def test_ohlcv_gives_more_than_50_features(tmp_path):
    for i, t in enumerate(["AAA", "BBB", "CCC"]):
        write_ohlcv_csv(tmp_path, t, seed=i, n=700)
    cfg = csv_config(
        tmp_path,
        splits={
            "train": {"start": "2015-01-01", "end": "2016-12-31"},
            "validation": {"start": "2017-01-01", "end": "2017-03-31"},
            "test": {"start": "2017-04-01", "end": "2017-12-31"},
        },
    )
    fs = build_features(load_market_data(cfg.data), cfg.features)
    assert fs.n_asset_features >= 50 and not fs.skipped
    for name in ("natr_14", "adx_14", "cci_20", "stoch_k", "mfi_14", "obv_change_20"):
        assert name in fs.asset_names


def test_regimes_are_all_seen_on_real_data(sample_features):
    counts = np.bincount(sample_features.regime[sample_features.first_valid :], minlength=3)
    assert (counts > 100).all(), dict(zip(REGIMES, counts))
    onehot = sample_features.market[:, [sample_features.market_names.index(f"regime_{r}") for r in REGIMES]]
    np.testing.assert_array_equal(
        onehot[sample_features.first_valid :].argmax(axis=1), sample_features.regime[sample_features.first_valid :]
    )


@pytest.mark.parametrize("t", [300, 4000, 6299])
def test_raw_features_are_causal(sample_market, t):
    cfg = FeaturesConfig(normalize=False)
    before, _, _ = compute_asset_features(sample_market, cfg)
    after, _, _ = compute_asset_features(_perturbed(sample_market, t), cfg)
    np.testing.assert_array_equal(before[: t + 1], after[: t + 1])  # bit-identical up to t
    assert not np.array_equal(before[t + 1 : t + 30], after[t + 1 : t + 30])


@pytest.mark.parametrize("split", ["validation", "test"])
def test_normalised_features_at_t_ignore_the_future_and_stats_come_from_train(sample_market, sample_features, split):
    t = sample_market.splits[split][0] + 10
    changed = build_features(_perturbed(sample_market, t), FeaturesConfig())
    np.testing.assert_array_equal(sample_features.asset[: t + 1], changed.asset[: t + 1])
    np.testing.assert_array_equal(sample_features.market[: t + 1], changed.market[: t + 1])
    for a, b in zip(sample_features.asset_stats, changed.asset_stats):
        np.testing.assert_array_equal(a, b)


def test_normalisation_stats_equal_the_train_rows(sample_market, sample_features):
    raw, _, _ = compute_asset_features(sample_market, FeaturesConfig(normalize=False))
    rows = raw[sample_features.first_valid : sample_market.splits["train"][1]].reshape(-1, raw.shape[-1])
    np.testing.assert_allclose(sample_features.asset_stats[0], rows.mean(axis=0))
    np.testing.assert_allclose(sample_features.asset_stats[1], rows.std(axis=0))


def test_unknown_indicator_group_is_a_config_error(sample_market):
    with pytest.raises(ConfigError, match=r"unknown group\(s\) \['rsi'\]; available: returns"):
        build_features(sample_market, FeaturesConfig(indicators=["returns", "rsi"]))
