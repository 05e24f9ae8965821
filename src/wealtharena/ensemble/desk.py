"""The desk on one split: experts, the gate's fit on validation, every router and baseline through the fund.

    desk = run_desk(cfg, data, policy, split, backtest, out_dir)    # after evaluation.backtest.backtest

Rows it adds to the evaluation table (every row a `TrackKey`: kind "router" for the routers,
"desk_baseline" for the desk's baselines): each configured router; equal capital across the agents; the
FinRL-style picker; equal weight across stocks under the fund's limits; the agent chosen on validation
(the best validation Sharpe, the honest single-agent choice), held by the fund under its limits and, as it
trades alone, under its own profile's; and the best agent in hindsight on this split (unattainable). The
gate's row is marked in-sample on the split it was fit on. Each row counts the risk events of its fund's
gate. What the desk writes (its decision logs, the agents' validation tracks beside the checkpoint) is
`ensemble.records`; its report sections and text are `ensemble.report`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from wealtharena.config import REGIMES, Config
from wealtharena.ensemble.experts import ExpertSet, build_experts
from wealtharena.ensemble.fund import FundRun, run_funds
from wealtharena.ensemble.records import TRACKS_FILE, load_tracks, save_tracks, tracks_key, write_logs
from wealtharena.ensemble.routers.base import Router
from wealtharena.ensemble.routers.baselines import EqualCapital, FixedCapital, Picker
from wealtharena.ensemble.routers.gate import GateFit, LearntGate, cost_per_unit, fit_gate
from wealtharena.ensemble.routers.hedge import FixedShare
from wealtharena.ensemble.routers.meeting import ExpertMeeting, Meeting
from wealtharena.ensemble.routers.ranking import AgentScorer, FactorScorer, RankingRouter, StockScorer
from wealtharena.ensemble.routers.sentiment import SentimentRouter
from wealtharena.ensemble.routers.volatility import VolatilityRegime
from wealtharena.ensemble.signals import MarketSignals, build_signals
from wealtharena.envs.data import EnvData
from wealtharena.envs.policy import Policy
from wealtharena.errors import ConfigError
from wealtharena.evaluation.backtest import Backtest, Track, TrackKey, distinct, run_agents, run_books
from wealtharena.portfolio import metrics

log = logging.getLogger(__name__)

MIN_FIT_DAYS = 63  # the gate needs at least a quarter of validation days
CHOSEN = TrackKey("desk_baseline", "chosen")  # the agent chosen on validation, held by the fund under its limits
CHOSEN_ALONE = TrackKey("desk_baseline", "chosen_alone")  # the same agent's own track, under its own limits
HINDSIGHT = TrackKey("desk_baseline", "hindsight")
EQUAL_CAPITAL = TrackKey("desk_baseline", "equal_capital")
EQUAL_WEIGHT_FUND = TrackKey("desk_baseline", "equal_weight_fund")


@dataclass
class DeskResult:
    """The desk's rows and everything behind them; `timings` in seconds (the routers and baselines)."""

    split: str
    dates: np.ndarray  # [S + 1]
    experts: tuple[str, ...]
    runs: list[FundRun]
    tracks: list[Track]
    regimes: list[str]  # [S] the volatility regime of each day (for the plots' shading)
    meetings: list[Meeting] = field(default_factory=list)
    gate: GateFit | None = None
    chosen_agent: str | None = None
    hindsight_agent: str | None = None
    notes: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def router_runs(self) -> list[FundRun]:
        return [r for r in self.runs if r.key.kind == "router"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "experts": list(self.experts),
            "chosen_agent": self.chosen_agent,
            "hindsight_agent": self.hindsight_agent,
            "notes": self.notes,
            "gate": self.gate.to_dict() if self.gate is not None else None,
            "meetings": [m.to_dict() for m in self.meetings],
            "events": {r.key.name: r.events for r in self.runs},
        }


