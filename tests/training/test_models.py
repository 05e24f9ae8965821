"""The asset-shared policy network: layout of the observation, equivariance to the asset order."""

import numpy as np
import pytest
import torch
from gymnasium import spaces
from ray.rllib.core.columns import Columns

from wealtharena.envs.multi_agent_env import MultiAgentTradingEnv
from wealtharena.training.models import AssetSharedModule, asset_layout


@pytest.fixture(scope="module")
def env(sample_config, sample_data):
    return MultiAgentTradingEnv({"config": sample_config}, data=sample_data)


@pytest.fixture(scope="module")
def layout(sample_config, sample_data):
    return asset_layout(
        sample_data.observation_names(sample_config.env.desk_observation),
        sample_data.market.tickers,
        sample_config.env.window,
        sample_data.features.asset_names,
    )


def test_layout_gives_each_asset_its_own_columns_and_shares_the_rest(env, layout):
    names, tickers = env.core.names, env.core.data.market.tickers
    asset, shared = np.array(layout["asset"]), layout["shared"]
    assert asset.shape == (20, 35 + 3)  # 35 features, weight, upnl, desk
    assert sorted(asset.ravel().tolist() + shared) == list(range(len(names)))  # each column once
    for i, t in enumerate(tickers):
        assert all(f".{t}." in names[c] or names[c].endswith(f".{t}") for c in asset[i])
    # the same position holds the same quantity for every asset
    assert {names[asset[i, 3]].split(".")[0] for i in range(20)} == {names[asset[0, 3]].split(".")[0]}
    assert {names[c].split(".")[0] for c in shared} >= {"market", "portfolio", "risk", "time"}
    with pytest.raises(ValueError, match="no column 'ret_1.ZZZ.t-0'"):
        asset_layout(names, ["ZZZ"], 1, ["ret_1"])


def _module(env, layout, seed=0):
    torch.manual_seed(seed)
    obs_space = spaces.Box(-10, 10, (env.core.dim,), np.float32)
    act_space = spaces.Box(-1, 1, (env.core.n + 1,), np.float32)
    return AssetSharedModule(
        observation_space=obs_space,
        action_space=act_space,
        model_config={**layout, "hidden": [16, 16], "vf_hidden": [16], "log_std_init": -1.0},
    )


def test_scores_follow_the_assets_when_their_order_changes(env, layout):
    module = _module(env, layout)
    with torch.no_grad():  # a trained-looking scorer, not the near-0 start
        for p in module.parameters():
            p.normal_(0, 0.3)
    obs, _ = env.reset(seed=1)
    x = torch.as_tensor(np.stack(list(obs.values())))
    perm = np.random.default_rng(0).permutation(20)
    idx = np.array(layout["asset"])
    y = x.clone()
    y[:, idx.ravel()] = x[:, idx[perm].ravel()]  # slot i now shows asset perm[i]
    with torch.no_grad():
        a = module.forward_inference({Columns.OBS: x})[Columns.ACTION_DIST_INPUTS]
        b = module.forward_inference({Columns.OBS: y})[Columns.ACTION_DIST_INPUTS]
    torch.testing.assert_close(b[:, :20], a[:, perm])
    torch.testing.assert_close(b[:, 20:], a[:, 20:])  # cash score and log-std do not move
    assert not torch.allclose(a[:, :20], a[:, perm])  # and the scores do differ between assets


def test_untrained_policy_starts_at_equal_weight(env, layout):
    module = _module(env, layout)
    obs, _ = env.reset(seed=2)
    x = torch.as_tensor(np.stack(list(obs.values())))
    with torch.no_grad():
        out = module.forward_inference({Columns.OBS: x})[Columns.ACTION_DIST_INPUTS]
        values = module.compute_values({Columns.OBS: x})
    mean, log_std = out[:, :21], out[:, 21:]
    assert torch.all(mean == 0.0) and torch.all(log_std == -1.0) and values.shape == (5,)
    assert values.abs().sum() > 0  # the critic is not zeroed
    n_params = sum(p.numel() for p in module.scorer.parameters())
    assert n_params == (35 + 3 + len(layout["shared"])) * 16 + 16 + 16 * 16 + 16 + 16 + 1


