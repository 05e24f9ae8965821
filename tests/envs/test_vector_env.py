"""The vector envs are B copies of the single envs, stepped as one array: same numbers, autoreset included."""

import gymnasium as gym
import numpy as np
import pytest

import wealtharena.envs  # noqa: F401  (registers WealthArena-v0)
from tests.helpers import Start
from wealtharena.envs import TradingEnv, TradingVectorEnv
from wealtharena.envs.multi_agent_env import MultiAgentTradingEnv, MultiAgentTradingVectorEnv
from wealtharena.errors import ActionError

LENGTH = 6


@pytest.fixture(scope="module")
def base(sample_config):
    cfg = sample_config.model_dump(mode="json")
    cfg["env"]["episode_length"] = LENGTH
    return cfg


def test_make_vec_builds_the_array_env(base, sample_data):
    envs = gym.make_vec(
        "WealthArena-v0", num_envs=4, vectorization_mode="vector_entry_point", config=base, data=sample_data
    )
    assert isinstance(envs, TradingVectorEnv)
    obs, infos = envs.reset(seed=0)
    assert obs.shape == (4, 765) and obs.dtype == np.float32 and envs.action_space.shape == (4, 21)
    assert infos["portfolio_value"].shape == (4,) and infos["_portfolio_value"].all()
    assert len(set(envs.unwrapped.core.t0.tolist())) > 1  # independent episodes, own start days


def _record_vector(envs, steps, actions):
    """Per env, the episodes it ran: start row, then (action, obs, reward, weights, terminated, truncated)."""
    obs, _ = envs.reset(seed=3)
    core = envs.core
    episodes = [[{"t0": int(core.t0[e]), "obs0": obs[e], "steps": []}] for e in range(envs.num_envs)]
    ended = np.zeros(envs.num_envs, dtype=bool)
    for i in range(steps):
        obs, rew, term, trunc, infos = envs.step(actions[i])
        for e in range(envs.num_envs):
            if ended[e]:  # this step restarted it
                assert rew[e] == 0.0 and not term[e] and not trunc[e] and not infos["risk_events"][e].any()
                episodes[e].append({"t0": int(core.t0[e]), "obs0": obs[e], "steps": []})
            else:
                episodes[e][-1]["steps"].append((actions[i][e], obs[e], rew[e], infos["weights"][e], term[e], trunc[e]))
        ended = term | trunc
    return episodes


def test_vector_env_matches_single_envs_through_autoreset(base, sample_data):
    envs = TradingVectorEnv(3, config=base, data=sample_data)
    rng = np.random.default_rng(0)
    actions = rng.normal(0, 1.5, (3 * LENGTH + 5, 3, 21))
    episodes = _record_vector(envs, len(actions), actions)
    single = TradingEnv(config=base, data=sample_data)
    checked = 0
    for per_env in episodes:
        assert len(per_env) >= 3  # at least two autoresets each
        for ep in per_env:
            obs = single.core.reset(Start(ep["t0"]), LENGTH)[0]
            np.testing.assert_allclose(obs, ep["obs0"], rtol=0, atol=1e-6)
            for action, v_obs, v_rew, v_w, v_term, v_trunc in ep["steps"]:
                obs, rew, term, trunc, info = single.step(action)
                np.testing.assert_allclose(obs, v_obs, rtol=0, atol=1e-6)
                assert rew == pytest.approx(v_rew, abs=1e-9)
                np.testing.assert_allclose(info["weights"], v_w, rtol=0, atol=1e-12)
                assert (term, trunc) == (bool(v_term), bool(v_trunc))
                checked += 1
    assert checked >= 3 * LENGTH


def test_multi_agent_vector_env_matches_single_envs(base, sample_data):
    envs = MultiAgentTradingVectorEnv(2, {"config": base}, data=sample_data)
    ids = envs.agent_ids
    rng = np.random.default_rng(1)
    obs, infos = envs.reset(seed=5)
    assert len(obs) == 2 and set(obs[0]) == set(ids) and set(infos[1][ids[0]]) >= {"portfolio_value", "risk_events"}
    starts = [int(envs.core.t0[e]) for e in range(2)]
    first_obs = obs
    steps = []
    for _ in range(LENGTH):
        acts = [{a: rng.normal(0, 1.5, 21) for a in ids} for _ in range(2)]
        steps.append((acts, envs.step(acts)))
    # every episode ended together (same length): the next step restarts both
    assert all(s[3][e]["__all__"] for e in range(2) for s in [steps[-1][1]])
    restart = envs.step([{a: np.zeros(21) for a in ids} for _ in range(2)])
    assert all(not restart[2][e]["__all__"] and set(restart[0][e]) == set(ids) for e in range(2))
    for e in range(2):
        single = MultiAgentTradingEnv({"config": base}, data=sample_data)
        obs0 = single.core.reset(Start(starts[e]), LENGTH)
        for k, a in enumerate(ids):
            np.testing.assert_allclose(obs0[k], first_obs[e][a], rtol=0, atol=1e-6)
        for acts, (v_obs, v_rew, v_term, v_trunc, v_info) in steps:
            obs, rew, term, trunc, info = single.step(acts[e])
            assert set(obs) == set(v_obs[e]) and term == v_term[e] and trunc == v_trunc[e]
            for a in obs:
                np.testing.assert_allclose(obs[a], v_obs[e][a], rtol=0, atol=1e-6)
                assert rew[a] == pytest.approx(v_rew[e][a], abs=1e-9)
                assert info[a]["risk_events"] == v_info[e][a]["risk_events"]
                assert info[a]["date"] == v_info[e][a]["date"]


