"""Our metrics against empyrical on real returns (the test split of the sample set), to 1e-8."""

import empyrical as ep
import numpy as np
import pytest

from wealtharena.portfolio import metrics


@pytest.fixture(scope="module")
def returns(sample_market):
    a, b = sample_market.splits["test"]
    close = sample_market.close[a - 1 : b]
    ew = (close[1:] / close[:-1] - 1.0).mean(axis=1)  # equal weight, rebalanced daily
    bench = sample_market.benchmark[a - 1 : b]
    return ew, bench[1:] / bench[:-1] - 1.0


def test_metrics_match_empyrical(returns):
    r, b = returns
    checks = {
        "annual_return": (metrics.annual_return(r), ep.annual_return(r)),
        "annual_volatility": (metrics.annual_volatility(r), ep.annual_volatility(r)),
        "sharpe": (metrics.sharpe(r), ep.sharpe_ratio(r)),
        "sortino": (metrics.sortino(r), ep.sortino_ratio(r)),
        "calmar": (metrics.calmar(r), ep.calmar_ratio(r)),
        "max_drawdown": (metrics.max_drawdown(r), ep.max_drawdown(r)),
        "var": (metrics.value_at_risk(r), -ep.value_at_risk(r, cutoff=0.05)),
        "cvar": (metrics.conditional_value_at_risk(r), -ep.conditional_value_at_risk(r, cutoff=0.05)),
        "beta": (metrics.beta(r, b), ep.beta(r, b)),
        "alpha": (metrics.alpha(r, b), ep.alpha(r, b)),
        "information_ratio": (metrics.information_ratio(r, b), ep.excess_sharpe(r, b) * np.sqrt(252)),
        "total_return": (metrics.total_return(r), ep.cum_returns_final(r)),
    }
    for name, (ours, theirs) in checks.items():
        assert ours == pytest.approx(theirs, abs=1e-8, rel=1e-8), name


def test_the_numbers_themselves(returns):
    """Equal weight rebalanced daily over 2019-2022, no costs: +23.4% a year, Sharpe 1.05, max drawdown -31.7%
    (computed independently with skfolio and empyrical on the same prices)."""
    r, b = returns
    assert metrics.annual_return(r) == pytest.approx(0.234, abs=0.002)
    assert metrics.sharpe(r) == pytest.approx(1.05, abs=0.01)
    assert metrics.max_drawdown(r) == pytest.approx(-0.317, abs=0.002)
    assert metrics.annual_return(b) == pytest.approx(0.109, abs=0.002)


def test_drawdown_duration_win_rate_turnover_by_hand():
    r = np.array([0.1, -0.5, 0.2, 0.2, 0.0, 0.9, -0.1])
    # wealth 1.1, .55, .66, .792, .792, 1.5048 (new peak), 1.35432
    assert metrics.max_drawdown_duration(r) == 4
    assert metrics.win_rate(r) == pytest.approx(4 / 6)
    w = np.array([[0.5, 0.5], [0.6, 0.4], [0.0, 1.0]])
    assert metrics.turnover(w) == pytest.approx((0.2 / 2 + 1.2 / 2) / 2)


def test_compute_metrics_bundle(returns):
    r, b = returns
    m = metrics.compute_metrics(r, b, weights=np.full((len(r), 20), 0.05))
    d = m.as_dict()
    assert d["turnover"] == 0.0 and d["sharpe"] == pytest.approx(metrics.sharpe(r))
    assert d["max_drawdown_days"] > 0 and set(d) >= {"beta", "alpha", "information_ratio", "var_95", "cvar_95"}
