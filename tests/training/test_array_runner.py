"""The array runner and its learner: samples that replay through the env, GAE by the book,
log-probabilities and values the learner agrees with, bit-identical reruns, minibatch schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

from wealtharena.training.rollout import gae, train_batch


def _with(cfg, **training):
    return cfg.model_copy(update={"training": cfg.training.model_copy(update=training)})


def _reference_gae(rewards, values, next_values, ends, gamma, lam):
    """Advantages row by row, step by step, as the formula reads."""
    t_len, k = rewards.shape
    adv = np.zeros((t_len, k))
    for row in range(k):
        running = 0.0
        for t in reversed(range(t_len)):
            delta = rewards[t, row] + gamma * next_values[t, row] - values[t, row]
            running = delta + (0.0 if ends[t, row] else gamma * lam * running)
            adv[t, row] = running
    return adv


def test_gae_matches_the_formula_step_by_step():
    rng = np.random.default_rng(0)
    rewards, values, next_values = rng.normal(size=(3, 40, 6))
    ends = rng.random((40, 6)) < 0.1
    adv, targets = gae(rewards, values, next_values, ends, 0.99, 0.9)
    want = _reference_gae(rewards, values, next_values, ends, 0.99, 0.9)
    np.testing.assert_allclose(adv, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(targets, want + values, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def array_algo(ray_local, tiny_config, sample_data):
    """A PPO on the array runner, sampling in the driver (no remote runners), 3 episodes per runner."""
    from wealtharena.training.algorithms import build_algorithm_config

    cfg = _with(tiny_config, num_env_runners=0, num_envs_per_env_runner=3)
    algo = build_algorithm_config(cfg, sample_data).build_algo()
    yield cfg, algo
    algo.stop()


def _per_row(samples, steps, rows):
    """A policy's flat samples (time-major, then row) back to [T, R] when every row acted every step."""
    assert len(samples) == steps * rows
    return lambda x: x.reshape(steps, rows, *x.shape[1:])


def test_array_runner_samples_replay_through_the_single_env(array_algo, sample_data):
    """Every step the array runner sampled, fed back through MultiAgentTradingEnv from the same first
    day, gives the same observations and rewards; episodes restart in the step they end."""
    from wealtharena.envs.multi_agent_env import MultiAgentTradingEnv
    from wealtharena.training.array_runner import ArrayEnvRunner

    cfg, algo = array_algo
    runner = algo.env_runner
    assert isinstance(runner, ArrayEnvRunner)
    runner._start()
    core = runner.env.core
    t0, lengths = core.t0.copy(), core.length.copy()
    assert len(set(lengths.tolist())) > 1  # first episodes of the slots end at different steps
    steps = int(lengths.max()) + 5  # every slot ends its first episode inside the rollout
    rollout = runner.sample(num_timesteps=steps * core.n_envs)
    a = core.n_agents
    rows_of = runner._rows_of
    obs = np.empty((steps, core.k, core.dim), np.float32)
    actions = np.empty((steps, core.k, core.n + 1), np.float32)
    for mid, rows in rows_of.items():
        shape = _per_row(rollout.policies[mid], steps, len(rows))
        obs[:, rows] = shape(rollout.policies[mid].obs)
        actions[:, rows] = shape(rollout.policies[mid].actions)
    single = MultiAgentTradingEnv({"config": cfg}, data=sample_data)
    for e in range(core.n_envs):
        rows = list(range(e * a, (e + 1) * a))
        first = single.core.reset(None, int(lengths[e]), starts=np.array([t0[e]])).copy()
        np.testing.assert_allclose(obs[0, rows], first, rtol=0, atol=1e-6)
        for t in range(int(lengths[e])):
            out, _, _, trunc, _ = single.step({aid: actions[t, rows[j]] for j, aid in enumerate(single.agent_ids)})
            if t + 1 < lengths[e]:
                for j, aid in enumerate(single.agent_ids):
                    np.testing.assert_allclose(out[aid], obs[t + 1, rows[j]], rtol=0, atol=1e-6)
        assert trunc["__all__"]
        # the step after the last one is a new episode's first observation (its progress is 0)
        progress = single.observation_names.index("time.progress")
        assert obs[int(lengths[e]), rows[0], progress] == 0.0