def test_vector_envs_reject_bad_actions(base, sample_data):
    envs = TradingVectorEnv(2, config=base, data=sample_data)
    envs.reset(seed=0)
    with pytest.raises(ActionError, match=r"shape \(2, 21\)"):
        envs.step(np.zeros((3, 21)))
    with pytest.raises(ActionError, match="NaN"):
        envs.step(np.full((2, 21), np.nan))
    ma = MultiAgentTradingVectorEnv(2, {"config": base}, data=sample_data)
    ma.reset(seed=0)
    good = {a: np.zeros(21) for a in ma.agent_ids}
    with pytest.raises(ActionError, match="env 1: action of agent 'conservative_0' must have shape"):
        ma.step([good, {**good, "conservative_0": np.zeros(20)}])
    with pytest.raises(ActionError, match="env 0: no action for active agent 'balanced_0'"):
        ma.step([{a: v for a, v in good.items() if a != "balanced_0"}, good])


def test_multi_agent_vector_env_without_step_infos_keeps_the_episode_summary(base, sample_data):
    """Training runners set step_infos False: empty infos, except each agent's last step, which
    carries the episode's summed reward terms (what the training callback logs)."""
    full = MultiAgentTradingVectorEnv(2, {"config": base}, data=sample_data)
    lean = MultiAgentTradingVectorEnv(2, {"config": base, "step_infos": False}, data=sample_data)
    full.reset(seed=2)
    lean.reset(seed=2)
    rng = np.random.default_rng(2)
    for _i in range(LENGTH):
        acts = [{a: rng.normal(0, 1.5, 21) for a in full.agent_ids} for _ in range(2)]
        f, g = full.step(acts), lean.step(acts)
        for e in range(2):
            for a in f[0][e]:
                np.testing.assert_array_equal(f[0][e][a], g[0][e][a])
                assert f[1][e][a] == g[1][e][a]
                ended = f[2][e][a] or f[3][e][a]
                if ended:
                    assert g[4][e][a]["episode_reward_terms"] == f[4][e][a]["episode_reward_terms"]
                    assert g[4][e][a]["date"] == f[4][e][a]["date"]
                else:
                    assert g[4][e][a] == {}
    assert all(f[3][e]["__all__"] for e in range(2))


@pytest.mark.parametrize("shuffle", [False, True])
def test_training_infos_carry_the_critics_forward_returns_and_nothing_else_does(base, shuffle, sample_data):
    """With critic_horizons (training runners only), every info holds the assets' realised log
    returns over the next h days from the info's own date, in the slot order the agent sees,
    stopping at the split's last row; envs built without it (evaluation) never carry them."""
    cfg = {**base, "env": {**base["env"], "shuffle_assets": shuffle}}
    horizons = [1, 3]
    env = MultiAgentTradingVectorEnv(
        2, {"config": cfg, "step_infos": False, "critic_horizons": horizons}, data=sample_data
    )
    plain = MultiAgentTradingVectorEnv(2, {"config": cfg, "step_infos": True}, data=sample_data)
    market = env.core.data.market
    close, last, n = market.close, env.core.hi, env.core.n

    def check(infos):
        for e, per_agent in enumerate(infos):
            for aid, info in per_agent.items():
                row = e * env.core.n_agents + env.agent_ids.index(aid)
                t = int(env.core.portfolio.clock[row])
                slots = env.core.order.perm[row]  # slot j shows asset perm[j]
                want = np.stack([np.log(close[min(t + h, last)] / close[t]) for h in horizons])[:, slots]
                np.testing.assert_allclose(info["critic"], want.ravel(), rtol=1e-5, atol=1e-7)

    _, infos = env.reset(seed=5)
    plain.reset(seed=5)
    check(infos)
    rng = np.random.default_rng(5)
    for _ in range(3 * LENGTH):
        acts = [{a: rng.normal(0, 1.5, n + 1) for a in env.agent_ids} for _ in range(2)]
        check(env.step(acts)[4])
        assert all("critic" not in info for per_agent in plain.step(acts)[4] for info in per_agent.values())
    # near the end of the split the horizon stops at its last row (no validation prices in training)
    env.core.portfolio.clock[:] = last - 1
    fwd = env.core.critic_inputs(np.array([0])).reshape(len(horizons), n)
    np.testing.assert_allclose(fwd[0], fwd[1], rtol=1e-6)
    assert np.abs(fwd).max() > 0
