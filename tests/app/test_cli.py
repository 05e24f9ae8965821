"""train.py against Ray clusters that are not there, and beside one that is."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import pytest
import yaml

from tests.conftest import TINY
from wealtharena.config import PROJECT_ROOT


def _run(args: list[str], cwd, timeout: int = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def _ray_running() -> bool:
    from ray._private.services import find_gcs_addresses

    return bool(find_gcs_addresses())


def test_address_auto_without_a_cluster_is_one_line_and_exit_code_2(tmp_path):
    if _ray_running():
        pytest.skip("a Ray cluster runs on this machine: --address auto would join it")
    proc = _run(["--address", "auto"], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert re.search(r"--address auto: .*start one with `ray start --head", proc.stderr)


def test_an_address_where_nothing_listens_gives_up_at_once(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = _run(["--address", f"127.0.0.1:{port}"], tmp_path, timeout=60)
    assert proc.returncode == 2 and f"--address 127.0.0.1:{port}: no Ray cluster answers there" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_a_plain_run_starts_its_own_session_beside_a_running_cluster(ray_local, tmp_path):
    """With a Ray session running on the machine (the test session's) and a stale RAY_ADDRESS, train.py
    without --address starts a local session of its own instead of joining or failing."""
    import os

    import ray

    cfg = yaml.safe_load(TINY.read_text())
    cfg["ensemble"] = {"enabled": False}
    cfg["tracking"] = {"mlflow": {"enabled": False}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "RAY_ADDRESS": "127.0.0.1:6399"}
    proc = _run(["--config", str(path), "--iterations", "1", "--no-progress"], tmp_path, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    node = re.search(r"env runner 1 \(pid \d+\) on node (\w+)", proc.stderr)
    assert node is not None and not ray.get_runtime_context().get_node_id().startswith(node.group(1))


def test_iterations_in_walkforward_mode_is_refused_with_the_keys_that_set_it(tmp_path):
    """Walk-forward windows take their budgets from the config; a flag it would ignore is an error instead."""
    proc = _run(["--mode", "walkforward", "--iterations", "3"], tmp_path, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "walkforward.warm_iterations" in proc.stderr and "training.iterations" in proc.stderr
