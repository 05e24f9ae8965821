"""A real multi-node Ray cluster on one machine; and the container/cluster manifests."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import TINY
from wealtharena.config import PROJECT_ROOT

DOCKER = PROJECT_ROOT / "docker"


@pytest.mark.slow
def test_training_spreads_env_runners_over_two_nodes_then_evaluates(tmp_path, cache_dir):
    cfg = yaml.safe_load(TINY.read_text())
    cfg["training"]["num_env_runners"] = 3  # 3 x 1 CPU: the head has 1, the second node 2
    cfg["data"] = {"cache": {"dir": str(cache_dir)}}
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "cluster_job.py"), str(path), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("CLUSTER_RESULT ")), None)
    assert line is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(line.removeprefix("CLUSTER_RESULT "))
    assert result["rc_train"] == 0 and result["rc_eval"] == 0
    nodes = {r["node_id"] for r in result["runners"]}
    assert len(result["runners"]) == 3 and nodes == {result["head"], result["worker"]}
    assert {r["data"] for r in result["runners"]} == {"object_store"}  # one load, shared through the object store
    assert Path(result["report"]).is_file()


def test_compose_file_parses_and_references_existing_files():
    compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "postgres", "mlflow", "ray-head", "ray-worker", "trainer"} <= set(services)
    for name in ("redis", "postgres", "mlflow", "ray-head"):
        assert "healthcheck" in services[name], name
    build = services["trainer"]["build"]
    assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == (DOCKER / "Dockerfile").resolve()
    assert (PROJECT_ROOT / ".dockerignore").is_file()
    trainer = services["trainer"]["command"]
    assert trainer[:4] == ["python", "train.py", "--config", "production_config.yaml"]
    assert (PROJECT_ROOT / "config" / trainer[3]).is_file()
    assert "--address" in trainer and trainer[trainer.index("--address") + 1] == "ray-head:6380"
    assert "--port=6380" in services["ray-head"]["command"]
    assert "postgresql://" in services["mlflow"]["command"]
    text = (DOCKER / "docker-compose.yml").read_text() + (DOCKER / "Dockerfile").read_text()
    assert "sk-" not in text and "WANDB_API_KEY: ${WANDB_API_KEY:-}" in text  # secrets come from the environment
    for src in ("pyproject.toml", "setup.py", "README.md", "src", "config", "train.py", "download_data.py"):
        assert (PROJECT_ROOT / src).exists(), src


def test_ray_up_config_passes_rays_own_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    cfg = yaml.safe_load((DOCKER / "ray-cluster.yaml").read_text())
    validate_config(prepare_config(cfg))
    assert cfg["docker"]["image"] == "wealtharena:latest"
    assert any("--port=6380" in c for c in cfg["head_start_ray_commands"])


def test_rayjob_manifest_uses_the_compose_image_and_entrypoint():
    job = yaml.safe_load((DOCKER / "kuberay-rayjob.yaml").read_text())
    compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    image = compose["services"]["trainer"]["image"]
    spec = job["spec"]["rayClusterSpec"]
    images = {c["image"] for c in spec["headGroupSpec"]["template"]["spec"]["containers"]}
    images |= {c["image"] for g in spec["workerGroupSpecs"] for c in g["template"]["spec"]["containers"]}
    assert images == {image}
    entry = job["spec"]["entrypoint"].split()
    assert entry[:4] == compose["services"]["trainer"]["command"][:4] and "--address" in entry
