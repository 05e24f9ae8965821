"""Deterministic inference with trained RLModules, inside an Algorithm or from a checkpoint
without Ray (`RLModule.from_checkpoint`). No observation filter is used in training (features
are already z-scored on the train split), so what the env returns is what the module sees."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns

from wealtharena.config import Config
from wealtharena.errors import CheckpointError

MODULES_DIR = Path("learner_group") / "learner" / "rl_module"


class PolicyActor:
    """{agent: obs} -> {agent: action}: each agent's profile policy, its mean action (the env squashes it)."""

    def __init__(self, modules: dict[str, Any], profile_of: dict[str, str]):
        self.modules = modules
        self.profile_of = profile_of

    @classmethod
    def from_algorithm(cls, algo: Any, cfg: Config) -> PolicyActor:
        return cls({p: algo.get_module(p) for p in cfg.policy_ids}, {a.id: a.profile for a in cfg.agents})

    @classmethod
    def from_checkpoint(cls, path: str | Path, cfg: Config) -> PolicyActor:
        from ray.rllib.core.rl_module.rl_module import RLModule

        root = Path(path).resolve() / MODULES_DIR
        modules = {}
        for p in cfg.policy_ids:
            if not (root / p).is_dir():
                raise CheckpointError(f"checkpoint {path} has no policy '{p}' under {MODULES_DIR}: "
                                      "was it written by another config?")
            modules[p] = RLModule.from_checkpoint(root / p)
        return cls(modules, {a.id: a.profile for a in cfg.agents})

    @torch.no_grad()
    def act_rows(self, obs: np.ndarray, profiles: list[str]) -> np.ndarray:
        """obs [K, D] of rows whose policies are `profiles` [K] -> mean actions [K, N+1] (one
        forward pass per policy; the vector envs' and `run_episodes`' form)."""
        out: np.ndarray | None = None
        prof = np.asarray(profiles)
        for policy in dict.fromkeys(profiles):
            rows = np.flatnonzero(prof == policy)
            module = self.modules[policy]
            fwd = module.forward_inference({Columns.OBS: torch.as_tensor(obs[rows])})
            dist = module.get_inference_action_dist_cls().from_logits(fwd[Columns.ACTION_DIST_INPUTS])
            actions = dist.to_deterministic().sample().numpy()
            if out is None:
                out = np.empty((len(obs), actions.shape[1]), dtype=np.float32)
            out[rows] = actions
        assert out is not None
        return out

    @torch.no_grad()
    def __call__(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        by_policy: dict[str, list[str]] = {}
        for agent in obs:
            by_policy.setdefault(self.profile_of[agent], []).append(agent)
        out: dict[str, np.ndarray] = {}
        for policy, agents in by_policy.items():
            module = self.modules[policy]
            batch = torch.as_tensor(np.stack([obs[a] for a in agents]))
            fwd = module.forward_inference({Columns.OBS: batch})
            dist = module.get_inference_action_dist_cls().from_logits(fwd[Columns.ACTION_DIST_INPUTS])
            actions = dist.to_deterministic().sample().numpy()
            for a, act in zip(agents, actions):
                out[a] = act.astype(np.float32)
        return out
