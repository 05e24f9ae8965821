"""Validation episodes: training-length windows of a split, all stepped as one vector core, equal to
the same episodes run one at a time through MultiAgentTradingEnv."""

import numpy as np
import pytest

from tests.helpers import Start
from wealtharena.envs.multi_agent_env import MultiAgentTradingEnv
from wealtharena.envs.policy import EqualWeightPolicy
from wealtharena.evaluation.episodes import run_episodes
from wealtharena.evaluation.validation import AgentStats, ValidationResult

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


def test_windows_equal_single_episodes(cfg, sample_data):
    single = MultiAgentTradingEnv({"config": cfg, "split": "validation"}, data=sample_data)
    act = _momentum_policy(single.core.names)
    result = run_episodes(cfg, sample_data, act, "validation", stride=60)
    dates = [str(d) for d in single.core.data.market.dates]
    lo, hi = single.core.lo, single.core.hi
    assert result.rewards.shape == (len(result.starts), 5) and result.length == LENGTH
    assert len(result.starts) == len(range(lo, hi - LENGTH + 1, 60)) >= 10
    assert result.starts[0] == dates[lo]
    for w in (0, len(result.starts) // 2, len(result.starts) - 1):
        obs = single.core.reset(Start(dates.index(result.starts[w])), LENGTH)
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


def test_a_split_shorter_than_an_episode_is_one_episode_of_the_whole_split(cfg, sample_data):
    """A walk-forward window's validation year is shorter than a training episode: one episode covers it."""
    long = cfg.model_copy(update={"env": cfg.env.model_copy(update={"episode_length": 5000})})
    episodes = run_episodes(long, sample_data, EqualWeightPolicy(20), "validation", stride=21)
    lo, hi = sample_data.usable_rows("validation")
    assert len(episodes.starts) == 1 and episodes.length == hi - lo - 1


def _validation(episodes, iteration):
    return ValidationResult(
        iteration=iteration,
        agents={"balanced_0": AgentStats(0.0, 0.0, 0.0, 0.0, "balanced")},
        policy_episode_reward={p: m for p, (m, _) in episodes.by_policy().items()},
        policy_episode_reward_se={p: s for p, (_, s) in episodes.by_policy().items()},
        policy_window_rewards={p: v.tolist() for p, v in episodes.per_window().items()},
        episodes=len(episodes.starts),
        episode_length=episodes.length,
        stride=30,
        policy_full_period_reward={},
        mean_sharpe=0.0,
        mean_episode_reward=0.0,
    )


def test_change_between_two_policies_is_paired_window_by_window(cfg, sample_data):
    """The learning curve's SE of a change compares the same windows: a policy against a scaled
    copy of itself changes every window alike, so the paired SE is far below the unpaired one."""
    from wealtharena.evaluation.report import learning_curve

    act = _momentum_policy(sample_data.observation_names(cfg.env.desk_observation))
    before = run_episodes(cfg, sample_data, EqualWeightPolicy(20), "validation", stride=30)
    after = run_episodes(cfg, sample_data, act, "validation", stride=30)
    first, last = _validation(before, 0), _validation(after, 4)
    se = last.change_se(first)
    for p in ("conservative", "balanced", "aggressive"):
        d = after.per_window()[p] - before.per_window()[p]
        assert se[p] == pytest.approx(d.std(ddof=1) / np.sqrt(len(d)))
        unpaired = np.hypot(before.by_policy()[p][1], after.by_policy()[p][1])
        assert se[p] < unpaired
    assert (
        f"balanced {last.policy_episode_reward['balanced'] - first.policy_episode_reward['balanced']:+.2f} "
        f"(SE {se['balanced']:.2f})" in learning_curve([first, last])
    )
    one = _validation(before, 4)
    one.policy_window_rewards = {"balanced": [1.0]}
    assert one.change_se(first) == {}
    one.policy_window_rewards = {"balanced": [1.0, 2.0, 3.0]}
    assert one.change_se(first) == {}
    again = ValidationResult.from_dict(last.to_dict())  # what a checkpoint stores and reads back
    assert again == last
