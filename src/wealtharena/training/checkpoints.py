"""The checkpoint format: folders, the record of each checkpoint, compatibility, mirroring.

Runs live under `<checkpoint_dir>/<experiment>/<run>/` (`<run>` is `<UTC time>-s<seed>`):
    iter_000005/            periodic (algorithm state + wealtharena.json: a `CheckpointMeta`)
    best/                   the best so far by the validation metric (deterministic actions)
    latest.json             {"path": "iter_000010", "iteration": 10}: written last, atomically
Each checkpoint is written to a hidden temporary folder and renamed into place, so a crash
mid-write never leaves a broken `latest` or `best`. `CheckpointMeta` is read and written here
only (`read_meta`, `CheckpointStore.save`); records written before it had a version read as version 1.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.fs as pafs

from wealtharena.config import Config, config_from_dict
from wealtharena.errors import CheckpointError

log = logging.getLogger(__name__)

META_FILE = "wealtharena.json"
LATEST = "latest.json"


def compat_key(cfg: Config) -> dict[str, Any]:
    """What a checkpoint's weights depend on: data universe, features, spaces, agents, networks
    (JSON-normalised, so it compares equal to what was read back from a checkpoint)."""
    tr = cfg.training
    return json.loads(
        json.dumps(
            {
                "provider": cfg.data.provider,
                "tickers": cfg.data.tickers,
                "features": cfg.features.model_dump(mode="json"),
                "window": cfg.env.window,
                "desk": cfg.env.desk_observation,
                "agents": [(a.id, a.profile) for a in cfg.agents],
                "algorithm": tr.algorithm,
                "network": tr.network if tr.algorithm != "sac" else "mlp",
                "networks": {
                    p: [tr.policy(p).hidden, tr.policy(p).vf_hidden]
                    + (["asset_shared_value"] if tr.value_network == "asset_shared" else [])
                    for p in cfg.policy_ids
                },
                "critic_horizons": tr.critic_inputs(),
            }
        )
    )


META_VERSION = 2


@dataclass
class CheckpointMeta:
    """What a checkpoint records beside the algorithm's state (`wealtharena.json`).

    `config` is the resolved config (JSON), `compat` what its weights depend on (`compat_key`), `data` the
    market data's fingerprint, `history` the training iterations (`IterationRecord` dicts), `validation` the
    validations so far (the application's records, as dicts), `best_metric` the best validation mean Sharpe,
    `rng` a fingerprint of the driver's generators (`provenance.rng_state`), `mlflow` where it is tracked."""

    config: dict[str, Any]
    fingerprint: str
    compat: dict[str, Any]
    experiment: str = ""
    run_name: str = ""
    iteration: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    validation: list[dict[str, Any]] = field(default_factory=list)
    best_metric: float | None = None
    git_commit: str | None = None
    command: str = ""
    python_hash_seed: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    runners: list[dict[str, Any]] = field(default_factory=list)
    rng: dict[str, Any] | None = None
    mlflow: dict[str, Any] | None = None
    saved: float = 0.0
    version: int = META_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, default=str)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str) -> CheckpointMeta:
        """A record of any version (version 1 had no `version` key and the same fields, fewer of them)."""
        version = int(raw.get("version", 1))
        if version > META_VERSION:
            raise CheckpointError(
                f"{source} was written by a newer WealthArena (checkpoint record version {version}, this one "
                f"reads up to {META_VERSION}): upgrade to read it"
            )
        missing = [k for k in ("config", "fingerprint", "compat") if k not in raw]
        if missing:
            raise CheckpointError(f"{source} is not a WealthArena checkpoint record (no {', '.join(missing)})")
        known = {f.name for f in fields(cls)}
        meta = cls(**{k: v for k, v in raw.items() if k in known})
        if meta.best_metric is not None and not np.isfinite(meta.best_metric):
            meta.best_metric = None
        meta.version = META_VERSION
        return meta


