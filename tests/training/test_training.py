"""Training with real RLlib on a real local Ray session (tiny configs, one session for all tests)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import TINY
from wealtharena.app.training import validator
from wealtharena.config import PROJECT_ROOT
from wealtharena.errors import CheckpointError
from wealtharena.evaluation.validation import ValidationResult
from wealtharena.training import run as training_run
from wealtharena.training.checkpoints import check_compatible, read_meta, resolve_checkpoint

pytestmark = pytest.mark.slow


def _with(cfg, **training):
    return cfg.model_copy(update={"training": cfg.training.model_copy(update=training)})


def train(cfg, data, experiment, **kwargs):
    """A training run validated as train.py validates it."""
    return training_run.train(
        cfg, data, experiment, validate=validator(cfg, data), revive=ValidationResult.from_dict, **kwargs
    )


@pytest.fixture(scope="module")
def ppo_run(ray_local, tiny_config, sample_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    shared = (root / "shared-storage").as_uri()  # a pyarrow URI, as s3:// would be
    cfg = _with(tiny_config, checkpoint_dir=root / "local", storage_path=shared)
    return cfg, train(cfg, sample_data, "t", iterations=2, run_name="ppo", progress=False)


def test_ppo_trains_checkpoints_and_validates(ppo_run):
    cfg, result = ppo_run
    assert [h.iteration for h in result.history] == [1, 2]
    assert set(result.history[-1].policy_return) == {"conservative", "balanced", "aggressive"}
    assert all(np.isfinite(v) for v in result.history[-1].policy_return.values())
    assert set(result.history[-1].reward_terms["balanced"]) >= {"profit", "risk", "sharpe"}
    assert json.loads((result.run_dir / "latest.json").read_text()) == {"path": "iter_000002", "iteration": 2}
    assert (result.run_dir / "iter_000001").is_dir() and result.best_checkpoint == result.run_dir / "best"
    assert not list(result.run_dir.glob(".tmp-*"))  # no half-written checkpoint left
    val = result.validation[-1]
    assert val.iteration == 2 and set(val.policy_episode_reward) == {"conservative", "balanced", "aggressive"}
    # every env runner took the driver's data from the object store instead of loading its own
    assert result.runners and {r["data"] for r in result.runners} == {"object_store"}


@pytest.mark.parametrize("algorithm", ["a2c", "sac"])
def test_other_algorithms_train_two_iterations(ray_local, tiny_config, sample_data, tmp_path, algorithm):
    cfg = _with(tiny_config, algorithm=algorithm, checkpoint_dir=tmp_path, eval_every=5)
    result = train(cfg, sample_data, "t", iterations=2, run_name=algorithm, progress=False)
    assert len(result.history) == 2 and all(np.isfinite(v) for v in result.history[-1].policy_return.values())
    assert read_meta(result.last_checkpoint).config["training"]["algorithm"] == algorithm


def test_rllibs_own_env_runner_and_default_network_still_train(ray_local, tiny_config, sample_data, tmp_path):
    """training.runner: rllib goes back to RLlib's MultiAgentEnvRunner over separate envs,
    training.network: mlp to RLlib's default MLP on the whole observation."""
    from wealtharena.training.inference import TrainedPolicy

    policies = dict(tiny_config.training.policies)
    policies["conservative"] = policies["conservative"].model_copy(update={"log_std_init": -2.0})
    cfg = _with(
        tiny_config,
        runner="rllib",
        network="mlp",
        log_std_init=-1.0,
        checkpoint_dir=tmp_path,
        eval_every=5,
        policies=policies,
    )
    result = train(cfg, sample_data, "t", iterations=1, run_name="plain", progress=False)
    assert all(np.isfinite(v) for v in result.history[-1].policy_return.values())
    assert result.runners and result.runners[0]["data"] == "object_store"
    # each policy's free log-std started at its own value (one small update since: within 0.1)
    modules = TrainedPolicy.from_checkpoint(result.last_checkpoint, cfg).modules
    starts = {p: float(m.pi.log_std.detach().mean()) for p, m in modules.items()}
    assert starts == pytest.approx({"conservative": -2.0, "balanced": -1.0, "aggressive": -1.0}, abs=0.1)


