"""Run tracking: MLflow always (SQLite file in the working folder by default, or a server), W&B when asked.

A tracker never stops training. If the tracking server cannot be reached at the start, the run
is recorded in the local SQLite store instead and the log says so; if a call fails later, the
failure is logged once and every later record goes to `<run_dir>/tracking_fallback.jsonl`, so
nothing is lost. Secrets (WANDB_API_KEY, credentials in URIs) are never logged.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import mlflow
import mlflow.pytorch
import ray
import torch
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from ray.rllib.core.rl_module.rl_module import RLModule

from wealtharena.config import Config, ServiceSettings, redact_url
from wealtharena.training.inference import MODULES_DIR

if TYPE_CHECKING:
    from wealtharena.training.checkpoints import CheckpointMeta
    from wealtharena.training.results import IterationRecord, Validation

log = logging.getLogger(__name__)

MAX_PARAM_LEN = 500
# MLflow 3's UI opens experiments in its GenAI view (traces, prompts). Experiments are tagged for model
# training (the tag MLflow reads where its UI has no view switch), and the links this project prints ask
# for the model-training view (`?workflowType=machine_learning`, what the switch at the top of the UI
# sets), which shows the runs and their metric charts.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
TRAINING_VIEW = "workflowType=machine_learning"


def ui_link(base_url: str, experiment_id: str, run_id: str | None = None, tab: str = "") -> str:
    """A link to an experiment (or a run's tab) in MLflow 3's model-training view."""
    path = f"#/experiments/{experiment_id}" + (f"/runs/{run_id}" if run_id else "") + (f"/{tab}" if tab else "")
    return f"{base_url.rstrip('/')}/{path}?{TRAINING_VIEW}"


class Tracker(Protocol):
    """What a training run (`training.run.TrackerHook`) and train.py record through (MLflow, W&B, or both
    via `Trackers`)."""

    def start(self, cfg: Config, run_dir: Path, meta: CheckpointMeta) -> None: ...

    def resume(self, cfg: Config, run_dir: Path, meta: CheckpointMeta) -> None:
        """Continue the run `meta.mlflow` records (a resumed training run)."""

    def record(self) -> dict[str, Any] | None:
        """Where the run is recorded (MLflow run id, URI, experiment), to store in checkpoints."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def log_iteration(self, record: IterationRecord) -> None: ...

    def log_validation(self, val: Validation) -> None: ...

    def log_artifacts(self, paths: list[Path], artifact_path: str) -> None: ...

    def log_policies(self, checkpoint: Path, policies: list[str]) -> None: ...

    def finish(self, status: str = "FINISHED") -> None: ...


def metric_name(name: str) -> str:
    """MLflow allows letters, digits, _ - . / and spaces in metric names: 'SP500 buy & hold' -> 'SP500_buy_hold'."""
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_\-./]", "_", name))


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists are kept as their JSON text."""
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out |= flatten(v, f"{prefix}{k}.")
    else:
        out[prefix[:-1]] = json.dumps(d) if isinstance(d, (list, tuple)) else d
    return out


def iteration_metrics(record: IterationRecord) -> dict[str, float]:
    """One training iteration as flat metric names: the return curves first (`curves/train_return/<policy>`;
    MLflow's UI orders metric groups by name), then reward terms, speed and learner statistics."""
    m: dict[str, float] = {"train/env_steps_per_s": record.env_steps_per_s, "train/env_steps": record.env_steps}
    for p, v in record.policy_return.items():
        m[f"curves/train_return/{p}"] = v
    for p, terms in record.reward_terms.items():
        for t, v in terms.items():
            m[f"train/reward_terms/{p}/{t}"] = v
    for p, stats in record.learner.items():
        for k, v in stats.items():
            m[f"learner/{p}/{k}"] = v
    return m


def _finite(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
    }


class MlflowTracker:
    def __init__(
        self, cfg: Config, experiment: str, services: ServiceSettings | None = None, workdir: Path | None = None
    ):
        services = services or ServiceSettings.from_env()
        self.workdir = (workdir or Path.cwd()).resolve()
        self.local_uri = f"sqlite:///{self.workdir / 'mlflow.db'}"
        self.uri = cfg.tracking.mlflow.tracking_uri or services.mlflow_tracking_uri or self.local_uri
        self.experiment = cfg.tracking.mlflow.experiment or experiment
        self.client: Any = None
        self.exp_id = ""
        self.run_id: str | None = None
        self.fallback: Path | None = None
        self.failed = False

    # -------------------------------------------------------------- plumbing
    def _connect(self, uri: str) -> None:
        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name(self.experiment)
        if exp is None:
            artifacts = None
            if uri.startswith("sqlite:"):
                artifacts = (self.workdir / "mlruns").as_uri()
            exp_id = client.create_experiment(
                self.experiment, artifact_location=artifacts, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
            )
        else:
            exp_id = exp.experiment_id
            if EXPERIMENT_KIND_TAG not in exp.tags:  # an experiment made before, or by someone else
                client.set_experiment_tag(exp_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        self.client, self.exp_id, self.uri = client, exp_id, uri

    def _safe(self, what: str, fn: Any, record: dict[str, Any] | None = None) -> None:
        if not self.failed and self.client is not None:
            try:
                fn()
                return
            except Exception as exc:  # any transport or server error: never stop training
                self.failed = True
                log.warning(
                    "MLflow %s failed (%s): training goes on; from now on records go to %s",
                    what,
                    type(exc).__name__,
                    self.fallback,
                )
        if self.fallback is not None and record is not None:
            with self.fallback.open("a") as fh:
                fh.write(json.dumps({"what": what, **record}, default=str) + "\n")

    @classmethod
    def child(cls, cfg: Config, record: dict[str, Any], run_dir: Path, name: str) -> MlflowTracker | None:
        """A new MLflow run nested under the run a checkpoint was trained in (an evaluation of it): its
        figures and reports stay apart from the training curves."""
        tracker = cls(cfg, record.get("experiment", cfg.name))
        tracker.fallback = run_dir / "tracking_fallback.jsonl"
        try:
            tracker._connect(record["tracking_uri"])
            parent = tracker.client.get_run(record["run_id"])
            run = tracker.client.create_run(
                parent.info.experiment_id,
                tags={"mlflow.parentRunId": record["run_id"], "mlflow.runName": name, "run_dir": str(run_dir)},
            )
        except Exception as exc:
            log.warning(
                "cannot reach MLflow run %s at %s (%s): evaluation results stay in the run folder",
                record.get("run_id"),
                redact_url(record.get("tracking_uri")),
                type(exc).__name__,
            )
            return None
        tracker.run_id = run.info.run_id
        return tracker

    @classmethod
    def parent(cls, cfg: Config, experiment: str, name: str) -> MlflowTracker | None:
        """A run that groups others (a walk-forward's windows nest under it), or None without MLflow."""
        if not cfg.tracking.mlflow.enabled:
            return None
        tracker = cls(cfg, experiment)
        try:
            tracker._connect(tracker.uri)
            tracker.run_id = tracker.client.create_run(tracker.exp_id, tags={"mlflow.runName": name}).info.run_id
        except Exception as exc:
            log.warning("MLflow unreachable (%s): the %s run is not recorded", type(exc).__name__, name)
            return None
        return tracker

    def set_tags(self, tags: dict[str, str]) -> None:
        self._safe(
            "tag", lambda: self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()]), tags
        )

    # -------------------------------------------------------------- API used by the trainer
    def start(self, cfg: Config, run_dir: Path, meta: CheckpointMeta) -> None:
        self.fallback = run_dir / "tracking_fallback.jsonl"
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        try:
            self._connect(self.uri)
        except Exception as exc:
            log.warning(
                "MLflow tracking server %s unreachable (%s): recording this run in the local store %s",
                redact_url(self.uri),
                type(exc).__name__,
                self.local_uri,
            )
            try:
                self._connect(self.local_uri)
            except Exception as exc2:
                log.warning("local MLflow store failed too (%s): records go to %s", exc2, self.fallback)
                self.failed = True
                return
        tags = {
            "mlflow.runName": run_dir.name,
            "config_fingerprint": meta.fingerprint,
            "git_commit": meta.git_commit or "unknown",
            "command": meta.command[:5000],
            "run_dir": str(run_dir),
        }
        tags |= {f"data.{k}": str(v)[:5000] for k, v in meta.data.items()}
        run = self.client.create_run(self.exp_id, tags=tags)
        self.run_id = run.info.run_id
        params = [Param(k, str(v)[:MAX_PARAM_LEN]) for k, v in flatten(meta.config).items()]

        def log_params() -> None:
            for i in range(0, len(params), 100):
                self.client.log_batch(self.run_id, params=params[i : i + 100])
            self.client.log_dict(self.run_id, meta.config, "config/resolved_config.json")
            self.client.log_batch(self.run_id, tags=[RunTag("config_hash", meta.fingerprint)])

        self._safe("log params", log_params, {"params": meta.config})
        log.info("MLflow run %s in experiment '%s' at %s", self.run_id, self.experiment, redact_url(self.uri))

    def resume(self, cfg: Config, run_dir: Path, meta: CheckpointMeta) -> None:
        """Continue the MLflow run the checkpoint was trained in (its curves go on from the same step);
        a new run, named as the resumption of it, where that run cannot be reopened."""
        record = meta.mlflow or {}
        self.fallback = run_dir / "tracking_fallback.jsonl"
        try:
            self._connect(record["tracking_uri"])
            self.client.get_run(record["run_id"])
            self.client.update_run(record["run_id"], status="RUNNING")
        except Exception as exc:
            log.warning(
                "cannot reopen MLflow run %s (%s): recording the resumed run as a new one",
                record.get("run_id"),
                type(exc).__name__,
            )
            self.start(cfg, run_dir, meta)
            self._safe(
                "tag", lambda: self.client.set_tag(self.run_id, "mlflow.runName", f"{run_dir.name} (resumed)"), None
            )
            return
        self.run_id = record["run_id"]
        log.info("MLflow run %s continues (resumed at iteration %d)", self.run_id, meta.iteration)

    def record(self) -> dict[str, Any] | None:
        if not self.run_id:
            return None
        return {"run_id": self.run_id, "tracking_uri": self.uri, "experiment": self.experiment}

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        clean = _finite(metrics)
        now = int(time.time() * 1000)
        batch = [Metric(metric_name(k), v, now, step) for k, v in clean.items()]

        def send() -> None:
            for i in range(0, len(batch), 1000):
                self.client.log_batch(self.run_id, metrics=batch[i : i + 1000])

        self._safe("log metrics", send, {"step": step, "metrics": clean})

    def log_iteration(self, record: IterationRecord) -> None:
        self.log_metrics(iteration_metrics(record), record.iteration)

    def log_validation(self, val: Validation) -> None:
        self.log_metrics(val.metrics(), val.iteration)

    def log_artifacts(self, paths: list[Path], artifact_path: str) -> None:
        def send() -> None:
            for p in paths:
                self.client.log_artifact(self.run_id, str(p), artifact_path)

        self._safe("log artifacts", send, {"artifacts": [str(p) for p in paths], "artifact_path": artifact_path})

    def log_policies(self, checkpoint: Path, policies: list[str]) -> None:
        """Each policy's RLModule as an MLflow logged model (PyTorch flavour) and its RLlib folder."""

        def send() -> None:
            mlflow.set_tracking_uri(self.uri)
            # Pickled modules (an RLModule does not export to pt2): MLflow warns about that once per
            # model, and about torch's '+cpu' label when it infers requirements. Both are known and
            # said once here; the requirements are given explicitly instead of inferred.
            requirements = [f"torch=={torch.__version__.split('+')[0]}", f"ray[rllib]=={ray.__version__}"]
            quiet = [logging.getLogger(n) for n in ("mlflow.pytorch", "mlflow.utils.requirements_utils")]
            levels = [q.level for q in quiet]
            for q in quiet:
                q.setLevel(logging.ERROR)
            try:
                with mlflow.start_run(run_id=self.run_id):
                    for p in policies:
                        module = RLModule.from_checkpoint((checkpoint / MODULES_DIR / p).resolve())
                        mlflow.pytorch.log_model(
                            module, name=f"policy_{p}", serialization_format="pickle", pip_requirements=requirements
                        )
            finally:
                for q, level in zip(quiet, levels):
                    q.setLevel(level)
            self.client.set_tag(self.run_id, "checkpoint", str(checkpoint))
            log.info(
                "MLflow: policies %s logged as pickled PyTorch modules (load them only from a store you trust)",
                policies,
            )

        self._safe("log policies", send, {"checkpoint": str(checkpoint)})

    def finish(self, status: str = "FINISHED") -> None:
        self._safe("finish", lambda: self.client.set_terminated(self.run_id, status), {"status": status})