def test_the_learner_agrees_with_the_runners_log_probabilities_and_values(array_algo):
    cfg, algo = array_algo
    rollout = algo.env_runner.sample(num_timesteps=120)
    learner = algo.learner_group._learner
    for mid, samples in rollout.policies.items():
        module = learner.module[mid]
        with torch.no_grad():
            batch = {Columns.OBS: torch.from_numpy(samples.obs)}
            inputs = module.forward_train(batch)[Columns.ACTION_DIST_INPUTS]
            dist = module.get_train_action_dist_cls().from_logits(inputs)
            logp = dist.logp(torch.from_numpy(samples.actions)).numpy()
            values = module.compute_values(batch).numpy()
        np.testing.assert_allclose(logp, samples.logp, rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(values, samples.vf_preds, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(samples.value_targets, samples.advantages + samples.vf_preds, rtol=1e-5, atol=1e-5)


def test_the_train_batch_standardises_advantages_per_policy(array_algo):
    cfg, algo = array_algo
    batch = train_batch([algo.env_runner.sample(num_timesteps=60), algo.env_runner.sample(num_timesteps=60)])
    for pb in batch.policy_batches.values():
        adv = pb[Postprocessing.ADVANTAGES]
        assert abs(adv.mean()) < 1e-5 and adv.std() == pytest.approx(1.0, abs=1e-4)


def test_array_sampling_is_bit_identical_for_a_seed(ray_local, tiny_config, sample_data):
    from wealtharena.training.algorithms import build_algorithm_config

    cfg = _with(tiny_config, num_env_runners=0, num_envs_per_env_runner=2)
    out = []
    for _ in range(2):
        algo = build_algorithm_config(cfg, sample_data).build_algo()
        try:
            algo.train()
            out.append(algo.env_runner.sample(num_timesteps=80))
        finally:
            algo.stop()
    for mid in out[0].policies:
        for key, col in out[0].policies[mid].columns().items():
            np.testing.assert_array_equal(col, out[1].policies[mid].columns()[key])


def test_minibatches_cover_each_policys_rows_once_per_epoch():
    from wealtharena.training.learner import TensorMinibatches

    sizes = {"a": 1203, "b": 601}
    batch = MultiAgentBatch({m: SampleBatch({"i": np.arange(n)}) for m, n in sizes.items()}, env_steps=600)
    seen: dict[str, list[int]] = {m: [] for m in sizes}
    steps = 0
    for mb in TensorMinibatches(batch, num_epochs=3, minibatch_size=200, shuffle=True):
        steps += 1
        for mid, pb in mb.policy_batches.items():
            assert 195 <= len(pb["i"]) <= 205
            seen[mid] += pb["i"].tolist()
    assert steps == 3 * 6  # the larger policy's 6 minibatches per epoch
    for mid, n in sizes.items():
        assert sorted(seen[mid]) == sorted(list(range(n)) * 3)


def test_critic_inputs_ride_along_with_their_observations_and_feed_the_values(ray_local, tiny_config, sample_data):
    """training.critic_horizons on the array runner: each sample's `critic_inputs` are the forward market
    returns from its own day, the runner's values read them, and PPO trains on the batch."""
    from wealtharena.training.algorithms import build_algorithm_config
    from wealtharena.training.models import CRITIC

    cfg = _with(tiny_config, num_env_runners=0, num_envs_per_env_runner=2, critic_horizons=[1, 5])
    algo = build_algorithm_config(cfg, sample_data).build_algo()
    try:
        runner = algo.env_runner
        runner._start()
        core = runner.env.core
        t0, steps = core.t0.copy(), int(core.length.min())
        rollout = runner.sample(num_timesteps=steps * core.n_envs)
        learner = algo.learner_group._learner
        for mid, rows in runner._rows_of.items():
            samples = rollout.policies[mid]
            critic = _per_row(samples, steps, len(rows))(samples.critic)
            for t in (0, steps - 1):
                for j, k in enumerate(rows.tolist()):
                    day = t0[k // core.n_agents] + t
                    want = core.forward.table[day].reshape(-1)
                    np.testing.assert_array_equal(critic[t, j], want)
            with torch.no_grad():
                batch = {Columns.OBS: torch.from_numpy(samples.obs), CRITIC: torch.from_numpy(samples.critic)}
                values = learner.module[mid].compute_values(batch).numpy()
            np.testing.assert_allclose(values, samples.vf_preds, rtol=1e-5, atol=1e-5)
        algo.train()
    finally:
        algo.stop()


def test_remote_runners_sample_with_the_learners_weights_value_function_included(ray_local, tiny_config, sample_data):
    """After updates every remote runner holds the learner's whole module state: the runner computes the values
    GAE reads, so a value function left at its first weights there would bias every advantage."""
    from wealtharena.training.algorithms import build_algorithm_config

    cfg = _with(tiny_config, num_env_runners=1, num_envs_per_env_runner=2)
    algo = build_algorithm_config(cfg, sample_data).build_algo()
    try:
        first = algo.learner_group._learner.module.get_state()
        for _ in range(2):
            algo.train()
        learner = algo.learner_group._learner.module.get_state()
        (runner,) = algo.env_runner_group.foreach_env_runner(lambda r: r.module.get_state(), local_env_runner=False)
        for mid, state in learner.items():
            assert set(runner[mid]) == set(state)
            assert any(not np.array_equal(v, first[mid][k]) for k, v in state.items() if "vf" in k or "value" in k)
            for key, value in state.items():
                np.testing.assert_array_equal(runner[mid][key], value, err_msg=f"{mid}.{key}")
    finally:
        algo.stop()
