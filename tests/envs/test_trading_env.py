import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import wealtharena.envs  # noqa: F401  (registers WealthArena-v0)
from tests.conftest import LOOSE_RISK
from wealtharena.envs import TradingEnv
from wealtharena.errors import ActionError


@pytest.fixture(scope="module")
def base(sample_config):
    return sample_config.model_dump(mode="json")


def _env(base, data, split="train", **options):
    return TradingEnv(config=base, split=split, data=data, **options)


def test_make_with_no_arguments_and_with_overrides(base):
    env = gym.make("WealthArena-v0")
    obs, info = env.reset(seed=0)
    assert obs.shape == (765,) and obs.dtype == np.float32 and set(info) >= {"portfolio_value", "date"}
    env = gym.make("WealthArena-v0", config=base, overrides={"env.episode_length": 5})
    env.reset(seed=0)
    for _i in range(5):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
    assert truncated and not terminated


def test_check_env_passes_without_warnings(base):
    env = gym.make("WealthArena-v0", config=base).unwrapped
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    assert [str(w.message) for w in caught] == []


def _rollout(env, seed, steps=40):
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [obs]
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        out += [obs, np.array([r, info["portfolio_value"]])]
        if term or trunc:
            break
    return out


def test_same_seed_same_trajectory(base, sample_data):
    a, b = _rollout(_env(base, sample_data), 7), _rollout(_env(base, sample_data), 7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and len(a) == len(b)
    c = _rollout(_env(base, sample_data), 8)
    assert not np.array_equal(a[0], c[0])


def test_observation_names_match_the_vector(base, sample_features, sample_market, sample_data):
    env = _env(base, sample_data, overrides={"env.random_start": False})
    names = env.observation_names
    obs, info = env.reset(options={"full": True})
    assert len(names) == len(set(names)) == obs.shape[0]
    t = env.core.portfolio.t
    f = sample_features.asset_names.index("rsi_14")
    assert obs[names.index("rsi_14.MSFT.t-0")] == sample_features.asset[t, sample_market.tickers.index("MSFT"), f]
    assert (
        obs[names.index("market.mkt_vol_21")]
        == sample_features.market[t, sample_features.market_names.index("mkt_vol_21")]
    )
    obs, _, _, _, info = env.step(np.zeros(21, dtype=np.float32))
    weights = np.array([obs[names.index(f"weight.{tk}")] for tk in env.tickers])
    assert obs[names.index("portfolio.cash")] == pytest.approx(1 - weights.sum(), abs=1e-6)
    assert obs[names.index("portfolio.log_value")] == pytest.approx(math.log(info["portfolio_value"] / 1e6), abs=1e-6)


def test_episode_by_hand_on_real_days(base, sample_market, sample_data):
    """Equal scores -> 1/21 in each stock, the rest cash; no limits; 5 bps commission + 2 bps slippage."""
    cfg = {
        **base,
        "risk": {**base["risk"], **LOOSE_RISK},
        "env": {
            **base["env"],
            "execution": {"commission_bps": 5, "slippage_bps": 2, "slippage_vol_coef": 0, "impact_coef": 0},
        },
    }
    env = TradingEnv(
        config=cfg,
        split="validation",
        data=sample_data,
        overrides={"env.random_start": False, "env.rebalance_speed": 1.0},
    )
    env.reset()
    t = env.core.portfolio.t
    close = sample_market.close
    cash, shares, value = 1e6, np.zeros(20), 1e6
    for _day in range(3):
        _, reward, _, _, info = env.step(np.zeros(21, dtype=np.float32))
        target = np.full(20, 1 / 21)
        want = target * value / close[t]
        cost = 0.0
        for i in range(20):  # plain arithmetic, one asset at a time
            delta = want[i] - shares[i]
            px = close[t + 1, i] * (1 + 0.0002 * np.sign(delta))
            cash -= delta * px + 0.0005 * abs(delta) * close[t + 1, i]
            cost += 0.0007 * abs(delta) * close[t + 1, i]
            shares[i] = want[i]
        new_value = cash + shares @ close[t + 1]
        assert info["portfolio_value"] == pytest.approx(new_value, rel=1e-12)
        assert info["costs"] == pytest.approx(cost, rel=1e-9)
        assert info["reward_terms"]["profit"] == pytest.approx(2.0 * 100 * math.log(new_value / value), rel=1e-9)
        assert info["date"] == str(sample_market.dates[t + 1])
        value, t = new_value, t + 1
    assert info["date"] == "2015-01-07"  # the first validation days: 2, 5, 6, 7 January


def test_reward_terms_add_up_and_weights_respect_limits(base, sample_data):
    env = _env(base, sample_data)
    env.reset(seed=3)
    env.action_space.seed(3)
    limits = env.cfg.profile_risk("balanced")
    for _ in range(2000):
        _, reward, term, trunc, info = env.step(env.action_space.sample())
        assert sum(info["reward_terms"].values()) == pytest.approx(reward, abs=1e-9)
        w = info["weights"]
        assert (w >= 0).all() and (w <= limits.max_position + 1e-12).all() and w.sum() <= 1 + 1e-9
        assert np.isfinite(reward)
        if term or trunc:
            env.reset()


def test_bad_actions_are_clear_errors(base, sample_data):
    env = _env(base, sample_data)
    env.reset(seed=0)
    with pytest.raises(ActionError, match="NaN"):
        env.step(np.full(21, np.nan, dtype=np.float32))
    with pytest.raises(ActionError, match=r"shape \(21,\)"):
        env.step(np.zeros(20, dtype=np.float32))


def test_the_action_changes_the_outcome(base, sample_data):
    """Overweighting one stock or another must lead to different books and values."""
    results = []
    for favourite in (0, 5):
        env = _env(base, sample_data, split="validation", overrides={"env.random_start": False})
        env.reset()
        a = np.full(21, -1.0, dtype=np.float32)
        a[favourite] = 1.0
        for _ in range(20):
            _, _, _, _, info = env.step(a)
        results.append((info["weights"].argmax(), info["portfolio_value"]))
    assert results[0][0] == 0 and results[1][0] == 5 and results[0][1] != results[1][1]


def test_terminated_on_ruin_truncated_at_the_end(base, sample_data):
    env = _env(base, sample_data, overrides={"env.ruin_fraction": 0.9999, "env.episode_length": 50})
    env.reset(seed=0)
    _, _, term, trunc, _ = env.step(np.zeros(21, dtype=np.float32))  # costs alone cross 99.99%
    assert term and not trunc
    env = _env(base, sample_data, split="test", overrides={"env.random_start": False})
    env.reset()
    steps = 0
    while True:
        _, _, term, trunc, info = env.step(np.full(21, -1.0, dtype=np.float32))
        steps += 1
        if term or trunc:
            break
    assert (trunc, term, info["date"], steps) == (True, False, "2022-12-28", env.core.max_steps())


def test_rebalance_speed_moves_part_of_the_way(base, sample_data):
    cfg = {**base, "risk": {**base["risk"], **LOOSE_RISK}}
    env = TradingEnv(
        config=cfg,
        split="validation",
        data=sample_data,
        overrides={"env.random_start": False, "env.rebalance_speed": 0.5},
    )
    env.reset()
    _, _, _, _, info = env.step(np.zeros(21, dtype=np.float32))  # from cash, half way to 1/21 each
    np.testing.assert_allclose(info["weights"], np.full(20, 0.5 / 21))
    current = env.core.portfolio.book.weights()[0].copy()
    _, _, _, _, info = env.step(np.zeros(21, dtype=np.float32))
    np.testing.assert_allclose(info["weights"], 0.5 * current + 0.5 / 21)


def test_any_real_action_is_squashed_not_clipped(base, sample_data):
    env = _env(base, sample_data, split="validation", overrides={"env.random_start": False})
    env.reset()
    big = np.zeros(21, dtype=np.float32)
    big[0] = 3.0  # beyond the Box bound
    w_big = env.core.actions.portfolio(big[None, :])[0, 0]
    big[0] = 1.0
    w_one = env.core.actions.portfolio(big[None, :])[0, 0]
    assert w_big > w_one  # tanh keeps the ordering past +-1
    inf = np.full(21, -np.inf, dtype=np.float32)
    inf[-1] = np.inf
    assert env.core.actions.portfolio(inf[None, :]).sum() < 1e-3  # +-inf are valid: all cash


def test_shuffled_assets_move_observation_and_action_together(base, sample_data):
    env = _env(
        base, sample_data, overrides={"env.shuffle_assets": True, "env.rebalance_speed": 1.0, "env.action_scale": 5.0}
    )
    obs, _ = env.reset(seed=4)
    core = env.core
    perm = core.order.perm[0].copy()
    assert not np.array_equal(perm, np.arange(20))  # a training episode: random order
    f = core.data.features.n_asset_features
    t = core.portfolio.t
    for slot in (0, 7, 19):  # slot j shows asset perm[j]'s features
        np.testing.assert_array_equal(
            obs[slot * f : (slot + 1) * f], core.data.block[t, perm[slot] * f : (perm[slot] + 1) * f]
        )
    action = np.full(21, -1.0)
    action[3] = 1.0  # all in on slot 3
    _, _, _, _, info = env.step(action)
    assert int(np.argmax(info["weights"])) == perm[3]  # info weights are in universe order
    obs = env.step(action)[0]
    weights = obs[core.observer.market_dim : core.observer.market_dim + 20]
    assert int(np.argmax(weights)) == 3  # the observation shows it in slot 3
    full, _ = env.reset(seed=4, options={"full": True})  # evaluation: the universe's order
    assert np.array_equal(core.order.perm[0], np.arange(20))
    np.testing.assert_array_equal(full[: core.observer.market_dim], core.data.block[core.portfolio.t])
