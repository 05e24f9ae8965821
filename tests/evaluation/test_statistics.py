"""The tests that count the strategies tried, on synthetic returns with a known answer."""

from __future__ import annotations

import numpy as np

from wealtharena.evaluation.statistics import (
    deflated_sharpe,
    paired_sharpe_difference,
    sharpe_interval,
    superior_predictive_ability,
)


def _noise(seed: int, k: int, n: int = 1000) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"noise {i}": rng.normal(0.0, 0.01, n) for i in range(k)}


def test_a_planted_edge_is_found_and_named():
    strategies = _noise(0, 5) | {"edge": np.random.default_rng(1).normal(0.0015, 0.01, 1000)}  # t about 4.7
    result = superior_predictive_ability(strategies, reps=1000, seed=0, size=0.05)
    assert result.p_value < 0.01 and result.superior == ["edge"] and result.strategies == 6


def test_pure_noise_is_not_found():
    for seed in (0, 1, 2):
        result = superior_predictive_ability(_noise(seed, 6), reps=1000, seed=seed, size=0.05)
        assert result.p_value > 0.05 and result.superior == []


def test_the_deflated_sharpe_ratio_discounts_the_best_of_many_trials():
    strategies = _noise(5, 20)
    daily = {k: v.mean() / v.std(ddof=1) for k, v in strategies.items()}
    best = max(daily, key=lambda k: daily[k])
    alone, _ = deflated_sharpe(strategies[best], np.array([daily[best]]))  # one trial: the probabilistic SR
    deflated, sr0 = deflated_sharpe(strategies[best], np.array(list(daily.values())))
    assert sr0 > 0 and deflated < alone  # the best of 20 noise series is discounted
    assert deflated < 0.95  # and not called skill


def test_intervals_have_the_textbook_width_and_a_paired_difference_sees_a_gap():
    rng = np.random.default_rng(2)
    a = rng.normal(0.0008, 0.01, 2000)
    sharpe, low, high = sharpe_interval(a, reps=1000, seed=0)
    # iid returns: the Sharpe ratio's standard error is about sqrt((1 + SR^2 / 2) / T) per day (Lo 2002)
    se = np.sqrt((1 + (sharpe / np.sqrt(252)) ** 2 / 2) / len(a)) * np.sqrt(252)
    assert low < sharpe < high and abs((high - low) / (2 * 1.96 * se) - 1) < 0.2
    diff, d_low, d_high = paired_sharpe_difference(a + 0.0005, a, reps=1000, seed=0)
    assert diff > 0 and d_low > 0  # the same days plus a constant: a sure improvement
