"""The golden run: the first iterations of the default config, as `train.py` runs them in a fresh process.

    python tests/training/golden_run.py            # regenerate tests/training/golden/default.json on purpose

A change in code or dependencies that moves these numbers makes test_golden fail; if the change is meant,
regenerate the file and say why in the commit. The desk and the tearsheets are off (they do not touch
training) and the run validates at iterations 0 and 2 (validation does not touch training's RNG).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden" / "default.json"
ITERATIONS = 2
OVERRIDES = {
    "training": {"eval_every": ITERATIONS, "checkpoint_every": ITERATIONS},
    "evaluation": {"tearsheets": False},
    "ensemble": {"enabled": False},
    "tracking": {"mlflow": {"enabled": False}},
}


def run(workdir: Path) -> dict:
    """Train the default config for ITERATIONS iterations in a fresh process; the numbers it recorded."""
    cfg = yaml.safe_load((ROOT / "config" / "default.yaml").read_text())
    for section, values in OVERRIDES.items():
        cfg.setdefault(section, {}).update(values)
    path = workdir / "golden.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}  # train.py fixes it itself
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "--config",
            str(path),
            "--iterations",
            str(ITERATIONS),
            "--experiment",
            "golden",
            "--no-progress",
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    assert "wealtharena.training.run: iter 1: returns" in proc.stderr, "train.py logged no progress"
    assert "constructor arguments in the object store" not in proc.stderr, "Ray: env runners with restarts"
    (run_dir,) = (workdir / "checkpoints" / "golden").glob("*-s*")
    meta = json.loads((run_dir / f"iter_{ITERATIONS:06d}" / "wealtharena.json").read_text())
    return {
        "iterations": ITERATIONS,
        "validation": [
            {
                "iteration": v["iteration"],
                "policy_episode_reward": v["policy_episode_reward"],
                "mean_sharpe": v["mean_sharpe"],
            }
            for v in meta["validation"]
        ],
        "train_return": [{"iteration": h["iteration"], "policy_return": h["policy_return"]} for h in meta["history"]],
    }


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        numbers = run(Path(tmp))
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(numbers, indent=1) + "\n")
    print(f"wrote {GOLDEN}")
