"""The desk on one split: experts, the gate's fit on validation, every router and baseline through the fund.

    desk = run_desk(cfg, data, policy, split, backtest, out_dir)    # after evaluation.backtest.backtest

Rows it adds to the evaluation table (kind "desk" for routers, "baseline" for the desk's baselines):
each configured router; equal capital across the agents; the FinRL-style picker; equal weight across
stocks under the fund's limits; the agent chosen on validation (the best validation Sharpe, the honest
single-agent choice), held by the fund under its limits and, as it trades alone, under its own profile's;
and the best agent in hindsight on this split (unattainable). The gate's row is
marked in-sample on the split it was fit on. `routing.jsonl` (one line per day and router: date, label
or regime, capital weights, explanation), `meetings.json` and `gate.json` go to `out_dir`; the gate's
fit record also goes into the checkpoint folder (`out_dir`'s parent), and so do the agents' daily tracks
on the validation split (`desk_agents-validation.npz`, keyed by the config, the market data and the
policy's weights), so a later evaluation of that checkpoint reuses them instead of replaying the agents.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from wealtharena.config import REGIMES, Config
from wealtharena.ensemble.experts import ExpertSet, build_experts
from wealtharena.ensemble.fund import FundRun, run_funds
from wealtharena.ensemble.routers.base import Router
from wealtharena.ensemble.routers.baselines import EqualCapital, FixedCapital, Picker
from wealtharena.ensemble.routers.gate import GateFit, LearntGate, cost_per_unit, fit_gate
from wealtharena.ensemble.routers.hedge import FixedShare
from wealtharena.ensemble.routers.meeting import ExpertMeeting
from wealtharena.ensemble.routers.ranking import AgentScorer, FactorScorer, RankingRouter, StockScorer
from wealtharena.ensemble.routers.sentiment import SentimentRouter
from wealtharena.ensemble.routers.volatility import VolatilityRegime
from wealtharena.ensemble.signals import MarketSignals, build_signals
from wealtharena.envs.data import EnvData
from wealtharena.envs.policy import Policy
from wealtharena.errors import ConfigError
from wealtharena.evaluation.backtest import Backtest, Track, distinct, run_agents, run_books
from wealtharena.portfolio import metrics

log = logging.getLogger(__name__)

MIN_FIT_DAYS = 63  # the gate needs at least a quarter of validation days
GATE_FILE = "desk_gate.json"
TRACKS_FILE = "desk_agents-{split}.npz"  # the agents' tracks on the fit split, beside the checkpoint
CHOSEN = "desk baseline: agent chosen on validation"  # held by the fund, under its limits
CHOSEN_ALONE = f"{CHOSEN}, own limits"  # the same agent's own track


@dataclass
class DeskResult:
    """The desk's rows and everything behind them."""

    split: str
    dates: np.ndarray  # [S + 1]
    experts: tuple[str, ...]
    runs: list[FundRun]
    tracks: list[Track]
    regimes: list[str]  # [S] the volatility regime of each day (for the plots' shading)
    meetings: list[dict[str, Any]] = field(default_factory=list)
    gate: GateFit | None = None
    chosen_agent: str | None = None
    hindsight_agent: str | None = None
    notes: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)

    def router_runs(self) -> list[FundRun]:
        return [r for r in self.runs if r.name in ROUTER_LABELS]

    def summary(self) -> str:
        lines = [
            f"\nDesk on the {self.split} split: experts {', '.join(self.experts)}; agent chosen on validation: "
            f"{self.chosen_agent}; best agent in hindsight: {self.hindsight_agent}"
        ]
        lines += [f"  {note}" for note in self.notes]
        rounds, desk, index = round_returns(self.meetings)
        if rounds:
            lines.append(
                f"  expert meetings: {len(rounds)} rounds ({sum(m['decision'] == 'consensus' for m in rounds)} "
                f"consensus, {sum(m['decision'] == 'vote' for m in rounds)} votes); mean round return "
                f"{desk.mean():+.2%} against S&P 500 buy-and-hold {index.mean():+.2%} (beating it in "
                f"{int((desk > index).sum())} of {len(rounds)}); the round table is in report.html"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "experts": list(self.experts),
            "chosen_agent": self.chosen_agent,
            "hindsight_agent": self.hindsight_agent,
            "notes": self.notes,
            "gate": self.gate.to_dict() if self.gate is not None else None,
            "meetings": self.meetings,
            "events": {r.name: r.events for r in self.runs},
        }


