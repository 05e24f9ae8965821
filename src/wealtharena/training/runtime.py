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
from wealtharena.errors import ClusterError

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
        connect(address, kwargs)
    else:  # always a new local session, whatever else runs on the machine (a head, a stale address file)
        cpus = cfg.training.num_cpus or os.cpu_count() or 2
        ray.init(
            address="local",
            num_cpus=cpus,
            object_store_memory=object_store_bytes(cfg, obs_dim),
            include_dashboard=False,
            **kwargs,
        )
    try:
        yield
    finally:
        ray.shutdown()


CONNECT_TIMEOUT_S = 10.0
HOW_TO_START = (
    "start one with `ray start --head --port=6390 --num-cpus=N` (and `ray start --address=<head-ip>:6390` on "
    "each other node), or drop --address to train in a local session"
)


def connect(address: str, kwargs: dict[str, Any]) -> None:
    """Join the cluster at `address` (auto, HOST:PORT or ray://HOST:PORT) or say in one line why not: no
    cluster running (auto), or nothing answering at HOST:PORT within `CONNECT_TIMEOUT_S`."""
    if address != "auto":
        host, _, port = address.removeprefix("ray://").rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S).close()
        except ValueError:
            raise ClusterError(f"--address {address}: expected auto, HOST:PORT or ray://HOST:PORT") from None
        except OSError as exc:
            raise ClusterError(
                f"--address {address}: no Ray cluster answers there ({exc.strerror or exc}); {HOW_TO_START}"
            ) from None
    try:
        ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        raise ClusterError(f"--address {address}: {str(exc).splitlines()[0]}; {HOW_TO_START}") from None


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
        "pid": os.getpid(),
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
            "env runner %d (pid %d) on node %s (%s, %s), market data: %s",
            p["runner"],
            p["pid"],
            p["node_id"][:12],
            p["host"],
            p["ip"],
            p["data"],
        )
    return placed


def _reseed_runner(runner: Any, iteration: int) -> None:
    if getattr(runner, "_seed", None) is not None:
        runner._seed = int(runner.config.seed or 0) + (runner.worker_index or 0) + 1_000_003 * iteration
        runner._needs_initial_reset = True


def advance_env_seeds(algo: Any, iteration: int) -> None:
    """Move every env runner to a seed stream that is a function of (seed, worker, iteration): a restored
    run (or a rebuilt runner set) does not replay the episodes its runners already sampled."""
    algo.env_runner_group.foreach_env_runner(lambda er: _reseed_runner(er, iteration), local_env_runner=True)


def replace_env_runners(algo: Any) -> None:
    """A fresh set of remote env runners in place of the current one (some of which died), with the
    learner's current weights and a new seed stream. RLlib's own restart is off: Ray cannot restart an
    actor whose constructor argument (RLlib's config) lives in the object store (ray-project/ray#53727),
    while new actors from the same, still referenced, argument start fine."""
    group = algo.env_runner_group
    manager = group._worker_manager
    n = manager.num_actors()
    for actor in list(manager.actors().values()):
        try:
            ray.kill(actor, no_restart=True)
        except Exception:  # already gone
            pass
    group.reset([])
    group.add_workers(n, validate=True)
    group.sync_weights(from_worker_or_learner_group=algo.learner_group, inference_only=True, timeout_seconds=60)
    advance_env_seeds(algo, int(algo.iteration) + 1)
