"""Advantage actor-critic (A2C) on RLlib's new API stack.

RLlib 2.60 no longer ships A2C. This is the textbook synchronous A2C loss on RLlib's Learner API,
reusing PPO's sampling and GAE connectors only for what they share with A2C:

    loss = mean( -log pi(a|s) * A  +  vf_coeff * (V(s) - R)^2  -  entropy_coeff * H(pi(.|s)) )

with A the advantage (lambda = 1.0: discounted return minus the value baseline, as in Mnih et
al. 2016), one gradient step over each sampled batch (`num_epochs=1`, no minibatches), no
ratio clipping and no KL term. PPO's connector standardises advantages per batch (a common
A2C variant). The classes live in an importable module so that `Algorithm.from_checkpoint`
can rebuild them.
"""

from __future__ import annotations

from typing import Any

from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.learner import ENTROPY_KEY, POLICY_LOSS_KEY, VF_LOSS_KEY
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.framework import try_import_torch

torch, _ = try_import_torch()


class A2CTorchLearner(PPOTorchLearner):
    """-logp * advantage + value loss - entropy bonus; masked like PPO (its connector adds a bootstrap step)."""

    def compute_loss_for_module(self, *, module_id: str, config: Any, batch: dict, fwd_out: dict) -> Any:
        module = self.module[module_id].unwrapped()
        if Columns.LOSS_MASK in batch:
            mask = batch[Columns.LOSS_MASK]
            num_valid = torch.sum(mask)

            def mean(x: Any) -> Any:
                return torch.sum(x[mask]) / num_valid
        else:
            mean = torch.mean
        dist = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
        logp = dist.logp(batch[Columns.ACTIONS])
        entropy = dist.entropy()
        advantages = batch[Postprocessing.ADVANTAGES]
        values = module.compute_values(batch, embeddings=fwd_out.get(Columns.EMBEDDINGS))
        vf_loss = torch.pow(values - batch[Postprocessing.VALUE_TARGETS], 2.0)
        entropy_coeff = self.entropy_coeff_schedulers_per_module[module_id].get_current_value()
        total = mean(-logp * advantages + config.vf_loss_coeff * vf_loss - entropy_coeff * entropy)
        self.metrics.log_dict(
            {POLICY_LOSS_KEY: mean(-logp * advantages), VF_LOSS_KEY: mean(vf_loss), ENTROPY_KEY: mean(entropy)},
            key=module_id,
            window=1,
        )
        return total


class A2CConfig(PPOConfig):
    """PPOConfig with A2C's defaults: one full-batch gradient step, lambda 1, no KL, no clipping."""

    def __init__(self, algo_class: type | None = None):
        super().__init__(algo_class=algo_class or A2C)
        self.num_epochs = 1
        self.minibatch_size = None
        self.use_kl_loss = False
        self.kl_coeff = 0.0
        self.lambda_ = 1.0
        self.lr = 7e-4
        self.grad_clip = 0.5
        self.vf_loss_coeff = 0.5

    def get_default_learner_class(self) -> type:
        return A2CTorchLearner

    def validate(self) -> None:
        super().validate()
        if self.num_epochs != 1:
            raise ValueError("A2C takes exactly one gradient step per batch: num_epochs must be 1")


class A2C(PPO):
    @classmethod
    def get_default_config(cls) -> A2CConfig:
        return A2CConfig()