ROUTER_LABELS = {
    "hedge": "desk: hedge (Fixed Share)",
    "meeting": "desk: expert meeting",
    "volatility": "desk: volatility regimes",
    "gate": "desk: learnt gate",
    "sentiment": "desk: sentiment",
    "ranking": "desk: ranking (top K)",
}


def round_returns(meetings: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """The meetings whose round has ended, the desk's return over each round and the index's."""
    rows = [m for m in meetings if "desk_return" in m]
    return rows, np.array([m["desk_return"] for m in rows]), np.array([m["index_return"] for m in rows])


def round_table_text(meetings: list[dict[str, Any]]) -> str:
    rows, desk, index = round_returns(meetings)
    if not rows:
        return ""
    head = f"{'round':>5} {'date':>10} {'decision':>9} {'agreement':>9} {'desk':>8} {'S&P 500':>8} {'diff':>8}"
    lines = ["Expert meetings (desk return over the round against S&P 500 buy-and-hold, costs included):", head]
    for i, m in enumerate(rows, 1):
        lines.append(
            f"{i:>5} {m['date']:>10} {m['decision']:>9} {m['agreement']:>9.2f} {m['desk_return']:>+8.2%} "
            f"{m['index_return']:>+8.2%} {m['desk_return'] - m['index_return']:>+8.2%}"
        )
    lines.append(
        f"{'mean':>5} {'':>10} {'':>9} {'':>9} {desk.mean():>+8.2%} {index.mean():>+8.2%} "
        f"{(desk - index).mean():>+8.2%}   (rounds beating the index: {int((desk > index).sum())} of "
        f"{len(rows)})"
    )
    return "\n".join(lines)


def sharpe_of(returns: np.ndarray) -> float:
    value = metrics.sharpe(returns)
    return value if np.isfinite(value) else -np.inf


def experts_for(agent_tracks: list[Track], cfg: Config, data: EnvData, split: str, like: ExpertSet) -> ExpertSet:
    """The sleeves of `split` from its agents' tracks (one per distinct behaviour there), with the same
    experts as `like` (an expert standing for several agents takes its first agent's track)."""
    of_agent = {a: t for t in agent_tracks for a in (t.members or (t.name,))}
    agents = [dataclasses.replace(of_agent[like.members[e][0]], members=like.members[e]) for e in like.agents()]
    return build_experts(cfg, data, split, agents)


def tracks_key(cfg: Config, data: EnvData, policy: Policy, split: str) -> str | None:
    """What the agents' tracks on `split` depend on: the market data, every setting of the simulation, and
    the policy's weights (None for a policy without a `fingerprint`: nothing is stored for it)."""
    fingerprint = getattr(policy, "fingerprint", None)
    if fingerprint is None:
        return None
    parts = cfg.model_dump(mode="json", include={"data", "features", "env", "risk", "profiles", "agents"})
    parts |= {"split": split, "market": data.market.fingerprint(), "policy": fingerprint()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def save_tracks(path: Path, key: str, tracks: list[Track]) -> None:
    """The agents' tracks as arrays (no pickle), written to a temporary file first so that an interrupted
    write never leaves a half file under `path`."""
    arrays: dict[str, np.ndarray] = {}
    meta = []
    for i, t in enumerate(tracks):
        arrays |= {f"dates_{i}": t.dates, f"values_{i}": t.values, f"costs_{i}": t.costs}
        if t.weights is not None:
            arrays[f"weights_{i}"] = t.weights
        if t.rewards is not None:
            arrays[f"rewards_{i}"] = t.rewards
        meta.append({"name": t.name, "profile": t.profile, "members": list(t.members), "events": dict(t.events)})
    arrays["meta"] = np.array(json.dumps({"key": key, "tracks": meta}))
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, allow_pickle=False, **arrays)
    tmp.replace(path)


def load_tracks(path: Path, key: str) -> list[Track] | None:
    """The tracks `save_tracks` wrote under `key`; None (and a log line saying why) when there are none, they
    were made for other data, settings or weights, or the file cannot be read."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta["key"] != key:
                log.info("%s was made for other data, settings or weights: running the agents again", path)
                return None
            return [
                Track(
                    name=m["name"],
                    kind="agent",
                    dates=z[f"dates_{i}"],
                    values=z[f"values_{i}"],
                    weights=z[f"weights_{i}"] if f"weights_{i}" in z else None,
                    costs=z[f"costs_{i}"],
                    rewards=z[f"rewards_{i}"] if f"rewards_{i}" in z else None,
                    events=Counter(m["events"]),
                    profile=m["profile"],
                    members=tuple(m["members"]),
                )
                for i, m in enumerate(meta["tracks"])
            ]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        log.warning("cannot read %s (%s): running the agents again and replacing it", path, exc)
        return None


def fit_split_agents(
    cfg: Config, data: EnvData, policy: Policy, split: str, bt: Backtest, checkpoint: Path | None
) -> list[Track]:
    """The agents' tracks on the gate's fit split, one per distinct behaviour: `bt`'s when it is that split,
    else those stored in `checkpoint` for the same data, settings and weights, else run now (and stored)."""
    fit_split = cfg.ensemble.gate.fit_split
    key = tracks_key(cfg, data, policy, fit_split) if checkpoint is not None else None
    path = checkpoint / TRACKS_FILE.format(split=fit_split) if checkpoint is not None else None
    tracks = bt.agents() if split == fit_split else None
    if tracks is None and path is not None and key is not None:
        tracks = load_tracks(path, key)
        if tracks is not None:
            log.info("the agents' %s tracks: %s (same data, settings and weights)", fit_split, path)
            return tracks
    if tracks is None:
        tracks = distinct(run_agents(cfg, data, policy, fit_split))
    if path is not None and key is not None and path.parent.is_dir():
        save_tracks(path, key, tracks)
    return tracks


def check_inputs(cfg: Config, data: EnvData) -> None:
    """Typed errors, before any run, for what the config alone cannot check."""
    ens = cfg.ensemble
    n = data.market.n_assets
    if "ranking" in ens.routers and ens.ranking.top_k > n:
        raise ConfigError(
            f"ensemble.ranking.top_k is {ens.ranking.top_k} but the universe has {n} stocks: give at most {n}"
        )
    if "gate" in ens.routers:
        lo, hi = data.usable_rows(ens.gate.fit_split)
        if hi - lo < MIN_FIT_DAYS:
            raise ConfigError(
                f"ensemble.gate is fit on the validation split, which has {hi - lo} usable days "
                f"(data.splits.validation): give it at least {MIN_FIT_DAYS}, or drop 'gate' from "
                "ensemble.routers"
            )


def build_routers(cfg: Config, experts: ExpertSet, tickers: tuple[str, ...], gate: GateFit | None) -> list[Router]:
    ens = cfg.ensemble
    names = experts.names
    routers: list[Router] = []
    for name in ens.routers:
        if name == "hedge":
            routers.append(FixedShare(ens.hedge, names))
        elif name == "meeting":
            routers.append(ExpertMeeting(ens.meeting, names, tickers))
        elif name == "volatility":
            table = {r: experts.resolve(ens.volatility.table[r], f"ensemble.volatility.table.{r}") for r in REGIMES}
            routers.append(VolatilityRegime(table, names))
        elif name == "gate":
            assert gate is not None
            routers.append(LearntGate(gate, names))
        elif name == "sentiment":
            capital = {
                "optimistic": experts.resolve(ens.sentiment.optimistic, "ensemble.sentiment.optimistic"),
                "pessimistic": experts.resolve(ens.sentiment.pessimistic, "ensemble.sentiment.pessimistic"),
            }
            routers.append(SentimentRouter(ens.sentiment, capital, names))
        elif name == "ranking":
            scorers: list[StockScorer] = [AgentScorer(names[e], e) for e in experts.agents()]
            scorers += [FactorScorer(f) for f in ens.ranking.factors]
            routers.append(RankingRouter(ens.ranking, scorers, tickers))
    return routers


def one_hot(experts: ExpertSet, index: int) -> np.ndarray:
    return np.eye(experts.n)[index]


def run_desk(
    cfg: Config,
    data: EnvData,
    policy: Policy,
    split: str,
    bt: Backtest,
    out_dir: Path,
    checkpoint: Path | None = None,
) -> DeskResult:
    """Every router and the desk's baselines on `split` (see the module docstring). With `checkpoint` (the
    folder `policy` was loaded from) the agents' tracks on the fit split are kept there and reused."""
    ens = cfg.ensemble
    check_inputs(cfg, data)
    signals = build_signals(data.market, ens.volatility)
    experts = build_experts(cfg, data, split, bt.agents())
    fit_split = ens.gate.fit_split
    fit_tracks = fit_split_agents(cfg, data, policy, split, bt, checkpoint)
    validation = experts if split == fit_split else experts_for(fit_tracks, cfg, data, fit_split, like=experts)
    agents = experts.agents()
    chosen = agents[int(np.argmax([sharpe_of(validation.returns[:, e]) for e in agents]))]
    hindsight = agents[int(np.argmax([sharpe_of(experts.returns[:, e]) for e in agents]))]
    notes = []
    gate = None
    if "gate" in ens.routers:
        rows = validation.rows
        start, end = str(data.market.dates[rows[0]]), str(data.market.dates[rows[-1]])
        gate = fit_gate(ens.gate, validation, signals, cost_per_unit(cfg, data, rows[:-1]), start, end)
        notes.append(
            f"gate fit on {fit_split} {start} .. {end} ({gate.steps} days): mean daily log return "
            f"{gate.mean_log_return:+.5f} in-sample, {gate.iterations} L-BFGS iterations"
            + (" (this split: in-sample)" if split == fit_split else "")
        )
    notes += llm_notes(cfg, data, split)
    routers = build_routers(cfg, experts, data.market.tickers, gate)
    counts = [len(experts.members[e]) for e in agents]
    names = experts.names
    baselines: list[Router] = [
        EqualCapital(agents, counts, experts.n, names, ens.meeting.round_days),
        Picker(agents, experts.n, names, ens.picker_days),
        FixedCapital(
            "agent chosen on validation",
            one_hot(experts, chosen),
            names,
            f"{names[chosen]}: the best validation Sharpe",
        ),
        FixedCapital(
            "best agent in hindsight",
            one_hot(experts, hindsight),
            names,
            f"{names[hindsight]}: the best Sharpe on this split, known only afterwards",
        ),
    ]
    runs = run_funds(cfg, data, experts, signals, [*routers, *baselines], ens.fund_profile)
    dates = data.market.dates[experts.rows]
    tracks = []
    for run in runs:
        is_router = run.name in ROUTER_LABELS
        note = ""
        if run.name == "gate" and split == fit_split:
            note = "in-sample"
        elif run.name == "best agent in hindsight":
            note = "unattainable"
        tracks.append(
            Track(
                name=ROUTER_LABELS.get(run.name, f"desk baseline: {run.name}"),
                kind="desk" if is_router else "baseline",
                dates=dates,
                values=run.values,
                weights=run.weights,
                costs=run.costs,
                profile=ens.fund_profile,
                note=note,
            )
        )
    # the chosen agent as it trades alone, under its own profile's limits (the row above is held by the fund)
    alone = experts.members[chosen][0]
    own = next(t for t in bt.agents() if alone in (t.members or (t.name,)))
    tracks.append(dataclasses.replace(own, name=CHOSEN_ALONE, kind="baseline", members=()))
    # the like-for-like baseline: equal weight across the stocks under the fund's own limits and costs
    n = data.market.n_assets
    tracks += run_books(
        cfg,
        data,
        {"desk baseline: equal weight (fund limits)": np.full(n, 1.0 / n)},
        split,
        risk=cfg.profile_risk(ens.fund_profile),
        kind="baseline",
    )
    meetings = next((r.meetings for r in routers if isinstance(r, ExpertMeeting)), [])
    meeting_run = next((r for r in runs if r.name == "meeting"), None)
    if meeting_run is not None:
        add_round_returns(meetings, meeting_run, signals, experts)
    result = DeskResult(
        split=split,
        dates=dates,
        experts=names,
        runs=runs,
        tracks=tracks,
        regimes=[REGIMES[int(signals.regime[t])] for t in experts.rows[:-1]],
        meetings=meetings,
        gate=gate,
        chosen_agent=names[chosen],
        hindsight_agent=names[hindsight],
        notes=notes,
    )
    result.files = write_logs(result, out_dir)
    return result


