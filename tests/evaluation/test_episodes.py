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
        total = np.zeros(5)
        for _ in range(LENGTH):
            active = ~single.core.done
            obs, rew, _, _ = single.core.step(act(obs, single.core.profiles))
            total += np.where(active, rew, 0.0)
        np.testing.assert_allclose(result.rewards[w], total, rtol=0, atol=1e-9)
    by_policy = result.by_policy()
    assert set(by_policy) == {"conservative", "balanced", "aggressive"}
    assert by_policy["balanced"][0] == pytest.approx(result.rewards[:, 2].mean())
    assert by_policy["balanced"][1] == pytest.approx(result.rewards[:, 2].std(ddof=1) / np.sqrt(len(result.starts)))


def test_a_split_too_short_for_one_episode_is_refused(cfg):
    long = cfg.model_copy(update={"env": cfg.env.model_copy(update={"episode_length": 5000})})
    with pytest.raises(ValueError, match="too few for 5000-day episodes"):
        run_episodes(long, lambda o, p: np.zeros((len(o), 21)), "validation", stride=21)
