"""Typed errors. Each one says what went wrong, where (file, key, ticker, date) and what to do.

The command-line entry points catch `WealthArenaError` and print its message with exit code 2.
"""

from __future__ import annotations


class WealthArenaError(Exception):
    """Base class of every error a user can cause and fix."""


class ConfigError(WealthArenaError):
    """The YAML config (or an override) is missing, malformed or has an impossible value."""


class DataError(WealthArenaError):
    """Market data could not be loaded or aligned (provider failure, unknown ticker, empty range)."""


class DataQualityError(DataError):
    """A data-quality rule was broken. Names the ticker, the date and the rule."""

    def __init__(self, rule: str, ticker: str, date: object | None, detail: str, source: str | None = None):
        self.rule = rule
        self.ticker = ticker
        self.date = date
        self.detail = detail
        self.source = source
        where = f" in {source}" if source else ""
        when = f" on {_fmt_date(date)}" if date is not None else ""
        super().__init__(f"data quality rule '{rule}' broken for ticker {ticker}{when}{where}: {detail}")


class CacheError(WealthArenaError):
    """The Redis cache is unreachable or holds a value that cannot be trusted."""


class RiskInputError(WealthArenaError, ValueError):
    """Target weights handed to the risk manager are malformed (NaN, negative, wrong shape)."""


class ActionError(WealthArenaError, ValueError):
    """An env received an action it cannot interpret (NaN, wrong shape)."""


class CheckpointError(WealthArenaError):
    """A checkpoint is missing, broken, or was written by a different config."""


class ClusterError(WealthArenaError):
    """The Ray cluster given by `--address` cannot be reached."""


def _fmt_date(value: object) -> str:
    text = str(value)
    return text[:10] if len(text) >= 10 and text[4] == "-" else text
