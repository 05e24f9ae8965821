"""How far training moved each policy: paired changes from the untrained start, per split, and their
tables over seeds (the study itself, over an experiment's checkpoints, is `wealtharena.app.learning`).

For every run of an experiment (`train.py --seeds ...` writes `<experiment>/<time>-s<seed>/`), each
agent acts deterministically over training-length episodes of a split (as validation does: from
cash, fresh risk and reward state, one episode starting every `stride` days), once with the
trained policies and once with the untrained start. The untrained asset-shared policy outputs
exactly 0 for every score (its last layers start at 0, tested in tests/training/test_models.py), so
the start is zero actions: the equal-weight book under each profile's limits, the same for every
seed. The change of each policy's mean episode reward comes with its standard error paired window
by window (the market of a window moves both runs alike), and across seeds with the mean, its
standard error over seeds and how many seeds rise. This is the table in the README; the train
split shows whether a policy learnt its reward in-sample, the other splits whether that carries
over. `--terms` splits each change into the seven weighted reward terms (they add up to it): what
a policy gained or gave up, e.g. momentum alignment against realised profit.
"""

from __future__ import annotations

import pandas as pd

from wealtharena.arrays import standard_error
from wealtharena.config import Config
from wealtharena.envs.data import EnvData
from wealtharena.envs.policy import EqualWeightPolicy, Policy
from wealtharena.envs.rewards import TERMS
from wealtharena.evaluation.episodes import EpisodeSet, paired_change, run_episodes


def paired_changes(
    cfg: Config, data: EnvData, policy: Policy, split: str, stride: int, start: EpisodeSet
) -> dict[str, dict[str, float]]:
    """profile -> {"change": mean change of episode reward from `start` (the untrained policies'
    episodes, `untrained_episodes`), "se": its paired SE, "term.<name>": the mean change of each
    weighted reward term (they add up to "change")}."""
    trained = run_episodes(cfg, data, policy, split, stride)
    before, before_terms, after_terms = start.per_window(), start.per_window_terms(), trained.per_window_terms()
    out = {}
    for p, rewards in trained.per_window().items():
        change, se = paired_change(before[p], rewards)
        term_change = (after_terms[p] - before_terms[p]).mean(axis=0)
        out[p] = {"change": change, "se": se, **{f"term.{t}": float(c) for t, c in zip(TERMS, term_change)}}
    return out


def untrained_episodes(cfg: Config, data: EnvData, split: str, stride: int) -> EpisodeSet:
    """The untrained (zero-action) policies' episodes of `split`."""
    return run_episodes(cfg, data, EqualWeightPolicy(data.market.n_assets), split, stride)


def render(table: pd.DataFrame) -> str:
    """Seeds down, splits across, `change (SE)` per policy; then mean (SE over seeds) and rises."""
    policies = list(dict.fromkeys(table["policy"]))
    lines = []
    for split, part in table.groupby("split", sort=False):
        lines.append(
            f"\n{split} split: change of mean episode reward from the untrained start "
            f"({int(part['episodes'].iloc[0])} episodes, paired SE in brackets)"
        )
        wide = part.pivot(index="seed", columns="policy", values=["change", "se"])
        out = pd.DataFrame(
            {p: [f"{c:+.2f} ({s:.2f})" for c, s in zip(wide["change"][p], wide["se"][p])] for p in policies},
            index=wide.index,
        )
        changes = wide["change"][policies]
        n = len(changes)
        sem = changes.apply(lambda c: standard_error(c.to_numpy()))
        out.loc["mean (SE over seeds)"] = [f"{changes[p].mean():+.2f} ({sem[p]:.2f})" for p in policies]
        out.loc["seeds that rise"] = [f"{int((changes[p] > 0).sum())} of {n}" for p in policies]
        lines.append(out.to_string())
    return "\n".join(lines)


def render_terms(table: pd.DataFrame) -> str:
    """Per split: the change of each weighted reward term, per policy and seed, then the mean over seeds."""
    cols = [f"term.{t}" for t in TERMS]
    lines = []
    for split, part in table.groupby("split", sort=False):
        lines.append(
            f"\n{split} split: change of each weighted reward term from the untrained start "
            "(episode sums, mean over episodes; the terms add up to the change)"
        )
        for policy, rows in part.groupby("policy", sort=False):
            out = rows.set_index("seed")[cols + ["change"]].rename(columns=lambda c: c.removeprefix("term."))
            out.loc["mean"] = out.mean()
            out.index = [f"{policy} {i}" if i != "mean" else f"{policy} mean" for i in out.index]
            lines.append(out.to_string(float_format=lambda x: f"{x:+.2f}"))
    return "\n".join(lines)
