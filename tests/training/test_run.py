"""The training run object: a runner killed mid-run, the checkpoint record, resuming."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import TINY
from wealtharena.config import PROJECT_ROOT
from wealtharena.errors import CheckpointError
from wealtharena.training.checkpoints import META_VERSION, CheckpointMeta, read_meta


@pytest.mark.slow
def test_a_killed_env_runner_does_not_end_the_run(tmp_path):
    """`kill -9` of the env runner's process after iteration 2 of 6: the run logs one line, rebuilds its
    runners from the current weights, trains to its last iteration and exits 0."""
    cfg = yaml.safe_load(TINY.read_text())
    cfg["training"]["eval_every"] = 3
    cfg["ensemble"] = {"enabled": False}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "train.py"), "--config", str(path), "--iterations", "6", "--no-progress"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    pid = None
    deadline = time.monotonic() + 300
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            found = re.search(r"env runner 1 \(pid (\d+)\)", line)
            if found:
                pid = int(found.group(1))
            if "wealtharena.training.run: iter 2:" in line:
                assert pid is not None, "the runner's pid was not logged"
                os.kill(pid, signal.SIGKILL)
                break
            assert time.monotonic() < deadline, "no iteration 2 within 5 minutes"
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    log = "".join(lines) + err
    assert proc.returncode == 0, log[-3000:]
    died = [line for line in log.splitlines() if "an env runner died" in line]
    assert len(died) == 1 and "the iteration is sampled again" in died[0], died
    (run,) = (tmp_path / "checkpoints" / "tiny").glob("*-s0")
    assert json.loads((run / "latest.json").read_text())["iteration"] == 6
    assert [h["iteration"] for h in read_meta(run / "iter_000006").history] == [1, 2, 3, 4, 5, 6]
    assert "Traceback" not in log


def test_checkpoint_records_are_typed_and_versioned(tmp_path):
    meta = CheckpointMeta(config={"name": "x"}, fingerprint="f", compat={"window": 1}, iteration=3, best_metric=0.5)
    (tmp_path / "wealtharena.json").write_text(meta.to_json())
    back = read_meta(tmp_path)
    assert back == meta and back.version == META_VERSION
    # a record from before the version field (version 1) still reads; a newer one is refused
    old = json.loads(meta.to_json())
    del old["version"]
    old["best_metric"] = "-Infinity"
    (tmp_path / "wealtharena.json").write_text(json.dumps(old).replace('"-Infinity"', "-Infinity"))
    assert read_meta(tmp_path).best_metric is None and read_meta(tmp_path).iteration == 3
    (tmp_path / "wealtharena.json").write_text(json.dumps({**old, "version": META_VERSION + 1}))
    with pytest.raises(CheckpointError, match="newer WealthArena"):
        read_meta(tmp_path)
    (tmp_path / "wealtharena.json").write_text(json.dumps({"iteration": 1}))
    with pytest.raises(CheckpointError, match="not a WealthArena checkpoint record"):
        read_meta(tmp_path)


def test_training_does_not_import_evaluation():
    """training is below the application: it gets a validation from it and never imports evaluation."""
    code = (
        "import sys, wealtharena.training.run, wealtharena.training.tracking; "
        "print(sorted(m for m in sys.modules if m.startswith(('wealtharena.evaluation', 'wealtharena.app'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path.cwd())
    assert out.stdout.strip() == "[]"
