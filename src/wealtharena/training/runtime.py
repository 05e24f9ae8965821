"""The Ray session a run trains in, seeding, and where the env runners ended up."""

from __future__ import annotations

import logging
import os
import random
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import ray
import torch

from wealtharena.config import Config

log = logging.getLogger(__name__)

# Set-iteration order inside RLlib's samplers depends on Python's hash seed: fix it in every worker
# so that a seed gives the same samples.
RUNTIME_ENV = {"env_vars": {"PYTHONHASHSEED": "0"}}


MIN_OBJECT_STORE = 256 * 2**20


def object_store_bytes(cfg: Config, obs_dim: int | None) -> int:
    """Object store for a local session: room for two iterations of the train batch in flight from the env
    runners (observations dominate: train_batch_size x agents x obs_dim float32), at least 256 MB."""
    if not obs_dim:
        return MIN_OBJECT_STORE
    per_iteration = cfg.training.train_batch_size * len(cfg.agents) * (4 * obs_dim + 256)
    return max(MIN_OBJECT_STORE, 2 * per_iteration)


@contextmanager
def ray_session(cfg: Config, address: str | None = None, obs_dim: int | None = None) -> Iterator[None]:
    """A quiet Ray session: local (an object store sized for the run's batches, `object_store_bytes`; no
    dashboard) or `address` of a cluster. Leaves a session that is already running (e.g. a test's) alone."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    torch.set_num_threads(1)
    if ray.is_initialized():
        yield
        return
    kwargs: dict[str, Any] = dict(logging_level=logging.ERROR, log_to_driver=False, runtime_env=RUNTIME_ENV)
    if address:
        ray.init(address=address, **kwargs)
    else:
        cpus = cfg.training.num_cpus or os.cpu_count() or 2
        ray.init(num_cpus=cpus, object_store_memory=object_store_bytes(cfg, obs_dim), include_dashboard=False, **kwargs)
    try:
        yield
    finally:
        ray.shutdown()


def seed_everything(seed: int) -> None:
    """Python's, numpy's global and torch's RNGs (RLlib seeds its own from the config)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def hash_seed_fixed() -> bool:
    """Whether this process's string hashes are reproducible (PYTHONHASHSEED set to a number)."""
    return os.environ.get("PYTHONHASHSEED", "random") != "random"


def _where_am_i(runner: Any) -> dict[str, Any]:
    env = runner.env.unwrapped if runner.env is not None else None
    core = getattr(env, "core", None)  # MultiAgentTradingVectorEnv (VectorEnvRunner)
    envs = getattr(env, "envs", None)
    if core is None and envs:  # RLlib's runner: separate env objects
        core = getattr(envs[0].unwrapped, "core", None)
    origin = core.data.origin if core is not None else None
    return {
        "runner": runner.worker_index,
        "node_id": ray.get_runtime_context().get_node_id(),
        "host": socket.gethostname(),
        "ip": ray.util.get_node_ip_address(),
        "data": origin,
    }


def runner_placement(algo: Any) -> list[dict[str, Any]]:
    """Which node runs each env runner, and where its market data came from; logged for the user."""
    try:
        placed = algo.env_runner_group.foreach_env_runner(_where_am_i, local_env_runner=False)
    except Exception as exc:  # reporting must never stop training
        log.warning("could not read env runner placement: %s", exc)
        return []
    placed = sorted((p for p in placed if p), key=lambda p: p["runner"])
    for p in placed:
        log.info(
            "env runner %d on node %s (%s, %s), market data: %s",
            p["runner"],
            p["node_id"][:12],
            p["host"],
            p["ip"],
            p["data"],
        )
    return placed