def read_meta(path: Path) -> CheckpointMeta:
    """The `CheckpointMeta` of a checkpoint folder."""
    meta = Path(path) / META_FILE
    if not meta.is_file():
        raise CheckpointError(
            f"{path} is not a WealthArena checkpoint (no {META_FILE}); give a folder like "
            "checkpoints/<experiment>/<run>/best or iter_000010, or the run folder"
        )
    try:
        raw = json.loads(meta.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{meta} is corrupt: {exc}") from None
    return CheckpointMeta.from_dict(raw, str(meta))


def fetch_remote(uri: str) -> Path:
    """Download a checkpoint (or run) folder from a pyarrow URI into the local cache; returns the copy."""
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


def check_compatible(cfg: Config, meta: CheckpointMeta, path: Path) -> None:
    saved = meta.compat
    mine = compat_key(cfg)
    diff = sorted(k for k in set(saved) | set(mine) if saved.get(k) != mine.get(k))
    if diff:
        details = "; ".join(f"{k}: checkpoint {saved.get(k)!r} vs config {mine.get(k)!r}" for k in diff[:4])
        raise CheckpointError(
            f"checkpoint {path} was written by a different config ({details}). "
            f"Use the config it was trained with (name '{meta.config.get('name')}') "
            "or train a new one"
        )


def config_of_checkpoint(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """The config a checkpoint was trained with (its record's resolved config), with dotted `overrides`."""
    return config_from_dict(read_meta(resolve_checkpoint(path)).config, source=str(path), overrides=overrides)


def run_checkpoint(run: Path, iteration: int | None) -> Path:
    """The run's checkpoint of `iteration`, or its latest (None)."""
    if iteration is None:
        return resolve_checkpoint(run)
    path = run / f"iter_{iteration:06d}"
    if not path.is_dir():
        have = sorted(p.name for p in run.glob("iter_*"))
        raise CheckpointError(f"{run} has no checkpoint for iteration {iteration} (it has {', '.join(have)})")
    return path


def seed_runs(experiment_dir: Path) -> dict[int, Path]:
    """seed -> its newest run folder in `experiment_dir` (folders end in -s<seed>)."""
    runs: dict[int, Path] = {}
    for run in sorted(Path(experiment_dir).glob("*-s*")):
        tail = run.name.rsplit("-s", 1)[-1]
        if run.is_dir() and tail.isdigit():
            runs[int(tail)] = run  # sorted by time: the newest wins
    if not runs:
        raise CheckpointError(
            f"{experiment_dir} holds no runs (folders named <time>-s<seed>, as train.py "
            "writes them under checkpoints/<experiment>/)"
        )
    return dict(sorted(runs.items()))


def best_or_latest(run: Path) -> Path:
    """A run's best checkpoint where it has one, else its latest."""
    return resolve_checkpoint(run / "best" if (run / "best").is_dir() else run)


def local_run_dir(cfg: Config, experiment: str, run_name: str) -> Path:
    run_dir = Path(cfg.training.checkpoint_dir) / experiment / run_name
    return run_dir if run_dir.is_absolute() else Path.cwd() / run_dir


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

    def save(self, algo: Any, meta: CheckpointMeta) -> Path:
        """The algorithm's state and `meta` as `iter_<meta.iteration>`, then `latest.json` (atomically)."""
        iteration = meta.iteration
        final = self.run_dir / f"iter_{iteration:06d}"
        tmp = self.run_dir / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
        algo.save_to_path(str(tmp))
        (tmp / META_FILE).write_text(meta.to_json())
        _replace_dir(tmp, final)
        pointer = json.dumps({"path": final.name, "iteration": iteration})
        _atomic_write(self.run_dir / LATEST, pointer)
        self._upload(final, pointer)
        return final

    def update_meta(self, checkpoint: Path, meta: CheckpointMeta) -> None:
        _atomic_write(checkpoint / META_FILE, meta.to_json())

    def mark_best(self, checkpoint: Path) -> Path:
        tmp = self.run_dir / f".tmp-best-{uuid.uuid4().hex[:8]}"
        shutil.copytree(checkpoint, tmp)
        best = self.run_dir / "best"
        _replace_dir(tmp, best)
        self._upload(best, None)
        return best

    def latest(self) -> Path | None:
        pointer = self.run_dir / LATEST
        return self.run_dir / json.loads(pointer.read_text())["path"] if pointer.exists() else None

    def best(self) -> Path | None:
        return self.run_dir / "best" if (self.run_dir / "best").exists() else None

    def _upload(self, folder: Path, pointer: str | None) -> None:
        """Copy a finished checkpoint to the mirror, then (last) its latest.json."""
        if self.mirror is None:
            return
        try:
            fs, root = (
                pafs.FileSystem.from_uri(self.mirror) if "://" in self.mirror else (pafs.LocalFileSystem(), self.mirror)
            )
            fs.create_dir(f"{root}/{folder.name}", recursive=True)
            pafs.copy_files(
                str(folder),
                f"{root}/{folder.name}",
                source_filesystem=pafs.LocalFileSystem(),
                destination_filesystem=fs,
            )
            if pointer is not None:
                with fs.open_output_stream(f"{root}/{LATEST}") as out:
                    out.write(pointer.encode())
        except Exception as exc:  # the local copy is complete; a storage outage must not stop training
            log.warning("could not mirror %s to %s: %s", folder.name, self.mirror, exc)
