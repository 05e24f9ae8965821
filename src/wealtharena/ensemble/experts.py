"""Expert sleeves: strategies that run every day of a split whether or not they hold the fund's capital.

Each sleeve has, for every step of the split, the book it decided at the close (after its own risk
gate) and its realised return over the next day net of its own costs. The experts are the trained
agents (deterministic actions, each through its own profile's limits; agents that act identically are
one expert, standing for all of them), cash, and the classic portfolios of the report (equal weight,
inverse volatility, minimum variance, hierarchical risk parity, fit on the four years before the split).
The classic sleeves run under the fund profile's limits (the report's classic rows run without any): a
router learns from what a sleeve can deliver inside the fund, not from an unconstrained record the
fund's gate would then cut.

Names in the config's weight tables refer to experts by profile (`aggressive`: its experts, the
weight split equally among them), by agent id, as `cash`, or by a classic name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from wealtharena.config import CLASSIC_EXPERTS, Config
from wealtharena.envs.data import EnvData
from wealtharena.errors import ConfigError
from wealtharena.evaluation.backtest import Track, classic_weights, run_books

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExpertSet:
    """E sleeves over the S steps of a split (step s decides at data row `rows[s]`)."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]  # "agent", "cash" or "classic"
    profiles: tuple[str | None, ...]
    members: tuple[tuple[str, ...], ...]  # the agents an agent expert stands for
    books: np.ndarray  # [S, E, N] decision weights at each step's close
    returns: np.ndarray  # [S, E] net return of step s (close s -> close s + 1)
    rows: np.ndarray  # [S + 1] data rows of the closes
    split: str

    @property
    def n(self) -> int:
        return len(self.names)

    @property
    def steps(self) -> int:
        return len(self.returns)

    def agents(self) -> list[int]:
        return [e for e, k in enumerate(self.kinds) if k == "agent"]

    def resolve(self, table: dict[str, float], key: str) -> np.ndarray:
        """Capital weights [E] from a table keyed by expert names (see the module docstring); a name that
        is no expert is a `ConfigError` naming `key` and the names it may use."""
        out = np.zeros(self.n)
        for name, weight in table.items():
            targets = self.select(name)
            if not targets:
                raise ConfigError(f"{key}: '{name}' is no expert of this desk; use one of {self.known_names()}")
            out[targets] += weight / len(targets)
        return out

    def select(self, name: str) -> list[int]:
        """The experts a name refers to: a profile's experts, the expert of an agent id, or a sleeve's name."""
        if name in self.names:
            return [self.names.index(name)]
        by_profile = [e for e, p in enumerate(self.profiles) if p == name and self.kinds[e] == "agent"]
        if by_profile:
            return by_profile
        return [e for e, m in enumerate(self.members) if name in m]

    def known_names(self) -> list[str]:
        profiles = [p for p, k in zip(self.profiles, self.kinds) if k == "agent" and p]
        agents = [a for m in self.members for a in m]
        return list(dict.fromkeys([*profiles, *agents, *self.names]))


def expert_name(track: Track, cfg: Config) -> str:
    """An agent expert's name: its profile when it stands for every agent of that profile, else its agents."""
    of_profile = tuple(a.id for a in cfg.agents if a.profile == track.profile)
    who = track.members or (track.name,)
    return track.profile if track.profile and who == of_profile else "/".join(who)


def classic_sleeves(cfg: Config, data: EnvData, split: str) -> dict[str, Track]:
    """The configured classic portfolios on `split`, fit before it, under the fund profile's limits."""
    wanted = [e for e in cfg.ensemble.experts if e in CLASSIC_EXPERTS]
    if not wanted:
        return {}
    n = data.market.n_assets
    targets = {"equal_weight": np.full(n, 1.0 / n), **classic_weights(data, data.usable_rows(split)[0])}
    risk = cfg.profile_risk(cfg.ensemble.fund_profile)
    tracks = run_books(cfg, data, {e: targets[e] for e in wanted}, split, risk=risk, kind="expert")
    return {t.name: t for t in tracks}


def build_experts(cfg: Config, data: EnvData, split: str, agents: list[Track]) -> ExpertSet:
    """Sleeves from the split's agent tracks (one per distinct behaviour), cash and the classic portfolios
    (`classic_sleeves`), in `cfg.ensemble.experts` order."""
    lo, hi = data.usable_rows(split)
    steps = hi - lo
    n = data.market.n_assets
    classic = classic_sleeves(cfg, data, split)
    names, kinds, profiles, members, books, returns = [], [], [], [], [], []

    def add(name: str, kind: str, profile: str | None, who: tuple[str, ...], track: Track | None) -> None:
        w = np.zeros((steps, n))
        r = np.zeros(steps)
        if track is not None:  # an agent that left the episode (halted) holds cash for the rest of the split
            w[: len(track.returns)] = track.weights if track.weights is not None else 0.0
            r[: len(track.returns)] = track.returns
        names.append(name)
        kinds.append(kind)
        profiles.append(profile)
        members.append(who)
        books.append(w)
        returns.append(r)

    for expert in cfg.ensemble.experts:
        if expert == "agents":
            for tr in agents:
                add(expert_name(tr, cfg), "agent", tr.profile, tr.members or (tr.name,), tr)
        elif expert == "cash":
            add("cash", "cash", None, (), None)
        else:
            add(expert, "classic", None, (), classic[expert])
    identical = [tr.members for tr in agents if len(tr.members) > 1]
    if identical:
        log.info(
            "desk on the %s split: %s act identically and count as one expert each",
            split,
            "; ".join(" = ".join(m) for m in identical),
        )
    return ExpertSet(
        names=tuple(names),
        kinds=tuple(kinds),
        profiles=tuple(profiles),
        members=tuple(members),
        books=np.stack(books, axis=1),
        returns=np.stack(returns, axis=1),
        rows=np.arange(lo, hi + 1),
        split=split,
    )
