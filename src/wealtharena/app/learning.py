"""How far training moved each policy of every seed of an experiment, per split (the README's table).

    python -m wealtharena.app.learning checkpoints/default                 # latest checkpoints
    python -m wealtharena.app.learning checkpoints/default --iteration 40 --splits validation train test
    python -m wealtharena.app.learning checkpoints/default --terms      # and which reward terms moved

Each run's checkpoint (its own config and data) is replayed against the untrained start as
`evaluation.learning` describes; the table is printed and written as `learning-<iteration>.csv`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

from wealtharena.cli import add_split_arguments, run_cli, setup_logging
from wealtharena.config import config_from_dict
from wealtharena.envs.data import EnvData, load_env_data
from wealtharena.errors import ConfigError
from wealtharena.evaluation.episodes import TRAIN_STRIDE, EpisodeSet
from wealtharena.evaluation.learning import paired_changes, render, render_terms, untrained_episodes
from wealtharena.training.checkpoints import read_meta, run_checkpoint, seed_runs
from wealtharena.training.inference import TrainedPolicy

log = logging.getLogger(__name__)


def learning_table(
    experiment_dir: Path, iteration: int | None, splits: list[str], train_stride: int = TRAIN_STRIDE
) -> pd.DataFrame:
    """One row per (seed, split, policy): change, paired SE, episodes; from each run's own config."""
    rows = []
    starts: dict[tuple[str, str, int], EpisodeSet] = {}
    loaded: dict[str, EnvData] = {}
    for seed, run in seed_runs(experiment_dir).items():
        path = run_checkpoint(run, iteration)
        meta = read_meta(path)
        cfg = config_from_dict(meta.config, source=str(path / "wealtharena.json"))
        if cfg.training.algorithm == "sac" or cfg.training.network != "asset_shared":
            raise ConfigError(
                f"{run}: the learning table needs PPO or A2C on the asset-shared network, whose "
                "untrained policy is exactly the zero-action book (this run uses "
                f"{cfg.training.algorithm} / {cfg.training.network})"
            )
        data = loaded.get(cfg.fingerprint()) or loaded.setdefault(cfg.fingerprint(), load_env_data(cfg))
        policy = TrainedPolicy.from_checkpoint(path, cfg)
        for split in splits:
            stride = train_stride if split == "train" else cfg.training.eval_stride
            key = (cfg.fingerprint(), split, stride)
            if key not in starts:
                starts[key] = untrained_episodes(cfg, data, split, stride)
            for p, changes in paired_changes(cfg, data, policy, split, stride, starts[key]).items():
                rows.append(
                    {
                        "seed": seed,
                        "iteration": meta.iteration,
                        "split": split,
                        "policy": p,
                        **changes,
                        "episodes": len(starts[key].starts),
                    }
                )
        log.info("seed %d (%s) done", seed, path)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("experiment", type=Path, help="an experiment folder: checkpoints/<experiment>")
    p.add_argument("--iteration", type=int, help="checkpoint iteration of every run (default: each run's latest)")
    add_split_arguments(p, ["validation", "train"], TRAIN_STRIDE)
    p.add_argument(
        "--terms",
        action="store_true",
        help="also print each change split into the weighted reward terms (always in the CSV)",
    )
    args = p.parse_args(argv)
    setup_logging()
    table = learning_table(args.experiment, args.iteration, args.splits, args.train_stride)
    print(render(table))
    if args.terms:
        print(render_terms(table))
    name = f"learning-{args.iteration if args.iteration is not None else 'latest'}.csv"
    table.to_csv(args.experiment / name, index=False)
    print(f"\nwrote {args.experiment / name}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