def test_restored_checkpoint_acts_identically_with_and_without_ray(ppo_run, sample_data):
    from ray.rllib.algorithms.algorithm import Algorithm

    from wealtharena.envs.core import TradingCore
    from wealtharena.training.inference import TrainedPolicy

    cfg, result = ppo_run
    core = TradingCore(cfg, [a.profile for a in cfg.agents], "validation", data=sample_data, desk=True)
    obs = core.reset(None, None)
    policy = TrainedPolicy.from_checkpoint(result.last_checkpoint, cfg)
    for module in policy.modules.values():  # built with RLlib's current keyword constructor
        args, kwargs = module.get_ctor_args_and_kwargs()
        assert args == () and {"observation_space", "action_space", "model_config"} <= set(kwargs)
    standalone = policy(obs, core.profiles)
    algo = Algorithm.from_checkpoint(str(result.last_checkpoint))
    try:
        restored = TrainedPolicy.from_algorithm(algo, cfg)(obs, core.profiles)
        assert algo.iteration == 2
    finally:
        algo.stop()
    np.testing.assert_array_equal(standalone, restored)


def test_evaluation_logs_no_rllib_module_config_notice(ppo_run):
    """RLlib 2.60's RLModule base constructor builds its deprecated RLModuleConfig for every module: the
    CLI's logging drops that one notice (nothing a caller can change), and nothing else."""
    import logging

    from ray.util.debug import _logged

    from wealtharena.cli import setup_logging
    from wealtharena.training.inference import TrainedPolicy

    cfg, result = ppo_run
    setup_logging()
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("ray._common.deprecation")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)  # the test session's Ray set its loggers to ERROR
    try:
        _logged.clear()  # RLlib logs each notice once per process
        TrainedPolicy.from_checkpoint(result.last_checkpoint, cfg)
        logger.warning("DeprecationWarning: `other` has been deprecated")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    messages = [r.getMessage() for r in records]
    assert not any("RLModuleConfig object" in m for m in messages) and any("`other`" in m for m in messages)


def test_checkpoints_are_mirrored_to_shared_storage(ppo_run):
    cfg, result = ppo_run
    mirror = Path(cfg.training.storage_path.removeprefix("file://")) / "t" / "ppo"
    assert json.loads((mirror / "latest.json").read_text()) == {"path": "iter_000002", "iteration": 2}
    assert (mirror / "iter_000002" / "wealtharena.json").is_file() and (mirror / "best").is_dir()


def test_resume_from_shared_storage_continues_the_iteration_count(ppo_run, sample_data):
    cfg, result = ppo_run
    resumed = train(
        cfg, sample_data, "t", iterations=1, checkpoint=f"{cfg.training.storage_path}/t/ppo", progress=False
    )
    assert resumed.run_dir == result.run_dir  # same run, on this node
    assert [h.iteration for h in resumed.history] == [1, 2, 3]
    # its speed counts from the restored step total, not from zero
    assert resumed.history[2].env_steps - resumed.history[1].env_steps <= 2 * cfg.training.train_batch_size
    assert resumed.history[2].env_steps_per_s < 5 * resumed.history[1].env_steps_per_s
    assert json.loads((result.run_dir / "latest.json").read_text())["iteration"] == 3
    mirror = Path(cfg.training.storage_path.removeprefix("file://")) / "t" / "ppo"
    assert json.loads((mirror / "latest.json").read_text())["iteration"] == 3


def test_same_seed_same_first_iteration(ray_local, tiny_config, sample_data, tmp_path):
    cfg = _with(tiny_config, checkpoint_dir=tmp_path, eval_every=5)
    a = train(cfg, sample_data, "t", iterations=1, run_name="a", progress=False).history[0]
    b = train(cfg, sample_data, "t", iterations=1, run_name="b", progress=False).history[0]
    assert a.policy_return == b.policy_return  # sampled episodes: bit-identical
    for policy, terms in a.reward_terms.items():  # RLlib's metric reduction order: ~1e-16
        assert terms == pytest.approx(b.reward_terms[policy], rel=1e-12)
    for policy, stats in a.learner.items():
        assert stats == pytest.approx(b.learner[policy], rel=1e-9)


