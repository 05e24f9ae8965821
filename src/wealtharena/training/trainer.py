"""Train, resume and evaluate the agents; local Ray or an existing cluster.

Checkpoints live under `<checkpoint_dir>/<experiment>/<run>/`:
    iter_000005/            periodic (algorithm state + wealtharena.json: config, iteration, history)
    best/                   the best so far by the validation metric (deterministic actions)
    latest.json             {"path": "iter_000010", "iteration": 10}: written last, atomically
Each checkpoint is written to a hidden temporary folder and renamed into place, so a crash
mid-write never leaves a broken `latest` or `best`.
"""
from __future__ import annotations

import json
import logging
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from wealtharena.config import PROJECT_ROOT, Config, config_from_dict
from wealtharena.errors import CheckpointError

log = logging.getLogger(__name__)

META_FILE = "wealtharena.json"
# Set-iteration order inside RLlib's samplers depends on Python's hash seed: fix it in every worker
# so that a seed gives the same samples.
RUNTIME_ENV = {"env_vars": {"PYTHONHASHSEED": "0"}}
LATEST = "latest.json"


# ------------------------------------------------------------------------------------ Ray
@contextmanager
def ray_session(cfg: Config, address: str | None = None, local: bool = False) -> Iterator[None]:
    """A quiet Ray session: local (small object store, no dashboard) or `address` of a cluster.
    Leaves a session that is already running (e.g. a test's) alone."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    import torch

    torch.set_num_threads(1)
    if ray.is_initialized():
        yield
        return
    kwargs: dict[str, Any] = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
                                  runtime_env=RUNTIME_ENV)
    if address:
        ray.init(address=address, **{k: v for k, v in kwargs.items() if k != "include_dashboard"})
    else:
        cpus = cfg.training.num_cpus or os.cpu_count() or 2
        ray.init(num_cpus=cpus, object_store_memory=(256 if local else 512) * 2**20, **kwargs)
    try:
        yield
    finally:
        ray.shutdown()


# ---------------------------------------------------------------------------- checkpoints
def compat_key(cfg: Config) -> dict[str, Any]:
    """What a checkpoint's weights depend on: data universe, features, spaces, agents, networks
    (JSON-normalised, so it compares equal to what was read back from a checkpoint)."""
    return json.loads(json.dumps({
        "provider": cfg.data.provider, "tickers": cfg.data.tickers, "features": cfg.features.model_dump(mode="json"),
        "window": cfg.env.window, "desk": cfg.env.desk_observation,
        "agents": [(a.id, a.profile) for a in cfg.agents], "algorithm": cfg.training.algorithm,
        "network": cfg.training.network if cfg.training.algorithm != "sac" else "mlp",
        "networks": {p: [cfg.training.policies[p].hidden, cfg.training.policies[p].vf_hidden]
                     for p in cfg.policy_ids if p in cfg.training.policies},
        "critic_horizons": cfg.training.critic_inputs(),
    }))


def read_meta(path: Path) -> dict[str, Any]:
    meta = Path(path) / META_FILE
    if not meta.is_file():
        raise CheckpointError(f"{path} is not a WealthArena checkpoint (no {META_FILE}); "
                              "give a folder like checkpoints/<experiment>/<run>/best or iter_000010, or the run folder")
    try:
        return json.loads(meta.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{meta} is corrupt: {exc}") from None


def fetch_remote(uri: str) -> Path:
    """Download a checkpoint (or run) folder from a pyarrow URI into the local cache; returns the copy."""
    import hashlib

    import pyarrow.fs as pafs

    try:
        fs, root = pafs.FileSystem.from_uri(uri)
        info = fs.get_file_info(root)
    except Exception as exc:
        raise CheckpointError(f"cannot open checkpoint {uri}: {exc}") from None
    if info.type == pafs.FileType.NotFound:
        raise CheckpointError(f"checkpoint {uri} does not exist")
    local = Path.home() / ".cache" / "wealtharena" / "checkpoints" / hashlib.sha256(uri.encode()).hexdigest()[:16]
    if local.exists():
        shutil.rmtree(local)
    local.mkdir(parents=True)
    pafs.copy_files(root, str(local), source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
    log.info("downloaded %s to %s", uri, local)
    return local


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder, or a run folder (its `latest`), checked to exist. A URI (s3://, file://,
    ...) is downloaded first."""
    if isinstance(path, str) and "://" in path:
        path = fetch_remote(path)
    p = Path(path).resolve()
    if not p.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if (p / LATEST).is_file() and not (p / META_FILE).is_file():
        pointer = json.loads((p / LATEST).read_text())
        p = p / pointer["path"]
    read_meta(p)
    return p


