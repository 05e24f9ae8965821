"""Walk-forward: windows, bad settings, no look-ahead, stitching, a killed run resumed."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from datetime import date

import numpy as np
import pytest
import yaml

from tests.conftest import TINY
from tests.helpers import leftover_processes, tagged_env
from wealtharena.app.walkforward import plan_windows, run_window, window_config, window_data
from wealtharena.config import PROJECT_ROOT, coerce_config
from wealtharena.errors import ConfigError

WF_TINY = {"walkforward": {"first_test_year": 2021, "warm_iterations": 1, "bootstrap_reps": 200}}


def test_windows_expand_year_by_year_to_the_data_end(sample_config):
    windows = plan_windows(sample_config)
    assert [w.name for w in windows] == [str(y) for y in range(1996, 2023)]
    first, last = windows[0], windows[-1]
    assert first.train == (date(1990, 1, 1), date(1994, 12, 31)) and first.validation == (
        date(1995, 1, 1),
        date(1995, 12, 31),
    )
    assert first.test == (date(1996, 1, 1), date(1996, 12, 31)) and last.test == (date(2022, 1, 1), date(2022, 12, 31))
    assert last.train[0] == date(1990, 1, 1)  # expanding
    quarters = plan_windows(
        coerce_config(sample_config, {"walkforward.step_months": 3, "walkforward.first_test_year": 2021})
    )
    assert [w.name for w in quarters][:3] == ["2021-01", "2021-04", "2021-07"] and len(quarters) == 8
    assert quarters[1].validation == (date(2020, 4, 1), date(2021, 3, 31))
    rolling = plan_windows(coerce_config(sample_config, {"walkforward.train_years": 10}))
    assert rolling[-1].train == (date(2011, 1, 1), date(2020, 12, 31))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"walkforward.first_test_year": 1994},
            r"walkforward.first_test_year 1994 leaves 3.0 years of training .* start testing in 1995",
        ),
        (
            {"walkforward.last_test_year": 2030},
            r"walkforward.last_test_year 2030 starts after the data's last day 2022-12-31",
        ),
        ({"walkforward.first_test_year": 2023}, r"walkforward.first_test_year 2023 is after the last test year 2022"),
    ],
)
def test_settings_that_leave_no_room_are_refused_naming_their_keys(sample_config, overrides, message):
    with pytest.raises(ConfigError, match=message):
        plan_windows(coerce_config(sample_config, overrides))


def test_the_cli_refuses_a_bad_window_with_exit_code_2_before_anything_runs(tmp_path):
    cfg = yaml.safe_load(TINY.read_text()) | {"walkforward": {"first_test_year": 1993}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "train.py"), "--config", str(path), "--mode", "walkforward"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "walkforward.first_test_year 1993" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "checkpoints").exists()


@pytest.mark.slow
def test_no_window_sees_its_test_year(ray_local, tiny_config, sample_market, tmp_path):
    """Prices after a window's validation period are changed: its normalisation statistics, policies, chosen
    checkpoint and desk gate are bit-identical; its test-period tracks are not (they trade the new prices)."""
    cfg = coerce_config(tiny_config, WF_TINY | {"training.num_env_runners": 0})
    window = plan_windows(cfg)[0]
    cut = int(np.searchsorted(sample_market.dates, np.datetime64(window.validation[1]), side="right"))
    rng = np.random.default_rng(3)
    values = sample_market.values.copy()
    values[cut:] *= np.exp(np.cumsum(rng.normal(0, 0.02, values[cut:].shape), axis=0))
    perturbed = dataclasses.replace(sample_market, values=values)
    runs = []
    for name, market in (("a", sample_market), ("b", perturbed)):
        cfg_w = window_config(cfg, window)
        data = window_data(cfg_w, market)
        runs.append((data, run_window(cfg_w, data, window, tmp_path / name, None, 2, [])))
    (da, a), (db, b) = runs
    for x, y in zip(da.features.asset_stats, db.features.asset_stats):
        np.testing.assert_array_equal(x, y)
    assert a.policies == b.policies and a.chosen.name == b.chosen.name
    gate = [json.loads((tmp_path / name / "desk_gate.json").read_text()) for name in ("a", "b")]
    assert gate[0] == gate[1]
    test_a = {t.key: t for t in a.tracks.tracks}
    assert any(not np.array_equal(test_a[t.key].values, t.values) for t in b.tracks.tracks)


def test_a_stitched_track_is_the_concatenation_of_its_test_periods():
    from collections import Counter

    from wealtharena.evaluation.backtest import Track, TrackKey
    from wealtharena.evaluation.walkforward import WindowTracks, stitch

    rng = np.random.default_rng(0)
    windows = []
    start = np.datetime64("2020-01-01")
    for w in range(3):
        n = 250 + w
        dates = start + np.arange(n + 1)
        values = 1e6 * np.cumprod(np.r_[1.0, 1 + rng.normal(0, 0.01, n)])
        tracks = [
            Track(
                TrackKey(kind, name),
                dates,
                values * (1 + i * 0.01),
                None,
                np.full(n, 10.0),
                events=Counter({"leverage": 1}),
            )
            for i, (kind, name) in enumerate((("agent", "balanced"), ("router", "hedge")))
        ]
        windows.append(WindowTracks(str(w), tracks))
        start = dates[-1]
    stitched = {t.key: t for t in stitch(windows, 1e6)}
    for key, track in stitched.items():
        parts = [next(t for t in w.tracks if t.key == key) for w in windows]
        np.testing.assert_array_equal(track.returns, np.concatenate([p.returns for p in parts]))
        assert track.values[0] == 1e6 and len(track.dates) == sum(len(p.returns) for p in parts) + 1
        assert track.events["leverage"] == 3


@pytest.mark.slow
def test_a_killed_walkforward_resumes_at_the_next_window(tmp_path):
    """kill -9 while the third window trains; the same command again reuses the two finished windows (same
    key), trains the third, writes the report and leaves no process behind."""
    cfg = yaml.safe_load(TINY.read_text())
    cfg["walkforward"] = {"first_test_year": 2020, "warm_iterations": 1, "bootstrap_reps": 200}
    cfg["tracking"] = {"mlflow": {"enabled": False}}
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(cfg))
    command = [
        sys.executable,
        str(PROJECT_ROOT / "train.py"),
        "--config",
        str(path),
        "--mode",
        "walkforward",
        "--no-progress",
    ]
    killed_env, killed_tag = tagged_env()
    proc = subprocess.Popen(
        command,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=killed_env,
    )
    deadline = time.monotonic() + 400
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "window 2021 (2/3)" in line:
                time.sleep(3)  # inside the third window
                os.killpg(proc.pid, signal.SIGKILL)
                break
            assert time.monotonic() < deadline
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert leftover_processes(killed_tag) == []  # Ray's processes die with their driver
    root = tmp_path / "checkpoints" / "tiny" / "walkforward-s0"
    done = {p.parent.name: p.stat().st_mtime for p in root.glob("*/result.json")}
    assert set(done) == {"2020", "2021"}
    env, tag = tagged_env()
    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert leftover_processes(tag) == []
    assert "window 2020 (1/3) reused" in again.stderr and "window 2021 (2/3) reused" in again.stderr
    assert "window 2022 (3/3) 1 iterations" in again.stderr
    assert {p.parent.name: p.stat().st_mtime for p in root.glob("*/result.json") if p.parent.name in done} == done
    assert (tmp_path / "checkpoints" / "tiny" / "walkforward" / "report.html").is_file()


@pytest.mark.slow
def test_windows_from_scratch_run_in_parallel_on_a_two_node_cluster(tmp_path, cache_dir):
    """walkforward.parallel with warm_start false: every window is a Ray task (sampling in the task), and the
    three windows land on both nodes of a local two-node cluster (a head with 1 CPU, a node with 2)."""
    cfg = yaml.safe_load(TINY.read_text())
    cfg["training"] |= {"num_env_runners": 0, "iterations": 1}
    cfg["data"] = {"cache": {"dir": str(cache_dir)}}
    cfg["tracking"] = {"mlflow": {"enabled": False}}
    cfg["walkforward"] = {"first_test_year": 2020, "warm_start": False, "parallel": True, "bootstrap_reps": 200}
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(cfg))
    job = PROJECT_ROOT / "tests" / "app" / "walkforward_cluster_job.py"
    proc = subprocess.run(
        [sys.executable, str(job), str(path), str(tmp_path)], capture_output=True, text=True, timeout=900
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("CLUSTER_RESULT ")), None)
    assert line is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(line.removeprefix("CLUSTER_RESULT "))
    assert result["rc"] == 0 and set(result["nodes"]) == {"2020", "2021", "2022"}
    assert set(result["nodes"].values()) == {result["head"], result["worker"]}
    assert os.path.isfile(result["report"])
