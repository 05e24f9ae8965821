"""The book and execution costs, pinned to hand-checked numbers on real days."""

import numpy as np
import pytest

from tests.conftest import risk_config, synthetic_market
from wealtharena.config import ExecutionConfig
from wealtharena.portfolio import Book, ExecutionModel, MarketRisk, PortfolioManager

EXEC = ExecutionConfig(commission_bps=5, slippage_bps=2, slippage_vol_coef=0.05, impact_coef=0.0)


def _day(market, iso: str) -> int:
    return int(np.searchsorted(market.dates, np.datetime64(iso)))


def test_first_trade_costs_and_fill_by_hand(sample_market):
    """Buy 10% AAPL at the close of 2019-01-02; it fills at the close of 2019-01-03 (no opens in the set)."""
    m = sample_market
    t, i = _day(m, "2019-01-02"), m.tickers.index("AAPL")
    mr = MarketRisk.build(m, risk_config())
    ex = ExecutionModel.build(m, EXEC, mr)
    book = Book(1, m.n_assets, 1_000_000.0)
    book.mark(m.close[t])
    target = np.zeros((1, m.n_assets))
    target[0, i] = 0.10
    fill = book.rebalance(target, m.close[t], t, ex)

    close_t, close_next = m.close[t, i], m.close[t + 1, i]
    r = m.close[t - 62 : t + 1, i] / m.close[t - 63 : t, i] - 1.0  # the 63 returns known at t
    slip = (2 + 0.05 * np.std(r, ddof=1) * 1e4) / 1e4
    shares = 100_000.0 / close_t
    traded = shares * close_next  # filled at the next close
    assert ex.fills_at == "close" and ex.fill[t, i] == close_next
    assert book.shares[0, i] == pytest.approx(shares)
    assert fill.commission[0] == pytest.approx(traded * 5e-4)
    assert fill.slippage[0] == pytest.approx(traded * slip)
    assert book.cash[0] == pytest.approx(1_000_000.0 - traded * (1 + slip) - traded * 5e-4)
    assert book.entry[0, i] == pytest.approx(close_next * (1 + slip))  # average cost includes slippage
    # marked at the fill price, the only loss is the cost
    value = book.mark(m.close[t + 1])
    assert value[0] == pytest.approx(1_000_000.0 - fill.costs[0])
    # AAPL on those days in the data set (adjusted): the -10% of 3 January 2019, its revenue warning
    assert (round(close_t, 3), round(close_next, 3)) == (37.994, 34.21)


def test_fill_at_next_open_when_the_data_has_opens():
    close = np.array([[10.0, 20.0], [11.0, 21.0], [12.0, 22.0], [12.5, 23.0]] * 30)
    open_ = close * 0.99
    m = synthetic_market(close, open_=open_)
    mr = MarketRisk.build(m, risk_config())
    ex = ExecutionModel.build(m, ExecutionConfig(commission_bps=0, slippage_bps=0, slippage_vol_coef=0), mr)
    assert ex.fills_at == "open"
    book = Book(1, 2, 1000.0)
    book.mark(close[5])
    book.rebalance(np.array([[0.5, 0.0]]), close[5], 5, ex)
    assert book.entry[0, 0] == pytest.approx(open_[6, 0])  # the open of t+1, not the close of t
    assert book.shares[0, 0] == pytest.approx(500.0 / close[5, 0])


def test_gap_up_never_overdraws_cash():
    close = np.full((200, 2), 100.0)
    close[101:] = 130.0  # +30% overnight gap after the decision
    m = synthetic_market(close)
    mr = MarketRisk.build(m, risk_config())
    ex = ExecutionModel.build(m, EXEC, mr)
    book = Book(1, 2, 1000.0)
    book.mark(close[100])
    fill = book.rebalance(np.array([[0.6, 0.4]]), close[100], 100, ex)
    assert fill.scaled[0] and book.cash[0] >= -1e-9
    value = book.mark(close[101])
    assert (book.shares[0] * close[101]).sum() <= value[0] + 1e-9  # leverage <= 1 after the fill


def test_average_entry_and_exit():
    close = np.full((120, 1), 10.0)
    close[61:] = 12.0
    close = np.hstack([close, np.full((120, 1), 5.0)])
    m = synthetic_market(close)
    ex = ExecutionModel.build(
        m, ExecutionConfig(commission_bps=0, slippage_bps=0, slippage_vol_coef=0), MarketRisk.build(m, risk_config())
    )
    book = Book(1, 2, 1000.0)
    book.mark(close[59])
    book.rebalance(np.array([[0.5, 0.0]]), close[59], 59, ex)  # 50 shares at 10
    book.mark(close[60])
    book.rebalance(np.array([[0.6, 0.0]]), close[60], 60, ex)  # +10 shares at 12
    assert book.entry[0, 0] == pytest.approx((50 * 10 + 10 * 12) / 60)
    book.mark(close[61])
    book.rebalance(np.zeros((1, 2)), close[61], 61, ex)
    assert book.shares[0, 0] == 0.0 and book.entry[0, 0] == 0.0


def test_volume_impact_raises_slippage(tmp_path):
    close = np.full((100, 2), 50.0)
    m = synthetic_market(close)
    values = np.concatenate([m.values, np.full((100, 2, 1), 1000.0)], axis=2)  # 1,000 shares a day
    import dataclasses

    m = dataclasses.replace(m, fields=("close", "volume"), values=values)
    mr = MarketRisk.build(m, risk_config())
    cfg = ExecutionConfig(commission_bps=0, slippage_bps=0, slippage_vol_coef=0, impact_coef=0.1)
    ex = ExecutionModel.build(m, cfg, mr)
    slip = ex.slippage(50, np.array([[5000.0, 0.0]]))  # 10% of the 50,000 traded daily
    assert slip[0, 0] == pytest.approx(0.1 * 0.1) and slip[0, 1] == 0.0


def test_manager_steps_k_portfolios_like_one(sample_market):
    risks = [risk_config(max_position=0.2), risk_config(max_position=0.2)]
    pm2 = PortfolioManager(sample_market, risks, EXEC, 1e6)
    pm1 = PortfolioManager(sample_market, risks[:1], EXEC, 1e6)
    rng = np.random.default_rng(3)
    t0 = _day(sample_market, "2016-01-04")
    pm1.reset(t0)
    pm2.reset(t0)
    for _ in range(30):
        w = rng.dirichlet(np.ones(21))[:20] * 0.9
        w = np.minimum(w, 0.2)
        pm1.step(w[None, :])
        pm2.step(np.stack([w, w]))
    np.testing.assert_allclose(pm2.book.value, pm1.book.value[0], rtol=1e-12)