def check_compatible(cfg: Config, meta: dict[str, Any], path: Path) -> None:
    saved = meta.get("compat", {})
    mine = compat_key(cfg)
    diff = sorted(k for k in set(saved) | set(mine) if saved.get(k) != mine.get(k))
    if diff:
        details = "; ".join(f"{k}: checkpoint {saved.get(k)!r} vs config {mine.get(k)!r}" for k in diff[:4])
        raise CheckpointError(f"checkpoint {path} was written by a different config ({details}). "
                              f"Use the config it was trained with (name '{meta.get('config', {}).get('name')}') "
                              "or train a new one")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _replace_dir(tmp: Path, final: Path) -> None:
    if final.exists():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


class CheckpointStore:
    """Local checkpoints (atomic renames), mirrored to `storage` (a folder or any URI pyarrow's
    filesystems understand: file://, s3://, gs://, hdfs://) so that any node can resume."""

    def __init__(self, run_dir: Path, storage: str | None = None, experiment: str = ""):
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self.mirror = f"{storage.rstrip('/')}/{experiment}/{run_dir.name}" if storage else None

    def save(self, algo: Any, iteration: int, meta: dict[str, Any]) -> Path:
        final = self.run_dir / f"iter_{iteration:06d}"
        tmp = self.run_dir / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
        algo.save_to_path(str(tmp))
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1, default=str))
        _replace_dir(tmp, final)
        pointer = json.dumps({"path": final.name, "iteration": iteration})
        _atomic_write(self.run_dir / LATEST, pointer)
        self._upload(final, pointer)
        return final

    def mark_best(self, checkpoint: Path) -> Path:
        tmp = self.run_dir / f".tmp-best-{uuid.uuid4().hex[:8]}"
        shutil.copytree(checkpoint, tmp)
        best = self.run_dir / "best"
        _replace_dir(tmp, best)
        self._upload(best, None)
        return best

    def _upload(self, folder: Path, pointer: str | None) -> None:
        """Copy a finished checkpoint to the mirror, then (last) its latest.json."""
        if self.mirror is None:
            return
        import pyarrow.fs as pafs

        try:
            fs, root = pafs.FileSystem.from_uri(self.mirror) if "://" in self.mirror else (pafs.LocalFileSystem(), self.mirror)
            fs.create_dir(f"{root}/{folder.name}", recursive=True)
            pafs.copy_files(str(folder), f"{root}/{folder.name}", source_filesystem=pafs.LocalFileSystem(),
                            destination_filesystem=fs)
            if pointer is not None:
                with fs.open_output_stream(f"{root}/{LATEST}") as out:
                    out.write(pointer.encode())
        except Exception as exc:  # the local copy is complete; a storage outage must not stop training
            log.warning("could not mirror %s to %s: %s", folder.name, self.mirror, exc)


# --------------------------------------------------------------------------------- training
@dataclass
class TrainResult:
    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    history: list[dict[str, Any]] = field(default_factory=list)
    validation: list[dict[str, Any]] = field(default_factory=list)
    runners: list[dict[str, Any]] = field(default_factory=list)


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _policy_returns(result: dict[str, Any]) -> dict[str, float]:
    returns = result.get("env_runners", {}).get("module_episode_returns_mean", {}) or {}
    return {k: float(v) for k, v in returns.items()}