def sharpe_of(returns: np.ndarray) -> float:
    value = metrics.sharpe(returns)
    return value if np.isfinite(value) else -np.inf


def experts_for(agent_tracks: list[Track], cfg: Config, data: EnvData, split: str, like: ExpertSet) -> ExpertSet:
    """The sleeves of `split` from its agents' tracks (one per distinct behaviour there), with the same
    experts as `like` (an expert standing for several agents takes its first agent's track)."""
    of_agent = {a: t for t in agent_tracks for a in (t.members or (t.name,))}
    agents = [dataclasses.replace(of_agent[like.members[e][0]], members=like.members[e]) for e in like.agents()]
    return build_experts(cfg, data, split, agents)


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
    started = time.perf_counter()
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
        FixedCapital(CHOSEN.name, one_hot(experts, chosen), names, f"{names[chosen]}: the best validation Sharpe"),
        FixedCapital(
            HINDSIGHT.name,
            one_hot(experts, hindsight),
            names,
            f"{names[hindsight]}: the best Sharpe on this split, known only afterwards",
        ),
    ]
    runs = run_funds(cfg, data, experts, signals, [*routers, *baselines], ens.fund_profile)
    dates = data.market.dates[experts.rows]
    tracks = []
    for run in runs:
        note = ""
        if run.key == TrackKey("router", "gate") and split == fit_split:
            note = "in-sample"
        elif run.key == HINDSIGHT:
            note = "unattainable"
        tracks.append(
            Track(
                key=run.key,
                dates=dates,
                values=run.values,
                weights=run.weights,
                costs=run.costs,
                events=Counter(run.events),
                profile=ens.fund_profile,
                note=note,
            )
        )
    # the chosen agent as it trades alone, under its own profile's limits (the row above is held by the fund)
    alone = experts.members[chosen][0]
    own = next(t for t in bt.agents() if alone in (t.members or (t.name,)))
    tracks.append(dataclasses.replace(own, key=CHOSEN_ALONE, members=()))
    # the like-for-like baseline: equal weight across the stocks under the fund's own limits and costs
    n = data.market.n_assets
    tracks += run_books(
        cfg,
        data,
        {EQUAL_WEIGHT_FUND.name: np.full(n, 1.0 / n)},
        split,
        risk=cfg.profile_risk(ens.fund_profile),
        kind=EQUAL_WEIGHT_FUND.kind,
    )
    meetings = next((r.meetings for r in routers if isinstance(r, ExpertMeeting)), [])
    meeting_run = next((r for r in runs if r.key == TrackKey("router", "meeting")), None)
    if meeting_run is not None:
        add_round_returns(meetings, meeting_run, signals, experts)
    regimes = [REGIMES[int(signals.regime[t])] for t in experts.rows[:-1]]
    result = DeskResult(
        split=split,
        dates=dates,
        experts=names,
        runs=runs,
        tracks=tracks,
        regimes=regimes,
        meetings=meetings,
        gate=gate,
        chosen_agent=names[chosen],
        hindsight_agent=names[hindsight],
        notes=notes,
    )
    result.files = write_logs(out_dir, dates, regimes, runs, meetings, gate.to_dict() if gate is not None else None)
    result.timings["routers and baselines"] = time.perf_counter() - started
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


def add_round_returns(meetings: list[Meeting], run: FundRun, signals: MarketSignals, experts: ExpertSet) -> None:
    """Each meeting's round: the desk's return from this meeting to the next (or the split's end) against the
    S&P 500 buy-and-hold over the same days."""
    bounds = [m.step for m in meetings] + [experts.steps]
    index = np.cumprod(1.0 + signals.index_return)
    for m, a, b in zip(meetings, bounds[:-1], bounds[1:]):
        m.desk_return = float(run.values[b] / run.values[a] - 1.0)
        m.index_return = float(index[experts.rows[b]] / index[experts.rows[a]] - 1.0)
        m.end = str(signals.dates[experts.rows[b]])
