"""AlgorithmConfig builders for PPO, A2C and SAC on the 5-agent env (RLlib new API stack).

One policy per profile (`conservative`, `balanced`, `aggressive`), shared by the agents of that
profile; network sizes and learning rates per policy come from `training.policies`.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.algorithms.sac import SACConfig
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.tune.registry import register_env

from wealtharena.config import Config
from wealtharena.envs.data import EnvData
from wealtharena.training.a2c import A2CConfig
from wealtharena.training.array_algorithm import ArrayA2C, ArrayPPO
from wealtharena.training.array_runner import ArrayEnvRunner
from wealtharena.training.data_service import make_env
from wealtharena.training.env_runner import VectorEnvRunner
from wealtharena.training.learner import ArrayA2CLearner, ArrayPPOLearner
from wealtharena.training.models import AssetSharedModule, CriticInputs, asset_layout

ENV_NAME = "wealtharena_ma"
ALGORITHMS = ("ppo", "a2c", "sac")


def register() -> None:
    """Register the env with Ray Tune's registry (needed in every process that builds or restores)."""
    register_env(ENV_NAME, make_env)


class PolicyMapping:
    """agent id -> policy id (its profile). A class, not a lambda, so that it pickles by reference."""

    def __init__(self, profile_of: dict[str, str]):
        self.profile_of = dict(profile_of)

    def __call__(self, agent_id: str, episode: Any = None, **kwargs: Any) -> str:
        return self.profile_of[agent_id]


def build_algorithm_config(cfg: Config, data: EnvData, seed: int | None = None) -> AlgorithmConfig:
    """The RLlib config for `cfg.training.algorithm` on the multi-agent env (train split); `data` gives
    the observation's layout (which columns belong to which asset)."""
    register()
    tr = cfg.training
    policies = cfg.policy_ids
    hidden = {p: tr.policy(p).hidden for p in policies}
    sampler = tr.sampler()
    if sampler == "array":  # PPO / A2C trained from array rollouts (training/array_algorithm.py)
        base: AlgorithmConfig = {"ppo": PPOConfig, "a2c": A2CConfig}[tr.algorithm](
            algo_class={"ppo": ArrayPPO, "a2c": ArrayA2C}[tr.algorithm]
        )
    else:
        base = {"ppo": PPOConfig, "a2c": A2CConfig, "sac": SACConfig}[tr.algorithm]()
    runner_cls = {"array": ArrayEnvRunner, "vector": VectorEnvRunner, "rllib": None}[sampler]
    # infos only on each agent's last step: RLlib does not learn from them (see EnvOptions.step_infos)
    critic = tr.critic_inputs()
    env_config = {
        "config": cfg.model_dump(mode="json"),
        "split": "train",
        "step_infos": False,
        "critic_horizons": critic,
    }
    config = (
        # Raw policy samples go to the env, which squashes them with tanh (no dead zone past +-1).
        base.environment(ENV_NAME, env_config=env_config, normalize_actions=False, clip_actions=False)
        .env_runners(
            num_env_runners=tr.num_env_runners,
            num_envs_per_env_runner=tr.num_envs_per_env_runner,
            num_cpus_per_env_runner=tr.num_cpus_per_env_runner,
            custom_resources_per_env_runner=dict(tr.custom_resources_per_env_runner),
            env_runner_cls=runner_cls,
        )
        .learners(num_learners=0, num_gpus_per_learner=learner_gpus(tr.num_gpus_per_learner))
        .multi_agent(
            policies=list(policies),
            policy_mapping_fn=PolicyMapping({a.id: a.profile for a in cfg.agents}),
            policies_to_train=list(policies),
        )
        # RLlib hands each env runner its config as an object-store reference; Ray cannot restart an actor
        # whose constructor arguments live in the object store reliably (ray-project/ray#53727), so runners
        # are not restarted in place: `Run` catches a runner's death and rebuilds the runner set from the
        # learner's weights (`runtime.replace_env_runners`).
        .fault_tolerance(restart_failed_env_runners=False)
        .debugging(seed=cfg.seed if seed is None else seed, log_level="ERROR")
        .reporting(metrics_num_episodes_for_smoothing=20)
    )
    own_lr = {p: lr for p in policies if (lr := tr.policy(p).lr) is not None}
    overrides = {p: base.overrides(**_lr_kwargs(tr.algorithm, lr)) for p, lr in own_lr.items()}
    if tr.algorithm == "sac":
        specs = {
            p: RLModuleSpec(model_config={"fcnet_hiddens": hidden[p], "fcnet_activation": "relu"}) for p in policies
        }
        config = config.training(
            gamma=tr.gamma,
            actor_lr=tr.lr,
            critic_lr=tr.lr,
            alpha_lr=tr.lr,
            train_batch_size_per_learner=min(tr.minibatch_size, 256),
            replay_buffer_config={"type": "MultiAgentEpisodeReplayBuffer", "capacity": 100_000},
            num_steps_sampled_before_learning_starts=sac_warmup_steps(cfg),
        )
    else:
        # Episode returns reach tens of reward units: PPO's default vf_clip_param (10) would clip the
        # value loss of almost every sample and starve the critic.
        kwargs: dict[str, Any] = {
            "gamma": tr.gamma,
            "lr": tr.lr,
            "train_batch_size_per_learner": tr.train_batch_size,
            "entropy_coeff": tr.entropy_coeff,
            "vf_clip_param": 1e4,
        }
        if tr.algorithm == "ppo":
            kwargs |= {"minibatch_size": tr.minibatch_size, "num_epochs": tr.num_epochs, "lambda_": tr.gae_lambda}
        if sampler == "array":  # the batch arrives with every column: no learner connector pipeline
            kwargs["learner_class"] = {"ppo": ArrayPPOLearner, "a2c": ArrayA2CLearner}[tr.algorithm]
        elif critic:
            kwargs["learner_connector"] = _critic_connector
        config = config.training(**kwargs)
        if tr.network == "asset_shared":
            layout = asset_layout(
                data.observation_names(cfg.env.desk_observation),
                data.market.tickers,
                cfg.env.window,
                data.features.asset_names,
            )
            specs = {
                p: RLModuleSpec(
                    module_class=AssetSharedModule,
                    model_config={
                        **layout,
                        "hidden": hidden[p],
                        "log_std_init": tr.log_std_of(p),
                        "critic_horizons": critic or [],
                        "vf_hidden": tr.policy(p).vf_hidden,
                        "value_network": tr.value_network,
                    },
                )
                for p in policies
            }
        else:
            specs = {
                p: RLModuleSpec(
                    model_config={
                        "fcnet_hiddens": hidden[p],
                        "fcnet_activation": "tanh",
                        "vf_share_layers": False,
                        "free_log_std": tr.log_std_of(p) is not None,
                    }
                )
                for p in policies
            }
    config = config.rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs=specs))
    if overrides:
        config = config.rl_module(algorithm_config_overrides_per_module=overrides)
    return config


