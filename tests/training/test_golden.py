"""The first iterations of the default run, pinned: code or dependency changes that move them are seen."""

import json

import pytest

from tests.training.golden_run import GOLDEN, run


@pytest.mark.slow
def test_default_run_reproduces_its_golden_numbers(tmp_path):
    want = json.loads(GOLDEN.read_text())
    got = run(tmp_path)
    assert [v["iteration"] for v in got["validation"]] == [v["iteration"] for v in want["validation"]]
    for g, w in zip(got["validation"] + got["train_return"], want["validation"] + want["train_return"]):
        for key in ("policy_episode_reward", "policy_return", "mean_sharpe"):
            if key in w:
                assert g[key] == pytest.approx(w[key], rel=1e-9, abs=1e-9), (
                    f"{key} at iteration {w['iteration']} moved; if the change is meant, regenerate with "
                    "python tests/training/golden_run.py and say why in the commit"
                )
