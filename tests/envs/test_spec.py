"""One spec for every env shell: the same options, by the same names, however the env is built."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from wealtharena.envs import MultiAgentTradingEnv, MultiAgentTradingVectorEnv, TradingEnv, TradingVectorEnv
from wealtharena.errors import ConfigError


def test_every_shell_takes_the_same_options(sample_config, sample_data):
    options = {"split": "validation", "random_start": False, "overrides": {"env.episode_length": 21}}
    shells = [
        TradingEnv(config=sample_config, data=sample_data, **options),
        TradingVectorEnv(2, config=sample_config, data=sample_data, **options),
        MultiAgentTradingEnv({"config": sample_config, **options}, data=sample_data),
        MultiAgentTradingVectorEnv(2, {"config": sample_config, **options}, data=sample_data),
    ]
    for env in shells:
        assert env.split == "validation" and env.random_start is False and env.cfg.env.episode_length == 21
        assert env.single_obs_space.shape == (env.core.dim,) and env.single_act_space.shape == (21,)
        env.reset(seed=0)
        assert env.core.t0[0] == sample_data.usable_rows("validation")[0]  # no random start: the split's first day
    made = gym.make("WealthArena-v0", config=sample_config, data=sample_data, **options)
    assert made.unwrapped.cfg.env.episode_length == 21


def test_a_bad_option_names_itself_and_the_options(sample_config, sample_data):
    with pytest.raises(
        ConfigError, match=r"env options: unknown option 'episode_lenght' \(the options: overrides, config"
    ):
        TradingEnv(config=sample_config, data=sample_data, episode_lenght=5)
    with pytest.raises(ConfigError, match=r"split must be train, validation or test"):
        MultiAgentTradingEnv({"config": sample_config, "split": "holdout"}, data=sample_data)
    with pytest.raises(ConfigError, match=r"env\.episode_lenght: unknown key"):
        TradingEnv(config=sample_config, data=sample_data, overrides={"env.episode_lenght": 5})
    assert np.isfinite(TradingEnv(config=sample_config, data=sample_data).reset(seed=1)[0]).all()
