"""Helpers several test modules share: a stand-in episode-start generator, a hand-built market-signals view
for routers, momentum rules per profile (a `Policy` for the desk), the risk gate's violation count, and the
processes a command left behind."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import numpy as np

from wealtharena.ensemble.routers.base import DayView
from wealtharena.ensemble.signals import MarketSignals
from wealtharena.evaluation.rules import rule_policy
from wealtharena.portfolio.risk import HALTED, REDUCING


class Start:
    """Stands in for the episode-start generator: always the given row."""

    def __init__(self, row: int):
        self.row = row

    def integers(self, lo, hi, size=None):
        assert lo <= self.row < hi
        return np.full(size, self.row) if size is not None else self.row


def market_signals(
    t: int = 30, n: int = 3, index_return: float = 0.0, vol: float = 0.15, pct: float = 0.5
) -> MarketSignals:
    z = np.zeros(t)
    return MarketSignals(
        dates=np.arange(t).astype("datetime64[D]"),
        index_return=np.full(t, index_return),
        vol=np.full(t, vol),
        vol_threshold=np.full(t, 0.2),
        vol_percentile=np.full(t, pct),
        trend=z,
        drawdown=z,
        dispersion=z,
        asset_returns=np.zeros((t, n)),
        momentum=np.zeros((t, n)),
        reversal=np.zeros((t, n)),
        low_volatility=np.zeros((t, n)),
        regime=np.zeros(t, dtype=int),
    )


def view(s: int, books: np.ndarray, returns: np.ndarray, signals: MarketSignals | None = None) -> DayView:
    signals = signals or market_signals()
    return DayView(s=s, t=s, books=books, past_returns=returns[:s], signals=signals.upto(s))


class ProfileRules:
    """A momentum rule per profile, stronger for the bolder ones (a `Policy`)."""

    def __init__(self, data, desk: bool):
        self.n = data.market.n_assets
        self.rules = {
            "conservative": rule_policy("ret_21:0.1", data, desk),
            "balanced": rule_policy("ret_63:0.2", data, desk),
            "aggressive": rule_policy("ret_21:0.4+ret_63:0.2", data, desk),
        }

    def __call__(self, obs, profiles):
        out = np.zeros((len(obs), self.n + 1), dtype=np.float32)
        prof = np.asarray(profiles)
        for p, rule in self.rules.items():
            rows = np.flatnonzero(prof == p)
            if len(rows):
                out[rows] = rule(obs[rows], [p] * len(rows))
        return out


def violations(rm, mr, out, t, current, state_before_halt):
    lim = rm.limits
    bad = 0
    for k in range(rm.k):
        w = out[k]
        bad += int((w < -1e-12).any()) + int((w > lim.max_position[k] + 1e-12).any())
        bad += int(w.sum() > lim.max_leverage[k] + 1e-9)
        big = np.flatnonzero(w > lim.corr_min_weight[k] + 1e-12)
        c = mr.corr_at(t)[np.ix_(big, big)]
        bad += int((c > lim.max_correlation[k]).any())
        lb = min(t + 1, 252)
        r = mr.returns[t - lb + 1 : t + 1] @ w
        if np.isfinite(lim.vol_target[k]):
            bad += int(np.std(r[-63:], ddof=1) * np.sqrt(252) > lim.vol_target[k] + 1e-9)
        bad += int(-np.percentile(r, 5) > lim.var_limit[k] + 1e-9)
        bad += int((w[rm.cooldown_until[k] > t] > 0).any())
        if rm.state[k] == HALTED:
            bad += int(w.sum() > 0)
        if rm.state[k] == REDUCING:
            bad += int((w > current[k] + 1e-9).any())
    return bad


TAG = "WEALTHARENA_TEST_TAG"


def tagged_env() -> tuple[dict[str, str], str]:
    """This process's environment plus a fresh tag: every process a command started with it (Ray's GCS, raylet
    and workers inherit the environment) carries the tag, also after the command has exited."""
    tag = uuid.uuid4().hex
    return {**os.environ, TAG: tag}, tag


def leftover_processes(tag: str, wait_s: float = 15.0) -> list[str]:
    """'pid name' of every live process whose environment holds `tag`, after waiting up to `wait_s` for them
    to go (Ray's processes exit a few seconds after their driver). Those still there are killed, so that a
    failing test leaves nothing running either."""
    needle = f"{TAG}={tag}".encode()
    deadline = time.monotonic() + wait_s
    while True:
        found: dict[int, str] = {}
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                if needle in (proc / "environ").read_bytes().split(b"\0"):
                    if (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z":
                        found[int(proc.name)] = (proc / "comm").read_text().strip()
            except OSError:
                continue
        if not found or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return [f"{pid} {name}" for pid, name in sorted(found.items())]
