"""Each limit alone on real days, all together, bad inputs, and property tests of the guarantee."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import risk_config, synthetic_market
from tests.helpers import violations
from wealtharena.config import ExecutionConfig, RiskConfig
from wealtharena.errors import RiskInputError
from wealtharena.portfolio import MarketRisk, PortfolioManager, RiskLimits, RiskManager
from wealtharena.portfolio.risk import HALTED, NORMAL, REDUCING

FREE = ExecutionConfig(commission_bps=0, slippage_bps=0, slippage_vol_coef=0, impact_coef=0)


def _day(market, iso):
    return int(np.searchsorted(market.dates, np.datetime64(iso)))


def _gate(market, *risks, regime=None):
    mr = MarketRisk.build(market, risks[0], regime)
    return RiskManager(RiskLimits.from_configs(list(risks)), mr), mr


def _apply(rm, w, t, value=None, current=None, close=None, entry=None):
    k, n = rm.k, rm.n
    value = np.ones(k) if value is None else value
    if rm.peak.max() == 0:
        rm.reset(value)
    return rm.apply(
        np.atleast_2d(w),
        t,
        value,
        np.zeros((k, n)) if current is None else current,
        np.ones(n) if close is None else close,
        np.zeros((k, n)) if entry is None else entry,
    )


def _port_returns(mr, w, t, lookback):
    return mr.returns[t - lookback + 1 : t + 1] @ w


# --------------------------------------------------------------------------- each limit alone
def test_position_cap(sample_market):
    rm, _ = _gate(sample_market, risk_config(max_position=0.15))
    w = np.zeros(20)
    w[0], w[1] = 0.5, 0.1
    out = _apply(rm, w, 7000)
    assert out[0, 0] == pytest.approx(0.15) and out[0, 1] == pytest.approx(0.1)
    assert rm.events(0) == ["position_cap"] and rm.asset_flags["position_cap"][0, 0]


def test_vol_ceiling_in_the_2020_crash(sample_market):
    t = _day(sample_market, "2020-03-20")
    rm, mr = _gate(sample_market, risk_config(vol_target=0.12))
    out = _apply(rm, np.full(20, 0.05), t)
    vol = np.std(_port_returns(mr, out[0], t, 63), ddof=1) * np.sqrt(252)
    assert "vol_target" in rm.events(0) and vol <= 0.12 + 1e-12 and vol > 0.119
    assert out.sum() < 0.3  # the crash forces most of it to cash


def test_var_limit_historical_and_parametric(sample_market):
    t = _day(sample_market, "2020-04-01")
    for method in ("historical", "parametric"):
        rm, mr = _gate(sample_market, risk_config(var_limit=0.01, var_method=method))
        out = _apply(rm, np.full(20, 0.05), t)
        r = _port_returns(mr, out[0], t, 252)
        if method == "historical":
            var = -np.percentile(r, 5)
        else:
            from scipy.stats import norm

            var = norm.ppf(0.95) * np.std(r, ddof=1) - r.mean()
        assert "var_limit" in rm.events(0) and var == pytest.approx(0.01, rel=1e-6) and var <= 0.01
        assert rm.cvar[0] >= rm.var[0]


def test_correlation_cuts_the_smaller_holding(sample_market):
    t = _day(sample_market, "2021-06-01")
    mr = MarketRisk.build(sample_market, risk_config(max_correlation=0.7))
    i, j = sample_market.tickers.index("CVX"), sample_market.tickers.index("XOM")
    assert mr.corr[t, i, j] > 0.7  # two oil majors move together
    rm, _ = _gate(sample_market, risk_config(max_correlation=0.7))
    w = np.zeros(20)
    w[i], w[j] = 0.10, 0.12
    out = _apply(rm, w, t)
    assert out[0, j] == pytest.approx(0.12) and out[0, i] == pytest.approx(0.02)
    assert rm.events(0) == ["correlation"] and rm.explain(0, sample_market.tickers) == ["correlation: CVX"]
    w[i] = w[j] = 0.10  # a tie: the later one (XOM) is cut
    out = _apply(rm, w, t)
    assert out[0, i] == pytest.approx(0.10) and out[0, j] == pytest.approx(0.02)


def test_stop_loss_then_cooldown_on_real_days(sample_market):
    """Hold AAPL from the close of 2020-02-19 with an 8% stop; it triggers on the first close 8% below entry."""
    m = sample_market
    a = m.tickers.index("AAPL")
    risk = risk_config(stop_loss=0.08, reentry_cooldown_days=5)
    pm = PortfolioManager(m, [risk], FREE, 1e6)
    t0 = _day(m, "2020-02-19")
    pm.reset(t0)
    w = np.zeros((1, 20))
    w[0, a] = 0.10
    pm.step(w)
    entry = m.close[t0 + 1, a]  # filled at the close of 2020-02-20
    assert pm.book.entry[0, a] == pytest.approx(entry)
    expected = next(t for t in range(t0 + 1, t0 + 60) if m.close[t, a] <= 0.92 * entry)
    while pm.t < expected:
        res = pm.step(w)
        assert res.allowed[0, a] > 0
    res = pm.step(w)  # decision at the close of `expected`
    assert res.allowed[0, a] == 0.0 and "stop_loss" in pm.risk.events(0)
    # entry 78.406 (close of 2020-02-20); 72.991 on the 24th is -6.9%, 70.518 on the 25th is -10.1%
    assert str(m.dates[expected]) == "2020-02-25" and entry == pytest.approx(78.406)
    for _ in range(4):  # still cooling down: cannot re-enter
        res = pm.step(w)
        assert res.allowed[0, a] == 0.0 and "cooldown" in pm.risk.events(0)
    res = pm.step(w)
    assert res.allowed[0, a] > 0


def test_take_profit(sample_market):
    m = sample_market
    a = m.tickers.index("AMD")
    pm = PortfolioManager(m, [risk_config(take_profit=0.20, reentry_cooldown_days=0)], FREE, 1e6)
    t0 = _day(m, "2019-01-02")
    pm.reset(t0)
    w = np.zeros((1, 20))
    w[0, a] = 0.10
    pm.step(w)
    for _ in range(500):  # daily rebalancing moves the average entry; check against the entry of the day
        due = m.close[pm.t, a] >= 1.2 * pm.book.entry[0, a]
        res = pm.step(w)
        assert (res.allowed[0, a] == 0.0) == due and ("take_profit" in pm.risk.events(0)) == due
        if due:
            break
    assert due


def test_drawdown_states_reduce_halt_resume(sample_market):
    """All-in on the 20 stocks from 2020-02-19: the 2020 crash walks the book through every state."""
    m = sample_market
    risk = risk_config(max_drawdown=0.15, halt_drawdown=0.25, resume="cooldown", resume_after_days=10)
    pm = PortfolioManager(m, [risk], FREE, 1e6)
    t0 = _day(m, "2020-02-19")
    pm.reset(t0)
    w = np.full((1, 20), 0.05)
    seen = {}
    for _ in range(60):
        current = pm.book.weights().copy()
        res = pm.step(w)
        state = int(pm.risk.state[0])
        seen.setdefault(state, str(m.dates[pm.t - 1]))
        dd = res.drawdown_before[0]  # the drawdown the gate acted on at the decision
        if state == REDUCING:
            assert (res.allowed <= current + 1e-12).all() and dd >= 0.15
        if state == HALTED:
            assert res.allowed.sum() == 0.0
    assert seen[REDUCING] == "2020-03-09" and seen[HALTED] == "2020-03-12"
    from wealtharena.portfolio.risk import R

    assert pm.risk.counts[0, R["resume"]] == 1  # 10 days after the halt, from a fresh peak
    assert pm.risk.counts[0, R["drawdown_halt"]] == 10


def test_reduce_only_ends_after_its_days_with_a_fresh_peak_or_only_by_recovery(sample_market):
    """From cash-like weights after the 2020 crash a book cannot recover its drawdown: with
    `reduce_exit: cooldown` it trades normally again `reduce_after_days` later, from its current value as
    the new peak (a `reduce_exit` event); with `recovery` it stays reduce-only."""
    from wealtharena.portfolio.risk import R

    m = sample_market
    t0 = _day(m, "2020-02-19")
    ended = {}
    for exit_ in ("cooldown", "recovery"):
        risk = risk_config(max_drawdown=0.15, halt_drawdown=0.9, reduce_exit=exit_, reduce_after_days=10)
        pm = PortfolioManager(m, [risk], FREE, 1e6)
        pm.reset(t0)
        w = np.full((1, 20), 0.05)
        entered, before = None, NORMAL
        for day in range(60):
            res = pm.step(w)
            if pm.risk.state[0] == REDUCING and before != REDUCING:  # (re-)entered reduce-only today
                entered, w = day, np.full((1, 20), 0.001)  # then almost all cash: no recovery to come
            before = int(pm.risk.state[0])
            if "reduce_exit" in pm.risk.events(0):
                assert day - entered == 10 and pm.risk.state[0] == NORMAL
                assert res.drawdown_before[0] == 0.0  # the peak was reset to the value at the decision
                assert pm.risk.peak[0] == pytest.approx(max(res.value_before[0], res.value_after[0]))
                break
        ended[exit_] = int(pm.risk.counts[0, R["reduce_exit"]])
        if exit_ == "recovery":
            assert pm.risk.state[0] == REDUCING
    assert ended == {"cooldown": 1, "recovery": 0}


def test_halt_never_resumes_when_configured(sample_market):
    m = sample_market
    risk = risk_config(max_drawdown=0.15, halt_drawdown=0.25, resume="never")
    pm = PortfolioManager(m, [risk], FREE, 1e6)
    pm.reset(_day(m, "2020-02-19"))
    for _ in range(120):
        pm.step(np.full((1, 20), 0.05))
    assert pm.risk.state[0] == HALTED and pm.book.weights().sum() == 0.0


def test_regime_multiplier_kelly_and_vol_sizing(sample_market, sample_features):
    t = _day(sample_market, "2020-03-20")
    assert sample_features.regime[t] == 2  # volatile
    rm, _ = _gate(sample_market, risk_config(regime_multipliers={"volatile": 0.5}), regime=sample_features.regime)
    out = _apply(rm, np.full(20, 0.04), t)
    assert out.sum() == pytest.approx(0.4) and rm.events(0) == ["regime"]

    rm, mr = _gate(sample_market, risk_config(kelly_fraction=0.5))
    out = _apply(rm, np.full(20, 0.04), t)
    assert (out[0] <= 0.5 * np.maximum(mr.kelly[t], 0) + 1e-12).all()

    rm, mr = _gate(sample_market, risk_config(vol_scaled_sizing=True))
    out = _apply(rm, np.full(20, 0.04), t)
    hi = mr.vol[t] > np.median(mr.vol[t])
    assert (out[0, hi] < 0.04).all() and (out[0, ~hi] == 0.04).all()


# ------------------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize(
    "w, match",
    [
        (np.full((1, 20), np.nan), "must be finite"),
        (np.r_[-0.1, np.zeros(19)][None, :], "long-only"),
        (np.zeros((1, 19)), r"shape \(1, 20\)"),
    ],
)
def test_bad_targets_are_rejected(sample_market, w, match):
    rm, _ = _gate(sample_market, RiskConfig())
    with pytest.raises(RiskInputError, match=match):
        _apply(rm, w, 7000)


@pytest.mark.parametrize("check", [True, False])
def test_a_book_above_max_leverage_is_scaled_to_it_by_the_gate(sample_market, check):
    """Validated or not, a target summing above max_leverage (here 0.9) is scaled down by the leverage step."""
    rm, _ = _gate(sample_market, risk_config(max_leverage=0.9, max_position=0.5))
    rm.reset(np.ones(1))
    out = rm.apply(
        np.full((1, 20), 0.05), 7000, np.ones(1), np.zeros((1, 20)), np.ones(20), np.zeros((1, 20)), check=check
    )
    assert out.sum() == pytest.approx(0.9) and "leverage" in rm.events(0)


# ------------------------------------------------------------------ the guarantee, by property


weights = st.lists(st.floats(0, 1), min_size=20, max_size=20)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    raw=st.lists(weights, min_size=5, max_size=5),
    day=st.integers(300, 8310),
    dd=st.floats(0, 0.4),
    scale=st.floats(0.01, 1.0),
    entry_ratio=st.floats(0.7, 1.4),
)
def test_every_hard_limit_holds_on_real_data(sample_market, raw, day, dd, scale, entry_ratio):
    from wealtharena.config import Config

    cfg = Config()
    risks = [cfg.profile_risk(a.profile) for a in cfg.agents]
    rm, mr = _gate(sample_market, *risks)
    w = np.array(raw)
    w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12) * scale
    close = sample_market.close[day]
    current = np.array(raw)[::-1] / 25.0
    rm.reset(np.ones(5))
    out = rm.apply(w, day, np.full(5, 1.0 - dd), current, close, close / entry_ratio * (current > 0.02))
    assert violations(rm, mr, out, day, current, None) == 0


@st.composite
def price_paths(draw):
    n = draw(st.integers(2, 8))
    t = 320
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    vol = draw(st.floats(0.005, 0.06))
    r = rng.normal(0.0003, vol, (t, n))
    if draw(st.booleans()):  # a crash
        at = draw(st.integers(260, t - 5))
        r[at : at + 3] -= draw(st.floats(0.05, 0.3))
    if draw(st.booleans()):  # a gap
        r[draw(st.integers(200, t - 1)), draw(st.integers(0, n - 1))] += draw(st.floats(-0.5, 0.5))
    if draw(st.booleans()):  # a common factor: high correlations
        r += rng.normal(0, vol * 2, (t, 1))
    close = 100 * np.exp(np.cumsum(np.clip(r, -0.9, 0.9), axis=0))
    return close


@settings(max_examples=60, deadline=None)
@given(close=price_paths(), seed=st.integers(0, 1000))
def test_every_hard_limit_holds_on_random_paths_through_a_whole_run(close, seed):
    m = synthetic_market(close)
    risk = RiskConfig(
        max_position=0.4,
        vol_target=0.2,
        var_limit=0.03,
        max_correlation=0.7,
        max_drawdown=0.1,
        halt_drawdown=0.2,
        resume_after_days=5,
    )
    pm = PortfolioManager(m, [risk, RiskConfig()], ExecutionConfig(), 1e6)
    pm.reset(260)
    rng = np.random.default_rng(seed)
    n = close.shape[1]
    while pm.t < len(close) - 2:
        w = rng.dirichlet(np.ones(n + 1), size=2)[:, :n]
        current = pm.book.weights().copy()
        t = pm.t
        res = pm.step(w)
        assert violations(pm.risk, pm.market_risk, res.allowed, t, current, None) == 0
        assert (pm.book.cash >= -1e-6).all()


def _greedy(w, hot, minw):
    """The correlation rule written plainly: visit holdings from the largest down (ties: earlier
    asset first); cut one to the size limit when a holding already kept is hot with it."""
    w = w.copy()
    for k in range(len(w)):
        kept = []
        for a in sorted(range(w.shape[1]), key=lambda j: (-w[k, j], j)):
            if w[k, a] <= minw:
                continue
            if any(hot[k][a, b] for b in kept):
                w[k, a] = minw
            else:
                kept.append(a)
    return w


@pytest.mark.parametrize("per_row, self_hot", [(False, False), (True, False), (False, True)])
def test_correlation_rule_bit_sets_and_masks_give_the_plain_greedy_result(sample_market, per_row, self_hot):
    """The usual path works on uint64 bit sets, the general one (more than 64 assets, or per-portfolio
    thresholds) on [K, N, N] masks: both must give the plain greedy rule on real days, with ties, small
    holdings and one or many days per call, and an asset never conflicts with itself (even where a
    correlation table's diagonal is 1)."""
    from wealtharena.portfolio import rules

    mr = MarketRisk.build(sample_market, risk_config(max_correlation=0.5))
    hot = mr.corr > 0.5
    if self_hot:
        hot = hot | np.eye(20, dtype=bool)[None]
    hot_bits = rules.bitsets(hot)
    bits = np.left_shift(np.uint64(1), np.arange(20, dtype=np.uint64))
    minw = np.full((5, 1), 0.03)
    rng = np.random.default_rng(1)
    cut_total = 0
    for t in range(300, len(sample_market.dates) - 1, 37):
        days = rng.integers(300, len(sample_market.dates) - 1, size=5) if per_row else t
        w = rng.dirichlet(np.full(20, 0.7), size=5) * 0.95
        w[1, 3] = w[1, 7] = w[1].max()  # ties
        w[2, :5] = 0.02  # below the size limit: never cut
        want = _greedy(w, [hot[d] for d in (days if per_row else [t] * 5)], 0.03)
        for cut in (
            rules.correlation_cuts_bits(w, hot_bits[days], bits, minw),
            rules.correlation_cuts_masks(w, hot[days], minw),
        ):
            got = w.copy()
            if cut is not None:
                got[cut] = 0.03
            np.testing.assert_array_equal(got, want)
        cut_total += int((want != w).sum())
    assert cut_total > 50


def test_per_portfolio_correlation_limits_take_the_mask_path(sample_market):
    """Agents with different max_correlation: each portfolio is held to its own limit."""
    strict, loose = risk_config(max_correlation=0.3), risk_config(max_correlation=0.95)
    rm, mr = _gate(sample_market, strict, loose)
    assert rm.correlations.mixed and rm.correlations.hot_bits is None
    t = 7000
    w = np.full((2, 20), 0.045)
    out = _apply(rm, w, t)
    for k, limit in enumerate((0.3, 0.95)):
        big = np.flatnonzero(out[k] > 0.02 + 1e-12)
        c = mr.corr_at(t)[np.ix_(big, big)]
        assert (c <= limit).all()
    assert (out[0] < w[0]).sum() > (out[1] < w[1]).sum()  # the strict book is cut more