def test_empty_hidden_lists_mean_linear_heads_not_the_defaults(env, layout):
    obs_space = spaces.Box(-10, 10, (env.core.dim,), np.float32)
    act_space = spaces.Box(-1, 1, (env.core.n + 1,), np.float32)
    module = AssetSharedModule(
        observation_space=obs_space, action_space=act_space, model_config={**layout, "hidden": [], "vf_hidden": []}
    )
    p = 35 + 3 + len(layout["shared"])
    assert sum(x.numel() for x in module.scorer.parameters()) == p + 1
    assert sum(x.numel() for x in module.cash.parameters()) == len(layout["shared"]) + 1
    assert sum(x.numel() for x in module.vf.parameters()) == env.core.dim + 1


def test_each_policy_can_start_at_its_own_log_std(env, sample_config, sample_data):
    from wealtharena.config import PolicyConfig
    from wealtharena.training.algorithms import build_algorithm_config

    tr = sample_config.training
    policies = {p: PolicyConfig(hidden=[8], vf_hidden=[8]) for p in sample_config.policy_ids}
    policies["conservative"] = PolicyConfig(hidden=[8], vf_hidden=[8], log_std_init=-2.0)
    cfg = sample_config.model_copy(
        update={
            "training": tr.model_copy(
                update={"algorithm": "ppo", "network": "asset_shared", "log_std_init": -1.0, "policies": policies}
            )
        }
    )
    specs = build_algorithm_config(cfg, sample_data).rl_module_spec.rl_module_specs
    obs_space = spaces.Box(-10, 10, (env.core.dim,), np.float32)
    act_space = spaces.Box(-1, 1, (env.core.n + 1,), np.float32)
    starts = {
        p: AssetSharedModule(observation_space=obs_space, action_space=act_space, model_config=specs[p].model_config)
        .log_std.detach()
        .unique()
        .tolist()
        for p in cfg.policy_ids
    }
    assert starts == {"conservative": [-2.0], "balanced": [-1.0], "aggressive": [-1.0]}


def test_asset_shared_value_reads_assets_like_the_scorer_and_ignores_their_order(env, layout):
    """value_network: asset_shared: one MLP on each asset's columns and the shared ones, averaged over the
    assets; the value does not move when the assets are shown in another order, and its size does not
    grow with the number of assets."""
    obs_space = spaces.Box(-10, 10, (env.core.dim,), np.float32)
    act_space = spaces.Box(-1, 1, (env.core.n + 1,), np.float32)
    torch.manual_seed(0)
    module = AssetSharedModule(
        observation_space=obs_space,
        action_space=act_space,
        model_config={**layout, "hidden": [8], "vf_hidden": [16, 16], "value_network": "asset_shared"},
    )
    p = 35 + 3 + len(layout["shared"])
    assert sum(x.numel() for x in module.vf.parameters()) == p * 16 + 16 + 16 * 16 + 16 + 16 + 1
    obs, _ = env.reset(seed=3)
    x = torch.as_tensor(np.stack(list(obs.values())))
    idx = np.array(layout["asset"])
    perm = np.random.default_rng(1).permutation(20)
    y = x.clone()
    y[:, idx.ravel()] = x[:, idx[perm].ravel()]
    with torch.no_grad():
        v, w = module.compute_values({Columns.OBS: x}), module.compute_values({Columns.OBS: y})
        own, shared = x[:, idx], x[:, layout["shared"]]
        both = torch.cat([own, shared.unsqueeze(1).expand(-1, 20, -1)], -1)
        by_hand = module.vf(both).mean(dim=(1, 2))
        for q in module.scorer.parameters():  # the scorer's split first layer, against the plain concatenation
            q.normal_(0, 0.3)
        scores = module._scores(x)[:, :20]
    torch.testing.assert_close(scores, module.scorer(both).squeeze(-1))
    torch.testing.assert_close(v, w)
    torch.testing.assert_close(v, by_hand)
    with pytest.raises(ValueError, match="critic_horizons feed the dense value network"):
        AssetSharedModule(
            observation_space=obs_space,
            action_space=act_space,
            model_config={
                **layout,
                "hidden": [8],
                "vf_hidden": [8],
                "value_network": "asset_shared",
                "critic_horizons": [5],
            },
        )