class WandbTracker:
    """W&B with the same metrics. Online with WANDB_API_KEY, else offline (`WANDB_MODE=offline`)."""

    def __init__(self, cfg: Config, experiment: str, services: ServiceSettings | None = None):
        services = services or ServiceSettings.from_env()
        online = cfg.tracking.wandb.mode == "online" and bool(services.wandb_api_key)
        self.mode: Literal["online", "offline"] = "online" if online else "offline"
        if cfg.tracking.wandb.mode == "online" and not services.wandb_api_key:
            log.warning("W&B online needs WANDB_API_KEY in the environment; logging offline instead")
        self.project = cfg.tracking.wandb.project
        self.experiment = experiment
        self.run: Any = None

    def start(self, cfg: Config, run_dir: Path, meta: CheckpointMeta) -> None:
        try:
            import wandb  # optional: pip install -e '.[wandb]'
        except ImportError:
            log.warning("W&B requested but the wandb package is not installed (pip install -e '.[wandb]')")
            return
        os.environ.setdefault("WANDB_SILENT", "true")
        try:
            self.run = wandb.init(
                project=self.project,
                group=self.experiment,
                name=run_dir.name,
                mode=self.mode,
                dir=str(run_dir),
                config={**flatten(meta.config), "config_hash": meta.fingerprint, "git_commit": meta.git_commit},
                reinit="finish_previous",
            )
        except Exception as exc:
            log.warning("W&B init failed (%s): training goes on without W&B", exc)
            self.run = None

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        if self.run is not None:
            try:
                self.run.log(_finite(metrics), step=step)
            except Exception as exc:
                log.warning("W&B log failed (%s); W&B is off for the rest of the run", exc)
                self.run = None

    def resume(self, cfg: Config, run_dir: Path, meta: CheckpointMeta) -> None:
        """W&B runs are not reopened: the resumed run is a new one in the same group."""
        self.start(cfg, run_dir, meta)

    def record(self) -> dict[str, Any] | None:
        return None

    def log_iteration(self, record: IterationRecord) -> None:
        self.log_metrics(iteration_metrics(record), record.iteration)

    def log_validation(self, val: Validation) -> None:
        self.log_metrics(val.metrics(), val.iteration)

    def log_artifacts(self, paths: list[Path], artifact_path: str) -> None:
        if self.run is not None:
            for p in paths:
                if p.suffix == ".png":
                    import wandb  # optional; present, since start() imported it

                    self.run.log({f"{artifact_path}/{p.stem}": wandb.Image(str(p))})

    def log_policies(self, checkpoint: Path, policies: list[str]) -> None:
        if self.run is not None:
            self.run.summary["checkpoint"] = str(checkpoint)

    def finish(self, status: str = "FINISHED") -> None:
        if self.run is not None:
            self.run.finish(exit_code=0 if status == "FINISHED" else 1)
            self.run = None