def test_checkpoint_from_another_config_is_refused(ppo_run):
    cfg, result = ppo_run
    other = cfg.model_copy(update={"env": cfg.env.model_copy(update={"window": 3})})
    with pytest.raises(CheckpointError, match=r"different config \(window: checkpoint 1 vs config 3\)"):
        check_compatible(other, read_meta(result.last_checkpoint), result.last_checkpoint)
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_checkpoint(result.run_dir / "nope")


def test_cli_trains_two_seeds_then_evaluates_them(ray_local, tmp_path, monkeypatch, capsys, cache_dir):
    import train as cli

    cfg_file = tmp_path / "tiny.yaml"
    cfg_file.write_text(TINY.read_text())
    monkeypatch.chdir(tmp_path)
    assert (
        cli.main(
            [
                "--config",
                str(cfg_file),
                "--iterations",
                "1",
                "--seeds",
                "0",
                "1",
                "--experiment",
                "e2e",
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Results on the validation split" in out and "equal weight (daily)" in out and "costs included" in out
    assert "validation split, costs included (mean ± std [min .. max] over 2 seeds)" in out
    assert "desk: hedge (Fixed Share)" in out and "desk: learnt gate (in-sample)" in out and "expert meetings:" in out
    runs = sorted((tmp_path / "checkpoints" / "e2e").glob("*-s*"))
    assert [r.name[-3:] for r in runs] == ["-s0", "-s1"]
    assert (tmp_path / "checkpoints" / "e2e" / "seeds-validation.csv").is_file()
    # the desk's validation run left the agents' validation tracks with the checkpoint, for its later runs
    assert (runs[0] / "best" / "desk_agents-validation.npz").is_file()
    assert (tmp_path / "mlflow.db").is_file()  # MLflow on by default, SQLite here
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    models = mlflow.search_logged_models(
        experiment_ids=[mlflow.get_experiment_by_name("e2e").experiment_id], output_format="list"
    )
    assert {m.name for m in models} == {"policy_conservative", "policy_balanced", "policy_aggressive"}
    requirements = mlflow.artifacts.download_artifacts(artifact_uri=f"{models[0].artifact_location}/requirements.txt")
    requirements = Path(requirements).read_text()
    assert "torch==" in requirements and "+cpu" not in requirements and "ray[rllib]==" in requirements

    assert cli.main(["--mode", "evaluate", "--checkpoint", str(runs[0] / "best")]) == 0
    out = capsys.readouterr().out
    assert "Results on the test split, 2019-" in out and "SP500 buy & hold" in out and "logged to MLflow run" in out
    files = {p.name for p in (runs[0] / "best" / "eval-test").iterdir()}
    assert {
        "results.json",
        "report.html",
        "equity.png",
        "allocation_balanced_0.png",
        "training.png",
        "desk_capital.png",
        "routing.jsonl",
        "meetings.json",
        "gate.json",
    } <= files
    results = json.loads((runs[0] / "best" / "eval-test" / "results.json").read_text())
    assert results["costs_included"] and "balanced_0" in results["metrics"]
    assert results["desk"]["gate"]["fit_split"] == "validation" and "desk: learnt gate" in results["metrics"]
    html = (runs[0] / "best" / "eval-test" / "report.html").read_text()
    assert "Learning curve" in html and 'src="training.png"' in html and "The desk (mixture of experts)" in html
    run_id = read_meta(runs[0] / "best").mlflow["run_id"]
    client = mlflow.MlflowClient()
    evaluations = client.search_runs(
        [mlflow.get_experiment_by_name("e2e").experiment_id], f"tags.mlflow.parentRunId = '{run_id}'"
    )
    assert len(evaluations) == 1 and evaluations[0].data.tags["mlflow.runName"] == "evaluate best on test"
    logged = {a.path for a in client.list_artifacts(evaluations[0].info.run_id, "eval-test")}
    assert not [m for m in client.get_run(run_id).data.metrics if m.startswith("test/")]  # not in the training run
    assert {"eval-test/routing.jsonl", "eval-test/desk_capital.png", "eval-test/report.html"} <= logged

    assert (
        cli.main(
            [
                "--mode",
                "evaluate",
                "--checkpoint",
                str(tmp_path / "checkpoints" / "e2e"),
                "--seeds",
                "0",
                "1",
                "--split",
                "validation",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "over 2 seeds" in out and "vs chosen agent (fund limits)" in out and "95% interval (own limits)" in out
    assert (tmp_path / "checkpoints" / "e2e" / "seeds-desk-validation.csv").is_file()

    # the learning table replays each run's latest policies against the zero-action start: on the
    # validation split it must give the change that training's own validation recorded
    from wealtharena.app import learning

    assert learning.main([str(tmp_path / "checkpoints" / "e2e"), "--splits", "validation"]) == 0
    assert "seeds that rise" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "checkpoints" / "e2e" / "learning-latest.csv")
    assert (table["change"].abs() > 1e-6).all() and (table["se"] > 0).all()  # the policies did move
    terms = table[[c for c in table.columns if c.startswith("term.")]]
    assert terms.shape[1] == 7 and np.allclose(terms.sum(axis=1), table["change"], atol=1e-9)
    assert learning.main([str(tmp_path / "checkpoints" / "e2e"), "--splits", "validation", "--terms"]) == 0
    assert "change of each weighted reward term" in capsys.readouterr().out
    for run in runs:
        meta = read_meta(run / json.loads((run / "latest.json").read_text())["path"])
        first, last = meta.validation[0], meta.validation[-1]
        assert first["iteration"] == 0 and last["iteration"] == meta.iteration
        got = table[table["seed"] == int(run.name[-1])].set_index("policy")["change"]
        for p, reward in last["policy_episode_reward"].items():
            assert got[p] == pytest.approx(reward - first["policy_episode_reward"][p], abs=1e-9)
    with pytest.raises(CheckpointError, match="holds no runs"):
        learning.main([str(tmp_path)])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config", "missing.yaml"], "config file 'missing.yaml' not found"),
        (["--mode", "evaluate"], "--mode evaluate needs --checkpoint"),
        (["--mode", "evaluate", "--checkpoint", "no/such/dir"], "checkpoint no/such/dir does not exist"),
        (["--algorithm", "dqn"], "invalid choice: 'dqn'"),
        (["--iterations", "0"], "--iterations must be at least 1"),
    ],
)
def test_user_errors_are_one_message_and_exit_code_2(args, message, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "train.py"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a2c_learns_on_cartpole(ray_local):
    """The honest A2C loss improves a simple policy: CartPole's return rises."""
    from wealtharena.training.a2c import A2CConfig

    config = (
        A2CConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=8)
        .training(train_batch_size_per_learner=400, lr=1e-3, entropy_coeff=0.01)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        returns = [algo.train()["env_runners"]["episode_return_mean"] for _ in range(35)]
    finally:
        algo.stop()
    assert np.mean(returns[-5:]) > np.mean(returns[:5]) + 50, returns


def test_single_agent_ppo_samples_from_the_native_vector_env(ray_local, tiny_config):
    """RLlib's single-agent env runner builds TradingVectorEnv through Gymnasium's vector entry point."""
    from ray.rllib.algorithms.ppo import PPOConfig

    env_config = {"config": tiny_config.model_dump(mode="json")}
    config = (
        PPOConfig()
        .environment("wealtharena.envs:WealthArena-v0", env_config=env_config)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=4, gym_env_vectorize_mode="vector_entry_point")
        .training(train_batch_size_per_learner=256, minibatch_size=128, num_epochs=1)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        assert type(algo.env_runner.env.unwrapped).__name__ == "TradingVectorEnv"
        result = algo.train()
    finally:
        algo.stop()
    assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 256


def test_search_space_keys_are_checked_before_any_trial(tiny_config):
    from wealtharena.app.tune import check_search_space
    from wealtharena.config import coerce_config
    from wealtharena.errors import ConfigError

    bad = coerce_config(tiny_config, {"training.tune.search_space": {"training.lrr": [0.1]}})
    with pytest.raises(
        ConfigError, match=r"(?s)search_space\['training.lrr'\] = 0.1 is not valid.*training.lrr: unknown key"
    ):
        check_search_space(bad)


def test_tune_runs_asha_and_reports_an_evaluable_checkpoint(ray_local, tiny_config, sample_data, tmp_path, capsys):
    from wealtharena.app.tune import run_tune
    from wealtharena.config import coerce_config

    cfg = coerce_config(
        tiny_config,
        {
            "training.checkpoint_dir": str(tmp_path),
            "training.tune.num_samples": 2,
            "training.tune.grace_period": 1,
            "training.tune.search_space": {"training.lr": [1e-4, 1e-3]},
        },
    )
    best = run_tune(cfg, sample_data, "tune-test")
    assert best is not None and (best / "wealtharena.json").is_file()
    assert "Tune over 2 trials, metric validation_sharpe on the validation split" in capsys.readouterr().out
    import train as cli

    assert cli.main(["--mode", "evaluate", "--checkpoint", str(best), "--split", "validation"]) == 0


def test_policy_build_order_does_not_depend_on_the_hash_seed(tiny_config, tmp_path):
    """RLlib builds (and so initialises) the policies in the order of `config.policies`: with a set,
    that order, and each policy's initial weights, changed with PYTHONHASHSEED between runs."""
    import subprocess
    import sys

    code = (
        "import sys; from wealtharena.config import load_config; "
        "from wealtharena.training.algorithms import build_algorithm_config; "
        "from wealtharena.envs.data import load_env_data; cfg = load_config(sys.argv[1]); "
        "print(list(build_algorithm_config(cfg, load_env_data(cfg)).policies))"
    )
    path = tmp_path / "tiny.yaml"
    path.write_text(__import__("yaml").safe_dump(tiny_config.model_dump(mode="json")))
    orders = {
        subprocess.run(
            [sys.executable, "-c", code, str(path)],
            capture_output=True,
            text=True,
            check=True,
            env={**__import__("os").environ, "PYTHONHASHSEED": str(seed)},
        ).stdout.strip()
        for seed in (1, 2, 3, 4)
    }
    assert orders == {str(list(tiny_config.policy_ids))}, orders


def test_vector_env_runner_samples_what_the_single_env_gives(ray_local, tiny_config, sample_data):
    """The vector runner steps all its episodes in one MultiAgentTradingVectorEnv; every episode it hands
    to the learner replays identically through MultiAgentTradingEnv (autoresets between episodes included)."""
    from tests.helpers import Start
    from wealtharena.envs.multi_agent_env import MultiAgentTradingEnv, MultiAgentTradingVectorEnv
    from wealtharena.training.algorithms import build_algorithm_config

    cfg = _with(tiny_config, num_env_runners=0, num_envs_per_env_runner=3, runner="vector")
    config = build_algorithm_config(cfg, sample_data)
    config = config.environment(env_config={**config.env_config, "step_infos": True})
    algo = config.build_algo()
    try:
        runner = algo.env_runner
        assert isinstance(runner.env, MultiAgentTradingVectorEnv) and runner.num_envs == 3
        episodes = [ep for ep in runner.sample(num_timesteps=200) if ep.is_done]
    finally:
        algo.stop()
    length = cfg.env.episode_length
    assert len(episodes) >= 4
    single = MultiAgentTradingEnv({"config": cfg}, data=sample_data)
    dates = [str(d) for d in single.core.data.market.dates]
    for ep in episodes:
        agents = {aid: ep.agent_episodes[aid] for aid in single.agent_ids}
        first = agents[single.agent_ids[0]].get_infos(0)["date"]
        obs0 = single.core.reset(Start(dates.index(first)), length)
        for k, sa in enumerate(agents.values()):
            np.testing.assert_allclose(obs0[k], sa.get_observations(0), rtol=0, atol=1e-6)
        steps = max(len(sa) for sa in agents.values())
        assert steps == length or ep.is_terminated
        for i in range(steps):
            acting = {aid: sa.get_actions(i) for aid, sa in agents.items() if i < len(sa)}
            obs, rew, term, trunc, info = single.step(acting)
            for aid in acting:
                np.testing.assert_allclose(obs[aid], agents[aid].get_observations(i + 1), rtol=0, atol=1e-6)
                assert rew[aid] == pytest.approx(agents[aid].get_rewards(i), abs=1e-9)
                assert info[aid]["date"] == agents[aid].get_infos(i + 1)["date"]


def test_critic_inputs_reach_the_value_function_aligned_with_their_observations(ray_local, tiny_config, sample_data):
    """training.critic_horizons: the learner's batch holds each observation's forward market returns
    (from the training env's infos) in the row of that observation, bootstrap rows included, and the
    value function reads them; the policy's action distribution does not depend on them."""
    import copy

    import torch

    from wealtharena.training.algorithms import build_algorithm_config
    from wealtharena.training.models import CRITIC

    cfg = _with(tiny_config, num_env_runners=0, num_envs_per_env_runner=2, critic_horizons=[1, 5], runner="vector")
    algo = build_algorithm_config(cfg, sample_data).build_algo()
    try:
        episodes = algo.env_runner.sample(num_timesteps=120)
        pairs, expected_rows = {}, 0
        for ep in episodes:
            for sa in ep.agent_episodes.values():
                expected_rows += len(sa) + 1  # + the bootstrap row PPO's learner appends
                for i in range(len(sa) + 1):
                    pairs[sa.get_observations(i).tobytes()] = sa.get_infos(i)["critic"]
        learner = algo.learner_group._learner
        batch = learner._learner_connector(
            rl_module=learner.module,
            batch={},
            episodes=copy.deepcopy(episodes),
            shared_data={},
            metrics=learner.metrics,
        )
        rows = 0
        for pid, module_batch in batch.items():
            obs, critic = module_batch["obs"].numpy(), module_batch[CRITIC].numpy()
            module = learner.module[pid]
            assert critic.shape == (len(obs), 2 * (module.action_space.shape[0] - 1))
            for o, c in zip(obs, critic):
                np.testing.assert_array_equal(c, pairs[o.tobytes()])
            rows += len(obs)
            other = {**module_batch, CRITIC: torch.zeros_like(module_batch[CRITIC])}
            with torch.no_grad():
                assert not torch.allclose(module.compute_values(module_batch), module.compute_values(other))
                torch.testing.assert_close(
                    module.forward_train(module_batch)["action_dist_inputs"],
                    module.forward_train(other)["action_dist_inputs"],
                    rtol=0,
                    atol=0,
                )
        assert rows == expected_rows
        algo.train()  # and PPO trains on them
    finally:
        algo.stop()


def _cli_run(tmp_path: Path, name: str):
    """`train.py` in a fresh process without PYTHONHASHSEED (tiny config, 2 iterations); the last
    checkpoint's metadata."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg_file = tmp_path / "tiny.yaml"
    cfg_file.write_text(TINY.read_text())
    proc = subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "train.py"),
            "--config",
            str(cfg_file),
            "--iterations",
            "2",
            "--experiment",
            name,
            "--no-progress",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = (tmp_path / "checkpoints" / name).glob("*-s*")
    return read_meta(run / "iter_000002")


def test_train_py_runs_are_bit_identical_across_processes(tmp_path):
    """The learner draws each policy's minibatch shuffles in the order of a set of policy ids, so with
    Python's random hash seed two processes agreed on iteration 1 only; train.py re-runs itself with
    PYTHONHASHSEED=0 (unless the user set one), and every iteration then repeats exactly."""
    a, b = (_cli_run(tmp_path / name, name) for name in ("a", "b"))
    assert a.python_hash_seed == b.python_hash_seed == "0"
    assert [h["policy_return"] for h in a.history] == [h["policy_return"] for h in b.history]
    assert [h["learner"] for h in a.history] == [h["learner"] for h in b.history]


def test_evaluating_seeds_refuses_runs_of_different_algorithms(ppo_run, tmp_path):
    """`--mode evaluate --seeds` takes each seed's newest run: when those were trained with different configs
    or algorithms it refuses, naming the runs, instead of averaging them."""
    import shutil

    from wealtharena.app.evaluate import evaluate_seeds

    cfg, result = ppo_run
    experiment = tmp_path / "mixed"
    for seed in (0, 1):
        shutil.copytree(
            result.run_dir, experiment / f"20260101-000000-s{seed}", ignore=shutil.ignore_patterns("eval-*")
        )
    meta_path = experiment / "20260101-000000-s1" / "best" / "wealtharena.json"
    meta = json.loads(meta_path.read_text())
    meta["compat"]["algorithm"] = meta["config"]["training"]["algorithm"] = "a2c"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(
        CheckpointError, match=r"different configs or algorithms \(seed 0: .*\(ppo\), seed 1: .*\(a2c\)\)"
    ):
        evaluate_seeds(experiment, [0, 1], "validation", None, {})
