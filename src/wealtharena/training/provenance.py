"""What a checkpoint records about how it was made: the code's commit and the driver's RNG state."""

from __future__ import annotations

import random
import subprocess
from typing import Any

import numpy as np
import torch

from wealtharena.config import PROJECT_ROOT


def git_commit() -> str | None:
    """The project's current commit, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def rng_state() -> dict[str, Any]:
    """A short fingerprint of the driver's RNGs, enough to derive a fresh stream on resume."""
    state: Any = np.random.get_state(legacy=True)  # ("MT19937", keys, pos, has_gauss, cached_gaussian)
    return {
        "python": repr(random.getstate()),
        "numpy": np.asarray(state[1])[:5].tolist(),
        "torch_seed": int(torch.initial_seed()),
    }


def restore_rng(state: dict[str, Any] | None) -> None:
    """Driver RNGs continue from a fresh stream derived from the saved state, never replaying it."""
    if not state:
        return
    seed = int(state.get("numpy", [0])[0]) ^ int(state.get("torch_seed", 0) & 0xFFFFFFFF)
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    torch.manual_seed(seed)
