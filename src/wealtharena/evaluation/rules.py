"""Hand-written score rules through the training env: how much a reward pays for a simple rule.

    python -m wealtharena.evaluation.rules ret_21:0.1 ret_63:0.1 cash:mkt_vol_21:0.3
    python -m wealtharena.evaluation.rules --config production_config ret_21:0.1+cash:mkt_vol_21:0.3 --splits train

A rule is scores instead of a policy's actions, mapped to a portfolio exactly as actions are
(softmax(action_scale * tanh(score)), moved `rebalance_speed` of the way, through the risk
limits, with costs): `FEATURE:C` scores every asset C x its z-scored feature of the day (one of the
per-asset features, e.g. ret_21, vol_63, dist_high_252), `cash:FEATURE:C` scores cash C x a market
feature (e.g. mkt_vol_21); `+` adds parts. Every profile follows the rule over the same
training-length episodes as `wealtharena.evaluation.learning` (one starting every 63 days on the
train split, every `training.eval_stride` days elsewhere), and the table gives each profile's mean
episode reward beside the equal-weight book (all scores 0, the untrained policies' book). Use it
to see what a reward has to offer before training on it: a rule that gains on the train split but
not out of sample is one a policy will learn and lose.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd

from wealtharena.cli import add_split_arguments, run_cli, setup_logging
from wealtharena.config import Config, load_config
from wealtharena.envs.data import EnvData, load_env_data
from wealtharena.envs.policy import EqualWeightPolicy, Policy
from wealtharena.errors import ConfigError
from wealtharena.evaluation.episodes import TRAIN_STRIDE, run_episodes

log = logging.getLogger(__name__)


class ScoreRule:
    """A `Policy` from feature columns: asset scores sum C x feature over `asset_parts`, the cash score
    C x market feature over `cash_parts`."""

    def __init__(self, n_assets: int, asset_parts: list[tuple[np.ndarray, float]], cash_parts: list[tuple[int, float]]):
        self.n = n_assets
        self.asset_parts, self.cash_parts = asset_parts, cash_parts

    def __call__(self, obs: np.ndarray, profiles: Sequence[str]) -> np.ndarray:
        scores = np.zeros((obs.shape[0], self.n + 1), dtype=np.float32)
        for cols, coef in self.asset_parts:
            scores[:, : self.n] += coef * obs[:, cols]
        for col, coef in self.cash_parts:
            scores[:, self.n] += coef * obs[:, col]
        return scores


def rule_policy(spec: str, data: EnvData, desk: bool) -> Policy:
    """`spec` (e.g. "ret_21:0.1+cash:mkt_vol_21:0.3") -> a `Policy` giving those scores."""
    names = data.observation_names(desk)
    index = {n: i for i, n in enumerate(names)}
    tickers = data.market.tickers
    asset_parts: list[tuple[np.ndarray, float]] = []
    cash_parts: list[tuple[int, float]] = []
    for part in spec.split("+"):
        fields = part.split(":")
        try:
            coef = float(fields[-1])
        except ValueError:
            coef = None
        if coef is None or len(fields) not in (2, 3) or (len(fields) == 3 and fields[0] != "cash"):
            raise ConfigError(
                f"rule '{spec}': part '{part}' is not FEATURE:C or cash:FEATURE:C "
                "(e.g. ret_21:0.1 or cash:mkt_vol_21:0.3)"
            )
        if len(fields) == 3:
            col = index.get(f"market.{fields[1]}")
            if col is None:
                raise ConfigError(
                    f"rule '{spec}': no market feature '{fields[1]}'; known: {', '.join(data.features.market_names)}"
                )
            cash_parts.append((col, coef))
        else:
            cols = [index.get(f"{fields[0]}.{t}.t-0") for t in tickers]
            if None in cols:
                raise ConfigError(
                    f"rule '{spec}': no per-asset feature '{fields[0]}'; known: {', '.join(data.features.asset_names)}"
                )
            asset_parts.append((np.array(cols), coef))
    return ScoreRule(len(tickers), asset_parts, cash_parts)


def rules_table(
    cfg: Config, data: EnvData, specs: list[str], splits: list[str], train_stride: int = TRAIN_STRIDE
) -> pd.DataFrame:
    """Rows (rule, split), columns the profiles: mean episode reward; the first rule is equal weight."""
    policies: dict[str, Policy] = {"equal weight": EqualWeightPolicy(data.market.n_assets)}
    for spec in specs:
        policies[spec] = rule_policy(spec, data, cfg.env.desk_observation)  # every spec checked before any run
    rows = []
    for name, policy in policies.items():
        for split in splits:
            stride = train_stride if split == "train" else cfg.training.eval_stride
            by_policy = run_episodes(cfg, data, policy, split, stride).by_policy()
            rows.append({"rule": name, "split": split, **{p: m for p, (m, _) in by_policy.items()}})
        log.info("rule %s done", name)
    return pd.DataFrame(rows)


def render(table: pd.DataFrame) -> str:
    """One block per split: each rule's mean episode reward per profile and its change from equal weight."""
    profiles = [c for c in table.columns if c not in ("rule", "split")]
    lines = []
    for split, part in table.groupby("split", sort=False):
        part = part.set_index("rule")[profiles]
        base = part.loc["equal weight"]
        out = pd.DataFrame(
            {
                p: [
                    f"{v:7.2f}" if b == "equal weight" else f"{v:7.2f} ({v - base[p]:+.2f})" for b, v in part[p].items()
                ]
                for p in profiles
            },
            index=part.index,
        )
        lines.append(f"\n{split} split: mean episode reward per profile (change from equal weight)")
        lines.append(out.to_string())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    p.add_argument("rules", nargs="+", help="FEATURE:C or cash:FEATURE:C, parts joined by +")
    p.add_argument("--config", help="YAML config: a path, or a name under config/ (default: config/default.yaml)")
    add_split_arguments(p, ["train", "validation"], TRAIN_STRIDE)
    args = p.parse_args(argv)
    setup_logging()
    cfg = load_config(args.config)
    table = rules_table(cfg, load_env_data(cfg), args.rules, args.splits, args.train_stride)
    print(render(table))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
