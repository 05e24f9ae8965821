"""Deterministic inference with trained RLModules, inside an Algorithm or from a checkpoint
without Ray (`RLModule.from_checkpoint`). No observation filter is used in training (features
are already z-scored on the train split), so what the env returns is what the module sees."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule

from wealtharena.config import Config
from wealtharena.errors import CheckpointError

MODULES_DIR = Path("learner_group") / "learner" / "rl_module"


class TrainedPolicy:
    """A `Policy` (envs.policy): obs [K, D] and each row's profile -> each profile's RLModule's mean
    action (one forward pass per profile; the env squashes the scores)."""

    def __init__(self, modules: dict[str, Any]):
        self.modules = modules

    @classmethod
    def from_algorithm(cls, algo: Any, cfg: Config) -> TrainedPolicy:
        return cls({p: algo.get_module(p) for p in cfg.policy_ids})

    @classmethod
    def from_checkpoint(cls, path: str | Path, cfg: Config) -> TrainedPolicy:
        root = Path(path).resolve() / MODULES_DIR
        modules = {}
        for p in cfg.policy_ids:
            if not (root / p).is_dir():
                raise CheckpointError(
                    f"checkpoint {path} has no policy '{p}' under {MODULES_DIR}: was it written by another config?"
                )
            modules[p] = RLModule.from_checkpoint(root / p)
        return cls(modules)

    def fingerprint(self) -> str:
        """sha256 over every module's weights (profile by profile, tensors by name): what its actions
        depend on, wherever it was loaded from."""
        h = hashlib.sha256()
        for profile in sorted(self.modules):
            h.update(profile.encode())
            for name, tensor in sorted(self.modules[profile].state_dict().items()):
                h.update(name.encode())
                h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    @torch.no_grad()
    def __call__(self, obs: np.ndarray, profiles: Sequence[str]) -> np.ndarray:
        out: np.ndarray | None = None
        prof = np.asarray(profiles)
        for policy in dict.fromkeys(profiles):
            rows = np.flatnonzero(prof == policy)
            module = self.modules[policy]
            # RLlib's forward_inference switches the module to eval and back on every call, a walk over
            # every submodule that took about half of a small module's inference time; switch once, then
            # call the inference pass it wraps (the same computation: a learner's forward_train switches
            # back to train mode itself)
            if module.training:
                module.eval()
            fwd = module._forward_inference({Columns.OBS: torch.as_tensor(obs[rows])})
            dist = module.get_inference_action_dist_cls().from_logits(fwd[Columns.ACTION_DIST_INPUTS])
            actions = dist.to_deterministic().sample().numpy()
            if out is None:
                out = np.empty((len(obs), actions.shape[1]), dtype=np.float32)
            out[rows] = actions
        assert out is not None, "no rows to act on"
        return out