def sac_warmup_steps(cfg: Config) -> int:
    """Env steps SAC samples before its first update (its replay buffer's warm-up)."""
    return min(cfg.training.train_batch_size, 2000)


def _critic_connector(*args: Any, **kwargs: Any) -> CriticInputs:
    return CriticInputs()


def init_log_std(algo: Any, values: dict[str, float | None]) -> None:
    """Start each policy's free log standard deviation of RLlib's MLP (`network: mlp`) at its value
    (`TrainingConfig.log_std_of`), on the learner and on the env runners; None leaves a policy as
    built. The asset-shared network takes its value from its model_config instead."""
    if all(v is None for v in values.values()):
        return

    def set_log_std(learner: Any) -> None:
        for pid in learner.module.keys():
            log_std = getattr(getattr(learner.module[pid], "pi", None), "log_std", None)
            value = values.get(pid)
            if value is not None and isinstance(log_std, torch.nn.Parameter):
                with torch.no_grad():
                    log_std.fill_(value)

    algo.learner_group.foreach_learner(set_log_std)
    algo.env_runner_group.sync_weights(from_worker_or_learner_group=algo.learner_group, inference_only=True)


def learner_gpus(setting: float | str) -> float:
    """ "auto": one GPU for the learner when this driver sees one (it runs the learner), else 0."""
    if setting != "auto":
        return float(setting)
    return 1.0 if torch.cuda.is_available() else 0.0


def _lr_kwargs(algorithm: str, lr: float) -> dict[str, float]:
    if algorithm == "sac":
        return {"actor_lr": lr, "critic_lr": lr}
    return {"lr": lr}