def llm_notes(cfg: Config, data: EnvData, split: str) -> list[str]:
    """A warning when the sentiment router's language model may have read about the days it labels."""
    llm = cfg.ensemble.sentiment.llm
    if "sentiment" not in cfg.ensemble.routers or llm is None:
        return []
    start = date.fromisoformat(str(data.market.dates[data.usable_rows(split)[0]]))
    if llm.training_cutoff is None:
        text = (
            f"the sentiment model's training cutoff is not configured (ensemble.sentiment.llm.training_cutoff): "
            f"whether it has read about the {split} split's days is unknown"
        )
    elif llm.training_cutoff > start:
        text = (
            f"the sentiment model's training cutoff {llm.training_cutoff} is after the {split} split's start "
            f"{start}: it has read about the days it labels, so its row is not out of sample"
        )
    else:
        return []
    log.warning("%s", text)
    return [text]


def add_round_returns(meetings: list[dict[str, Any]], run: FundRun, signals: MarketSignals, experts: ExpertSet) -> None:
    """Each meeting's round: the desk's return from this meeting to the next (or the split's end) against the
    S&P 500 buy-and-hold over the same days."""
    bounds = [m["step"] for m in meetings] + [experts.steps]
    index = np.cumprod(1.0 + signals.index_return)
    for m, a, b in zip(meetings, bounds[:-1], bounds[1:]):
        m["desk_return"] = float(run.values[b] / run.values[a] - 1.0)
        m["index_return"] = float(index[experts.rows[b]] / index[experts.rows[a]] - 1.0)
        m["end"] = str(signals.dates[experts.rows[b]])


def write_logs(desk: DeskResult, out_dir: Path) -> dict[str, Path]:
    """routing.jsonl (every day, every router), meetings.json, gate.json; the gate's record also beside the
    checkpoint it was fit for."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"routing": out_dir / "routing.jsonl"}
    with files["routing"].open("w") as fh:
        for run in desk.runs:
            for s in range(len(run.labels)):
                weights = {c: round(float(w), 6) for c, w in zip(run.columns, run.capital[s]) if w > 5e-7}
                fh.write(
                    json.dumps(
                        {
                            "date": str(desk.dates[s]),
                            "router": run.name,
                            "regime": desk.regimes[s],
                            "label": run.labels[s],
                            "weights": weights,
                            "explanation": run.explanations[s],
                        }
                    )
                    + "\n"
                )
    if desk.meetings:
        files["meetings"] = out_dir / "meetings.json"
        files["meetings"].write_text(json.dumps(desk.meetings, indent=1))
    if desk.gate is not None:
        files["gate"] = out_dir / "gate.json"
        text = json.dumps(desk.gate.to_dict(), indent=1)
        files["gate"].write_text(text)
        (out_dir.parent / GATE_FILE).write_text(text)
    return files
