"""Tracking against real MLflow stores (SQLite; PostgreSQL and an MLflow server when reachable)."""

import json
import re
import socket
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from wealtharena.config import Config, coerce_config
from wealtharena.evaluation.validation import AgentStats, ValidationResult
from wealtharena.training.checkpoints import CheckpointMeta
from wealtharena.training.results import IterationRecord
from wealtharena.training.tracking import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    MlflowTracker,
    WandbTracker,
    metric_name,
    ui_link,
)

POSTGRES_URI = "postgresql://postgres@127.0.0.1:5432/test"


def _row(it):
    return IterationRecord(
        iteration=it,
        wall_s=1.0,
        env_steps=200 * it,
        env_steps_per_s=150.0 + it,
        policy_return={"balanced": -10.0 + it, "aggressive": -20.0 + it},
        reward_terms={"balanced": {"profit": 1.0 * it, "risk": -0.5}},
        learner={"balanced": {"policy_loss": 0.1 / it, "vf_loss": 2.0}},
    )


def _validation(it):
    return ValidationResult(
        iteration=it,
        mean_sharpe=0.3 * it,
        mean_episode_reward=5.0,
        policy_episode_reward={"balanced": 5.0 + it},
        policy_episode_reward_se={"balanced": 1.0},
        policy_window_rewards={"balanced": [5.0, 6.0]},
        episodes=2,
        episode_length=252,
        stride=21,
        policy_full_period_reward={"balanced": 4.0},
        agents={
            "balanced_0": AgentStats(
                sharpe=0.3, total_return=0.1, max_drawdown=-0.05, episode_reward=5.0, profile="balanced"
            )
        },
    )


def _meta(cfg: Config):
    return CheckpointMeta(
        config=cfg.model_dump(mode="json"),
        fingerprint=cfg.fingerprint(),
        compat={},
        git_commit="abc123",
        command="train.py --test",
        data={"provider": "sample", "sha256": "f00"},
    )


def _record_run(uri, tmp_path):
    cfg = coerce_config(Config(), {"tracking.mlflow.tracking_uri": uri})
    tracker = MlflowTracker(cfg, f"exp-{time.time_ns()}", workdir=tmp_path)
    run_dir = tmp_path / "run1"
    run_dir.mkdir()
    tracker.start(cfg, run_dir, _meta(cfg))
    for it in (1, 2, 3):
        tracker.log_iteration(_row(it))
    tracker.log_validation(_validation(3))
    plot = tmp_path / "equity.png"
    plot.write_bytes(b"\x89PNG fake but non-empty")
    tracker.log_artifacts([plot], "eval-validation")
    tracker.finish()
    return cfg, tracker


def _check_read_back(tracker, cfg):
    client = MlflowClient(tracking_uri=tracker.uri)
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["risk.max_position"] == "0.15" and run.data.params["training.algorithm"] == "ppo"
    assert run.data.tags["config_fingerprint"] == cfg.fingerprint() and run.data.tags["git_commit"] == "abc123"
    assert run.data.tags["data.sha256"] == "f00"
    history = client.get_metric_history(tracker.run_id, "curves/train_return/balanced")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [(1, -9.0), (2, -8.0), (3, -7.0)]
    assert client.get_metric_history(tracker.run_id, "curves/validation_mean_sharpe")[0].value == pytest.approx(0.9)
    artifacts = {a.path for a in client.list_artifacts(tracker.run_id, "eval-validation")}
    assert artifacts == {"eval-validation/equity.png"}
    assert {a.path for a in client.list_artifacts(tracker.run_id, "config")} == {"config/resolved_config.json"}
    # MLflow 3 shows a model-training experiment with its runs and charts, not its GenAI view
    assert client.get_experiment(run.info.experiment_id).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND


def test_mlflow_run_on_sqlite_reads_back(tmp_path):
    cfg, tracker = _record_run(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path)
    _check_read_back(tracker, cfg)


def _postgres_up() -> bool:
    try:
        import psycopg2

        psycopg2.connect(host="127.0.0.1", port=5432, dbname="test", user="postgres", connect_timeout=2).close()
        return True
    except Exception:
        return False


@pytest.mark.skipif(not _postgres_up(), reason="no PostgreSQL at 127.0.0.1:5432")
def test_mlflow_run_on_postgresql_reads_back(tmp_path):
    cfg, tracker = _record_run(POSTGRES_URI, tmp_path)
    _check_read_back(tracker, cfg)


def test_unreachable_server_falls_back_to_the_local_store(tmp_path, caplog):
    cfg, tracker = _record_run("http://127.0.0.1:9", tmp_path)
    assert "unreachable" in caplog.text and tracker.uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    _check_read_back(tracker, cfg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """A real `mlflow server` on loopback with a SQLite backend; stopped at the end."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--default-artifact-root",
            (tmp_path / "artifacts").as_uri(),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    import urllib.request

    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("mlflow server did not start within 90 s")
    yield url, proc
    proc.terminate()
    proc.wait(timeout=30)


@pytest.mark.slow
def test_server_going_down_mid_run_keeps_a_local_record(mlflow_server, tmp_path, caplog):
    url, proc = mlflow_server
    cfg = coerce_config(Config(), {"tracking.mlflow.tracking_uri": url})
    tracker = MlflowTracker(cfg, "mid-run", workdir=tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    tracker.start(cfg, run_dir, _meta(cfg))
    tracker.log_iteration(_row(1))
    proc.terminate()
    proc.wait(timeout=30)
    tracker.log_iteration(_row(2))  # the server is gone: warn, keep a local record
    tracker.log_iteration(_row(3))
    tracker.finish()
    assert "training goes on" in caplog.text
    lines = [json.loads(line) for line in (run_dir / "tracking_fallback.jsonl").read_text().splitlines()]
    assert [rec["step"] for rec in lines if rec["what"] == "log metrics"] == [2, 3]


@pytest.mark.slow
def test_mlflow_ui_shows_the_run_in_headless_chromium(mlflow_server, tmp_path):
    import shutil

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    url, _ = mlflow_server
    cfg = coerce_config(Config(), {"tracking.mlflow.tracking_uri": url})
    tracker = MlflowTracker(cfg, "ui-check", workdir=tmp_path)
    run_dir = tmp_path / "ui-run-7f3a"
    run_dir.mkdir()
    tracker.start(cfg, run_dir, _meta(cfg))
    tracker.log_iteration(_row(1))
    tracker.finish()

    def dom(page: str) -> str:
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=25000",
        ]
        out = subprocess.run([browser, *flags, "--dump-dom", page], capture_output=True, text=True, timeout=120).stdout
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", out))

    experiment = dom(ui_link(url, tracker.exp_id))  # the model-training view: the runs table
    assert "ui-run-7f3a" in experiment and "Runs" in experiment
    charts = dom(ui_link(url, tracker.exp_id, tracker.run_id, "model-metrics"))
    assert "ui-run-7f3a" in charts and "curves/train_return" in charts  # the run's metric charts, curves first


def test_wandb_offline_writes_its_run_folder(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = coerce_config(Config(), {"tracking.wandb.enabled": True})
    tracker = WandbTracker(cfg, "wb-test")
    assert tracker.mode == "offline"
    tracker.start(cfg, tmp_path, _meta(cfg))
    for it in (1, 2):
        tracker.log_iteration(_row(it))
    tracker.finish()
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(p.suffix == ".wandb" for p in runs[0].iterdir())


def test_metric_names_are_sanitised():
    assert metric_name("test/SP500 buy & hold/sharpe") == "test/SP500_buy_hold/sharpe"