def _reward_terms(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    terms = result.get("env_runners", {}).get("reward_terms", {}) or {}
    return {p: {t: float(v) for t, v in d.items()} for p, d in terms.items()}


def _learner_stats(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    out = {}
    for pid, stats in (result.get("learners", {}) or {}).items():
        if pid.startswith("__") or not isinstance(stats, dict):
            continue
        out[pid] = {k: float(v) for k, v in stats.items()
                    if k in ("policy_loss", "vf_loss", "entropy", "mean_kl_loss", "qf_loss", "alpha_loss", "total_loss")
                    and np.isscalar(v)}
    return out


def validate(algo: Any, cfg: Config, split: str = "validation") -> dict[str, Any]:
    """Deterministic runs of every agent on `split`, two ways:

    - episodes: training-length episodes (`env.episode_length` days, from cash, fresh risk state)
      starting every `training.eval_stride` days; `policy_episode_reward` is each policy's mean
      episode reward over them, with its standard error: the quantity training maximises, measured
      on unseen days and averaged over many start dates;
    - the whole split as one backtest: per-agent Sharpe, return, drawdown and reward
      (`policy_full_period_reward`); the mean Sharpe picks the best checkpoint.
    """
    from wealtharena.evaluation.backtest import run_agents, run_episodes
    from wealtharena.portfolio import metrics
    from wealtharena.training.inference import PolicyActor

    actor = PolicyActor.from_algorithm(algo, cfg)
    tracks = run_agents(cfg, actor, split)
    per_agent = {}
    for tr in tracks:
        r = tr.returns
        per_agent[tr.name] = {"sharpe": metrics.sharpe(r), "total_return": metrics.total_return(r),
                              "max_drawdown": metrics.max_drawdown(r), "episode_reward": float(tr.rewards.sum()),
                              "profile": tr.profile}
    full: dict[str, list[float]] = {}
    for stats in per_agent.values():
        full.setdefault(stats["profile"], []).append(stats["episode_reward"])
    episodes = run_episodes(cfg, actor.act_rows, split, stride=cfg.training.eval_stride)
    by_policy = episodes.by_policy()
    sharpes = [s["sharpe"] for s in per_agent.values() if np.isfinite(s["sharpe"])]
    return {"agents": per_agent,
            "policy_episode_reward": {p: m for p, (m, _) in by_policy.items()},
            "policy_episode_reward_se": {p: se for p, (_, se) in by_policy.items()},
            # per window, so that two evaluations on the same windows compare pairwise
            "policy_window_rewards": {p: [round(float(x), 4) for x in v] for p, v in episodes.per_window().items()},
            "episodes": len(episodes.starts), "episode_length": episodes.length, "stride": cfg.training.eval_stride,
            "policy_full_period_reward": {p: float(np.mean(v)) for p, v in full.items()},
            "mean_sharpe": float(np.mean(sharpes)) if sharpes else float("nan"),
            "mean_episode_reward": float(episodes.rewards.mean())}


def train(cfg: Config, experiment: str, iterations: int | None = None, checkpoint: str | Path | None = None,
          run_name: str | None = None, progress: bool = True, tracker: Any = None) -> TrainResult:
    """Train (or resume from `checkpoint`) for `iterations` more iterations. Needs a Ray session."""
    from ray.rllib.algorithms.algorithm import Algorithm
    from tqdm import tqdm

    from wealtharena.training.algorithms import build_algorithm_config, init_log_std, register
    from wealtharena.training.callbacks import RewardTermsCallback
    from wealtharena.training.data_service import publish_market_data

    register()
    if os.environ.get("PYTHONHASHSEED", "random") == "random":
        log.warning("PYTHONHASHSEED is not set: iterations after the first may differ between processes "
                    "(RLlib's learner iterates over a set of policy ids); start Python with PYTHONHASHSEED=0 "
                    "for bit-identical runs (train.py does this itself)")
    iterations = iterations or cfg.training.iterations
    history: list[dict[str, Any]] = []
    validation: list[dict[str, Any]] = []
    best_metric = -np.inf
    if checkpoint is not None:
        path = resolve_checkpoint(checkpoint)
        meta = read_meta(path)
        check_compatible(cfg, meta, path)
        run_dir = path.parent
        if isinstance(checkpoint, str) and "://" in checkpoint:   # resumed from shared storage
            run_dir = _local_dir(cfg, experiment, meta.get("run_name") or path.parent.name)
        algo = Algorithm.from_checkpoint(str(path))
        history, validation = meta.get("history", []), meta.get("validation", [])
        best_metric = meta.get("best_metric", -np.inf) or -np.inf
        _restore_rng(meta.get("rng"))
        _advance_env_seeds(algo, algo.iteration)
        log.info("resumed %s at iteration %d", path, algo.iteration)
    else:
        seed_everything(cfg.seed)
        run_name = run_name or datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S") + f"-s{cfg.seed}"
        run_dir = _local_dir(cfg, experiment, run_name)
        algo_config = build_algorithm_config(cfg).callbacks(RewardTermsCallback)
        holder = publish_market_data(cfg)  # noqa: F841  (keeps the shared panel alive while training)
        algo = algo_config.build_algo()
        if cfg.training.algorithm != "sac":
            init_log_std(algo, {p: cfg.training.log_std_of(p) for p in cfg.policy_ids})
    nodes = runner_placement(algo)
    store = CheckpointStore(run_dir, cfg.training.storage_path, experiment)
    start = algo.iteration
    end = start + iterations
    base_meta = {"config": cfg.model_dump(mode="json"), "fingerprint": cfg.fingerprint(), "compat": compat_key(cfg),
                 "experiment": experiment, "run_name": run_dir.name, "git_commit": git_commit(),
                 "command": " ".join(sys.argv), "python_hash_seed": os.environ.get("PYTHONHASHSEED"),
                 "data": data_fingerprint(cfg), "runners": nodes}
    if tracker is not None:
        tracker.start(cfg, run_dir, base_meta, base_meta["data"])
        ml = getattr(tracker, "mlflow", None)
        if ml is not None and ml.run_id:
            base_meta["mlflow"] = {"run_id": ml.run_id, "tracking_uri": ml.uri, "experiment": ml.experiment}
    last_ckpt = run_dir / (json.loads((run_dir / LATEST).read_text())["path"] if (run_dir / LATEST).exists() else "")
    best_path = run_dir / "best" if (run_dir / "best").exists() else None
    t_start = time.perf_counter()
    steps_before = None
    bar = tqdm(total=end, initial=start, desc=f"{cfg.training.algorithm} {experiment}", unit="iter",
               disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        if start == 0:
            # the untrained policies on the validation split: the baseline learning is judged against
            val = validate(algo, cfg)
            val["iteration"] = 0
            validation.append(val)
            log.info("iter 0 validation (untrained, deterministic, costs included): mean Sharpe %.2f, "
                     "episode reward per policy %s", val["mean_sharpe"],
                     {p: round(v, 1) for p, v in val["policy_episode_reward"].items()})
            if tracker is not None:
                tracker.log_validation(val)
        for _ in range(iterations):
            t0 = time.perf_counter()
            result = algo.train()
            wall = time.perf_counter() - t0
            it = algo.iteration
            steps = result.get("env_runners", {}).get("num_env_steps_sampled_lifetime", 0)
            sps = (steps - steps_before) / wall if steps_before is not None else steps / wall
            steps_before = steps
            row = {"iteration": it, "wall_s": wall, "env_steps": steps, "env_steps_per_s": sps,
                   "policy_return": _policy_returns(result), "reward_terms": _reward_terms(result),
                   "learner": _learner_stats(result)}
            history.append(row)
            elapsed = time.perf_counter() - t_start
            remaining = elapsed / (it - start) * (end - it)
            bar.set_postfix_str(" ".join(f"{p[:4]}={v:+.1f}" for p, v in row["policy_return"].items())
                                + f" sps={sps:.0f} eta={remaining:.0f}s")
            bar.update(1)
            log.info("iter %d: returns %s | %.0f env steps/s | %s", it,
                     {p: round(v, 2) for p, v in row["policy_return"].items()}, sps,
                     "; ".join(f"{p}: " + ", ".join(f"{t}={v:+.2f}" for t, v in terms.items())
                               for p, terms in row["reward_terms"].items()))
            if tracker is not None:
                tracker.log_iteration(row)
            do_eval = it % cfg.training.eval_every == 0 or it == end
            do_ckpt = it % cfg.training.checkpoint_every == 0 or it == end or do_eval
            val = None
            if do_eval:
                val = validate(algo, cfg)
                val["iteration"] = it
                validation.append(val)
                log.info("iter %d validation (%s split, deterministic, costs included): mean Sharpe %.2f, "
                         "episode reward per policy %s", it, "validation", val["mean_sharpe"],
                         {p: round(v, 1) for p, v in val["policy_episode_reward"].items()})
                if tracker is not None:
                    tracker.log_validation(val)
            if do_ckpt:
                meta = {**base_meta, "iteration": it, "history": history, "validation": validation,
                        "best_metric": best_metric, "rng": _rng_state(), "saved": time.time()}
                last_ckpt = store.save(algo, it, meta)
                if val is not None and np.isfinite(val["mean_sharpe"]) and val["mean_sharpe"] > best_metric:
                    best_metric = val["mean_sharpe"]
                    meta["best_metric"] = best_metric
                    (last_ckpt / META_FILE).write_text(json.dumps(meta, indent=1, default=str))
                    best_path = store.mark_best(last_ckpt)
                    log.info("new best checkpoint (validation mean Sharpe %.3f): %s", best_metric, best_path)
    finally:
        bar.close()
        algo.stop()
    return TrainResult(run_dir=run_dir, last_checkpoint=last_ckpt, best_checkpoint=best_path,
                       history=history, validation=validation, runners=nodes)


def _local_dir(cfg: Config, experiment: str, run_name: str) -> Path:
    run_dir = Path(cfg.training.checkpoint_dir) / experiment / run_name
    return run_dir if run_dir.is_absolute() else Path.cwd() / run_dir


def data_fingerprint(cfg: Config) -> dict[str, Any]:
    """Provider, tickers, dates and checksum of the data a run trains on (its data version)."""
    from wealtharena.envs.core import load_env_data

    market = load_env_data(cfg).market
    return {"provider": market.provider, "source": market.source, "tickers": ",".join(market.tickers),
            "start": str(market.dates[0]), "end": str(market.dates[-1]), "fields": ",".join(market.fields),
            "sha256": market.fingerprint()}


def _where_am_i(runner: Any) -> dict[str, Any]:
    import socket

    import ray

    env = runner.env.unwrapped if runner.env is not None else None
    core = getattr(env, "core", None)                        # MultiAgentTradingVectorEnv (VectorEnvRunner)
    if core is None and getattr(env, "envs", None):          # RLlib's runner: separate env objects
        core = getattr(env.envs[0].unwrapped, "core", None)
    origin = core.data.origin if core is not None else None
    return {"runner": runner.worker_index, "node_id": ray.get_runtime_context().get_node_id(),
            "host": socket.gethostname(), "ip": ray.util.get_node_ip_address(), "data": origin}


def runner_placement(algo: Any) -> list[dict[str, Any]]:
    """Which node runs each env runner, and where its market data came from; logged for the user."""
    try:
        placed = algo.env_runner_group.foreach_env_runner(_where_am_i, local_env_runner=False)
    except Exception as exc:  # reporting must never stop training
        log.warning("could not read env runner placement: %s", exc)
        return []
    placed = sorted((p for p in placed if p), key=lambda p: p["runner"])
    for p in placed:
        log.info("env runner %d on node %s (%s, %s), market data: %s", p["runner"], p["node_id"][:12], p["host"],
                 p["ip"], p["data"])
    return placed


def _rng_state() -> dict[str, Any]:
    import torch

    return {"python": repr(random.getstate()), "numpy": np.random.get_state()[1][:5].tolist(),
            "torch_seed": int(torch.initial_seed())}


def _restore_rng(state: dict[str, Any] | None) -> None:
    """Driver RNGs continue from a fresh stream derived from the saved state, never replaying it."""
    if not state:
        return
    import torch

    seed = int(state.get("numpy", [0])[0]) ^ int(state.get("torch_seed", 0) & 0xFFFFFFFF)
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    torch.manual_seed(seed)


def _reseed_runner(runner: Any, iteration: int) -> None:
    if getattr(runner, "_seed", None) is not None:
        runner._seed = int(runner._seed) + 1_000_003 * iteration
        runner._needs_initial_reset = True


def _advance_env_seeds(algo: Any, iteration: int) -> None:
    """A restored run's env runners start from the config seed again; move them to a stream that is
    a function of (seed, iteration) so a resumed run does not replay the episodes it already saw."""
    algo.env_runner_group.foreach_env_runner(lambda er: _reseed_runner(er, iteration), local_env_runner=True)


def config_of_checkpoint(path: str | Path) -> Config:
    return config_from_dict(read_meta(resolve_checkpoint(path))["config"], source=str(path))
