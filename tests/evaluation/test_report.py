"""Reports on fixed returns: hand-checked numbers, and the files a user opens."""

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from wealtharena.evaluation.backtest import Backtest, Track, TrackKey
from wealtharena.evaluation.report import format_table, render, write_results
from wealtharena.evaluation.seeds import aggregate
from wealtharena.evaluation.seeds import render as render_seeds


def _track(name, values, kind="agent", costs=None, weights=True):
    values = np.asarray(values, dtype=float)
    dates = pd.bdate_range("2019-01-02", periods=len(values)).to_numpy().astype("datetime64[D]")
    n = len(values) - 1
    return Track(
        key=TrackKey(kind, name),
        dates=dates,
        values=values,
        weights=np.full((n, 2), 0.4) if weights else None,
        costs=np.full(n, 1.0) if costs is None else costs,
        rewards=np.ones(n) if kind == "agent" else None,
        events=Counter({"position_cap": 3, "stop_loss": 1}) if kind == "agent" else Counter(),
        profile="balanced",
    )


def test_hand_checked_numbers():
    tr = _track("a", [100.0, 110.0, 99.0, 108.9])
    bench = _track("b", [100.0, 101.0, 102.01, 103.0301], kind="benchmark", weights=False)
    bt = Backtest(
        "test", "2019-01-02", "2019-01-07", [tr, bench], benchmark_returns=np.full(3, 0.01), tickers=("X", "Y")
    )
    t = bt.metrics_table()
    # returns +10%, -10%, +10%: total 1.1 * 0.9 * 1.1 - 1 = 8.9%; drawdown 99/110 - 1 = -10%
    assert t.loc["a", "total_return"] == pytest.approx(0.089)
    assert t.loc["a", "max_drawdown"] == pytest.approx(-0.10)
    assert t.loc["a", "win_rate"] == pytest.approx(2 / 3)
    r = np.array([0.1, -0.1, 0.1])
    assert t.loc["a", "sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252))
    assert t.loc["a", "costs_paid"] == 3.0 and t.loc["a", "risk_events"] == 4
    assert t.loc["b buy & hold", "total_return"] == pytest.approx(0.030301)
    text = render(bt, survivorship=True)
    assert "test split, 2019-01-02 .. 2019-01-07, costs included" in text and "survivorship" in text
    assert format_table(t).loc["a", "total"] == "+8.9%"


def test_report_files_are_written_and_not_empty(tmp_path):
    rng = np.random.default_rng(0)
    values = 1e6 * np.cumprod(np.r_[1.0, 1 + rng.normal(0.0005, 0.01, 300)])
    bench = 1e6 * np.cumprod(np.r_[1.0, 1 + rng.normal(0.0003, 0.01, 300)])
    bt = Backtest(
        "validation",
        "2019-01-02",
        "2020-02-25",
        [_track("balanced_0", values), _track("SP500", bench, kind="benchmark", weights=False)],
        benchmark_returns=bench[1:] / bench[:-1] - 1,
        tickers=("AAA", "BBB"),
    )
    paths = write_results(bt, tmp_path, {"checkpoint": "x"}, survivorship=True)
    expected = {"results", "equity", "allocation_balanced_0", "tearsheet_balanced_0", "report"}
    assert expected <= set(paths)
    for p in paths.values():
        assert p.is_file() and p.stat().st_size > 500, p
    html = paths["report"].read_text()
    assert "validation split, 2019-01-02 .. 2020-02-25, costs included" in html and "tearsheet_balanced_0.html" in html
    lo, hi = bt.metrics_table().loc["balanced_0", ["sharpe_ci_low", "sharpe_ci_high"]]
    assert lo < bt.metrics_table().loc["balanced_0", "sharpe"] < hi


def test_seed_aggregation_by_hand():
    t0 = pd.DataFrame(
        {
            "annual_return": [0.10, 0.05],
            "sharpe": [1.0, 0.5],
            "max_drawdown": [-0.1, -0.2],
            "annual_volatility": [0.1, 0.1],
            "costs_paid": [100.0, 0.0],
        },
        index=["agent", "bench"],
    )
    t1 = t0.copy()
    t1.loc["agent", ["annual_return", "sharpe"]] = [0.30, 2.0]
    agg = aggregate({0: t0, 1: t1})
    assert agg.loc["agent", "sharpe mean"] == pytest.approx(1.5)
    assert agg.loc["agent", "sharpe std"] == pytest.approx(np.std([1.0, 2.0], ddof=1))
    assert agg.loc["agent", "annual_return min"] == pytest.approx(0.10) and agg.loc["bench", "sharpe std"] == 0.0
    assert "1.50 ± 0.71 [1.00 .. 2.00]" in render_seeds(agg, "test split")

    # a row that only some seeds have (agents that were one row elsewhere) says how many it covers
    t1 = t1.rename(index={"agent": "agent / twin"})
    agg = aggregate({0: t0, 1: t1})
    assert agg.loc["agent", "seeds"] == 1 and agg.loc["bench", "seeds"] == 2
    text = render_seeds(agg, "test split")
    assert "over 2 seeds" in text and "agent (1 of 2 seeds)" in text and "agent / twin (1 of 2 seeds)" in text


def test_training_plot_before_any_episode_finished(tmp_path):
    from wealtharena.evaluation.report import plot_training_history
    from wealtharena.training.results import IterationRecord

    row = IterationRecord(iteration=1, wall_s=1.0, env_steps=100, env_steps_per_s=100.0)
    assert plot_training_history([row], tmp_path / "t.png") is None
    row = IterationRecord(
        iteration=1,
        wall_s=1.0,
        env_steps=100,
        env_steps_per_s=100.0,
        policy_return={"balanced": -3.0},
        reward_terms={"balanced": {"profit": 1.0}},
    )
    assert plot_training_history([row], tmp_path / "t.png").stat().st_size > 1000


def test_agents_that_act_alike_are_one_row_naming_every_agent():
    """Agents of one profile see observations that differ in the last bits, so their books can differ by
    about 1e-9: one row standing for both; an agent that acts differently keeps its own row."""
    from wealtharena.evaluation.backtest import distinct

    base = np.cumprod(np.r_[1.0, 1 + np.random.default_rng(0).normal(0, 0.01, 50)]) * 1e6
    a = _track("conservative_0", base)
    b = _track("conservative_1", base * (1 + 1e-10))
    b.weights = a.weights + 1e-9
    c = _track("conservative_2", base * 1.001)
    rows = distinct([a, b, c])
    assert [r.members for r in rows] == [("conservative_0", "conservative_1"), ("conservative_2",)]
    assert rows[0].label == "conservative_0 / conservative_1" and rows[1].label == "conservative_2"
