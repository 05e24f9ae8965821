import numpy as np
import pytest
from ray.rllib.utils.pre_checks.env import check_multiagent_environments

from wealtharena.envs.multi_agent_env import MultiAgentTradingEnv
from wealtharena.errors import ActionError, ConfigError

INFO_KEYS = {"portfolio_value", "weights", "drawdown", "costs", "risk_events", "reward_terms", "date"}


@pytest.fixture(scope="module")
def base(sample_config):
    return sample_config.model_dump(mode="json")


def _actions(env, rng):
    return {a: rng.uniform(-1, 1, 21).astype(np.float32) for a in env.agents}


def test_rllib_checker_and_spaces(base, sample_data):
    env = MultiAgentTradingEnv({"config": base}, data=sample_data)
    check_multiagent_environments(env)
    assert env.possible_agents == ["conservative_0", "conservative_1", "balanced_0", "aggressive_0", "aggressive_1"]
    obs, infos = env.reset(seed=0)
    assert all(o.shape == (785,) and o.dtype == np.float32 for o in obs.values())
    assert env.observation_names[-20:] == tuple(f"desk.{t}" for t in env.core.data.market.tickers)
    assert all(INFO_KEYS <= set(i) for i in infos.values())


def test_shared_market_view_independent_portfolios(base, sample_data):
    env = MultiAgentTradingEnv({"config": base}, data=sample_data)
    obs, _ = env.reset(seed=1)
    rng = np.random.default_rng(0)
    obs, rew, term, trunc, infos = env.step(_actions(env, rng))
    dm = env.core.observer.market_dim
    first = next(iter(obs.values()))
    assert all(np.array_equal(o[:dm], first[:dm]) for o in obs.values())  # one market view
    values = [i["portfolio_value"] for i in infos.values()]
    assert len(set(values)) == 5  # five books
    desk = obs["balanced_0"][-20:]
    others = [infos[a]["weights"] for a in env.agents if a != "balanced_0"]
    assert np.allclose(desk, env.core.portfolio.book.weights()[[0, 1, 3, 4]].mean(axis=0), atol=1e-6)
    assert len(others) == 4 and set(term) == set(trunc) == set(env.possible_agents) | {"__all__"}


def test_same_seed_same_trajectories(base, sample_data):
    def run(seed):
        env = MultiAgentTradingEnv({"config": base}, data=sample_data)
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        out = [np.stack(list(obs.values()))]
        for _ in range(30):
            obs, rew, *_ = env.step(_actions(env, rng))
            out.append(np.array(list(rew.values())))
        return out

    a, b = run(4), run(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_each_profile_keeps_its_limits(base, sample_data):
    env = MultiAgentTradingEnv({"config": base}, data=sample_data)
    env.reset(seed=2)
    rng = np.random.default_rng(2)
    caps = {a.id: env.cfg.profile_risk(a.profile).max_position for a in env.cfg.agents}
    for _ in range(1500):
        obs, rew, term, trunc, infos = env.step(_actions(env, rng))
        for agent, info in infos.items():
            w = info["weights"]
            assert (w >= 0).all() and (w <= caps[agent] + 1e-12).all() and w.sum() <= 1 + 1e-9
            assert sum(info["reward_terms"].values()) == pytest.approx(rew[agent], abs=1e-9)
        if term["__all__"] or trunc["__all__"]:
            env.reset()


def test_a_halted_agent_leaves_and_the_others_go_on(base, sample_data):
    cfg = {**base, "profiles": {"conservative": {"risk": {"max_drawdown": 0.001, "halt_drawdown": 0.002}}}}
    env = MultiAgentTradingEnv({"config": cfg, "split": "validation", "random_start": False}, data=sample_data)
    env.reset()
    all_in = {a: np.r_[np.ones(20), -1.0].astype(np.float32) for a in env.possible_agents}
    gone = set()
    for _ in range(60):
        obs, rew, term, trunc, infos = env.step({a: all_in[a] for a in env.agents})
        gone |= {a for a, t in term.items() if t and a != "__all__"}
        if gone:
            break
    assert gone == {"conservative_0", "conservative_1"} and not term["__all__"]
    assert env.agents == ["balanced_0", "aggressive_0", "aggressive_1"]
    obs, rew, term, trunc, infos = env.step({a: all_in[a] for a in env.agents})
    assert set(obs) == set(rew) == set(infos) == {"balanced_0", "aggressive_0", "aggressive_1"}


def test_env_config_errors_are_clear(base, sample_data):
    with pytest.raises(ConfigError, match="spilt"):
        MultiAgentTradingEnv({"config": base, "spilt": "test"}, data=sample_data)
    with pytest.raises(ConfigError, match="split must be train, validation or test"):
        MultiAgentTradingEnv({"config": base, "split": "holdout"}, data=sample_data)
    env = MultiAgentTradingEnv({"config": base}, data=sample_data)
    env.reset(seed=0)
    with pytest.raises(ActionError, match="no action for active agent 'conservative_0'"):
        env.step({})
    with pytest.raises(ActionError, match=r"agent 'balanced_0' must have shape \(21,\)"):
        env.step({a: np.zeros(21 if a != "balanced_0" else 3) for a in env.agents})