class Trackers:
    """Fan-out to every enabled tracker; the trainer sees one `Tracker`."""

    def __init__(self, trackers: list[Tracker]):
        self.trackers = trackers

    def start(self, cfg: Config, run_dir: Path, meta: CheckpointMeta) -> None:
        for t in self.trackers:
            t.start(cfg, run_dir, meta)

    def resume(self, cfg: Config, run_dir: Path, meta: CheckpointMeta) -> None:
        for t in self.trackers:
            t.resume(cfg, run_dir, meta)

    def record(self) -> dict[str, Any] | None:
        return next((r for r in (t.record() for t in self.trackers) if r is not None), None)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for t in self.trackers:
            t.log_metrics(metrics, step)

    def log_iteration(self, record: IterationRecord) -> None:
        for t in self.trackers:
            t.log_iteration(record)

    def log_validation(self, val: Validation) -> None:
        for t in self.trackers:
            t.log_validation(val)

    def log_artifacts(self, paths: list[Path], artifact_path: str) -> None:
        for t in self.trackers:
            t.log_artifacts(paths, artifact_path)

    def log_policies(self, checkpoint: Path, policies: list[str]) -> None:
        for t in self.trackers:
            t.log_policies(checkpoint, policies)

    def finish(self, status: str = "FINISHED") -> None:
        for t in self.trackers:
            t.finish(status)

    @property
    def mlflow(self) -> MlflowTracker | None:
        return next((t for t in self.trackers if isinstance(t, MlflowTracker)), None)


def make_trackers(
    cfg: Config, experiment: str, wandb: bool = False, services: ServiceSettings | None = None
) -> Trackers:
    trackers: list[Tracker] = []
    if cfg.tracking.mlflow.enabled:
        trackers.append(MlflowTracker(cfg, experiment, services))
    if wandb or cfg.tracking.wandb.enabled:
        trackers.append(WandbTracker(cfg, experiment, services))
    return Trackers(trackers)
