"""Validation episodes: training-length windows of a split, all stepped as one vector core, equal to
the same episodes run one at a time through MultiAgentTradingEnv."""
import numpy as np
import pytest

from tests.envs.test_vector_env import _Start
from wealtharena.envs.multi_agent_env import MultiAgentTradingEnv
from wealtharena.evaluation.backtest import run_episodes

LENGTH = 20


@pytest.fixture(scope="module")
def cfg(sample_config):
    return sample_config.model_copy(update={"env": sample_config.env.model_copy(update={"episode_length": LENGTH})})


def _momentum_policy(names):
    cols = np.array([i for i, n in enumerate(names) if n.startswith("ret_21.") and n.endswith(".t-0")])

    def act(obs, profiles):
        scale = np.array([{"conservative": 0.2, "balanced": 0.5, "aggressive": 1.0}[p] for p in profiles])
        return np.c_[scale[:, None] * obs[:, cols], np.zeros(len(obs))].astype(np.float32)
    return act


def test_windows_equal_single_episodes(cfg):
    single = MultiAgentTradingEnv({"config": cfg, "split": "validation"})
    act = _momentum_policy(single.core.names)
    result = run_episodes(cfg, act, "validation", stride=60)
    dates = [str(d) for d in single.core.data.market.dates]
    lo, hi = single.core.lo, single.core.hi
    assert result.rewards.shape == (len(result.starts), 5) and result.length == LENGTH
    assert len(result.starts) == len(range(lo, hi - LENGTH + 1, 60)) >= 10
    assert result.starts[0] == dates[lo]
    for w in (0, len(result.starts) // 2, len(result.starts) - 1):
        obs = single.core.reset(_Start(dates.index(result.starts[w])), LENGTH)
        total, terms = np.zeros(5), np.zeros((5, 7))
        for _ in range(LENGTH):
            active = ~single.core.done
            obs, rew, _, _ = single.core.step(act(obs, single.core.profiles))
            total += np.where(active, rew, 0.0)
            terms += np.where(active[:, None], single.core.reward.contrib, 0.0)
        np.testing.assert_allclose(result.rewards[w], total, rtol=0, atol=1e-9)
        np.testing.assert_allclose(result.terms[w], terms, rtol=0, atol=1e-9)
    # the weighted terms of every episode add up to its reward, and move (a momentum book is not idle)
    np.testing.assert_allclose(result.terms.sum(axis=2), result.rewards, rtol=0, atol=1e-9)
    assert (np.abs(result.terms).sum(axis=(0, 1)) > 0).all()
    per_term = result.per_window_terms()["aggressive"]
    np.testing.assert_allclose(per_term, result.terms[:, [3, 4]].mean(axis=1))
    by_policy = result.by_policy()
    assert set(by_policy) == {"conservative", "balanced", "aggressive"}
    assert by_policy["balanced"][0] == pytest.approx(result.rewards[:, 2].mean())
    assert by_policy["balanced"][1] == pytest.approx(result.rewards[:, 2].std(ddof=1) / np.sqrt(len(result.starts)))


def test_a_split_too_short_for_one_episode_is_refused(cfg):
    long = cfg.model_copy(update={"env": cfg.env.model_copy(update={"episode_length": 5000})})
    with pytest.raises(ValueError, match="too few for 5000-day episodes"):
        run_episodes(long, lambda o, p: np.zeros((len(o), 21)), "validation", stride=21)


def test_change_between_two_policies_is_paired_window_by_window(cfg):
    """The learning curve's SE of a change compares the same windows: a policy against a scaled
    copy of itself changes every window alike, so the paired SE is far below the unpaired one."""
    import importlib.util

    from wealtharena.config import PROJECT_ROOT

    spec = importlib.util.spec_from_file_location("train_cli", PROJECT_ROOT / "train.py")
    train_cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_cli)
    names = MultiAgentTradingEnv({"config": cfg, "split": "validation"}).core.names
    act = _momentum_policy(names)
    before = run_episodes(cfg, lambda o, p: np.zeros((len(o), 21), np.float32), "validation", stride=30)
    after = run_episodes(cfg, act, "validation", stride=30)
    first = {"policy_window_rewards": {p: v.tolist() for p, v in before.per_window().items()}}
    last = {"policy_window_rewards": {p: v.tolist() for p, v in after.per_window().items()}}
    se = train_cli.change_se(first, last)
    for p in ("conservative", "balanced", "aggressive"):
        d = after.per_window()[p] - before.per_window()[p]
        assert se[p] == pytest.approx(d.std(ddof=1) / np.sqrt(len(d)))
        unpaired = np.hypot(before.by_policy()[p][1], after.by_policy()[p][1])
        assert se[p] < unpaired
    assert train_cli.change_se(first, {"policy_window_rewards": {"balanced": [1.0]}}) == {}
    assert train_cli.change_se(first, {"policy_window_rewards": {"balanced": [1.0, 2.0, 3.0]}}) == {}
