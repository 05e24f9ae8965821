"""The seed table of `python -m wealtharena.evaluation.learning` (the runs themselves: tests/training)."""

import numpy as np
import pandas as pd

from wealtharena.envs.rewards import TERMS
from wealtharena.evaluation.learning import render, render_terms


def _table(seeds: list[int]) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        for split in ("validation", "train"):
            for p in ("conservative", "balanced"):
                terms = {f"term.{t}": 0.1 * (seed + 1) for t in TERMS}
                rows.append(
                    {
                        "seed": seed,
                        "iteration": 40,
                        "split": split,
                        "policy": p,
                        "change": 0.7 * (seed + 1),
                        "se": 0.2,
                        "episodes": 36,
                        **terms,
                    }
                )
    return pd.DataFrame(rows)


def test_one_seed_renders_without_a_standard_error_over_seeds():
    text = render(_table([0]))
    assert "+0.70 (0.20)" in text and "+0.70 (nan)" in text and "1 of 1" in text
    assert "change of each weighted reward term" in render_terms(_table([0]))


def test_several_seeds_give_the_mean_and_its_standard_error():
    text = render(_table([0, 1, 2]))
    se = np.std([0.7, 1.4, 2.1], ddof=1) / np.sqrt(3)
    assert f"+1.40 ({se:.2f})" in text and "3 of 3" in text
