"""Walk-forward results: each window's test-period tracks, stitched into one out-of-sample track per strategy,
judged with tests that count the strategies tried, and reported.

- `WindowTracks`: one window's test-period tracks (every strategy, by `TrackKey`) and its desk's capital
  decisions and volatility regimes, for the plots;
- `stitch`: one track per strategy, the exact concatenation of its test periods' daily returns;
- `benchmark_of`: the like-for-like benchmark of each strategy: equal weight under the same limits (its
  profile's for an agent, the fund's for a desk row), or equal weight without limits for the unconstrained
  baselines;
- `judge`: per strategy the annual return, volatility, Sharpe ratio with a stationary-bootstrap interval,
  maximum drawdown, Calmar, turnover, costs and the paired Sharpe difference with its benchmark; Hansen's
  SPA test and StepM over every agent and desk row together (on each one's daily return minus its
  benchmark's); the deflated Sharpe ratio of the best; the table by calendar year and the years won;
- `write_walkforward`: results.json, CSV tables, plots and report.html, for one seed or several.
"""

from __future__ import annotations

import html
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from wealtharena.config import Config
from wealtharena.evaluation.backtest import Backtest, Track, TrackKey
from wealtharena.evaluation.report import SURVIVORSHIP_NOTE, ReportSection, plot_growth_and_drawdown, write_results
from wealtharena.evaluation.statistics import (
    MultipleTest,
    deflated_sharpe,
    paired_sharpe_difference,
    sharpe_interval,
    superior_predictive_ability,
)
from wealtharena.portfolio import metrics

log = logging.getLogger(__name__)

EQUAL_WEIGHT = TrackKey("baseline", "equal_weight")
EQUAL_WEIGHT_FUND = TrackKey("desk_baseline", "equal_weight_fund")
# desk rows left out of the tests: the fund's own benchmark, the unattainable choice, and the chosen agent
# trading alone (the same track as that agent's row)
NOT_TESTED = {EQUAL_WEIGHT_FUND, TrackKey("desk_baseline", "hindsight"), TrackKey("desk_baseline", "chosen_alone")}
VOLATILE = {"volatile_up", "volatile_down"}


@dataclass
class WindowTracks:
    """One window's test period: every strategy's track, and the desk's capital per router and regimes."""

    name: str
    tracks: list[Track]
    capital: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)  # router -> (experts, [S, E])
    regimes: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, name: str, tracks: list[Track], desk: Any = None) -> WindowTracks:
        capital = {}
        regimes: list[str] = []
        if desk is not None:
            capital = {r.key.name: (list(r.columns), r.capital) for r in desk.router_runs() if r.key.name != "ranking"}
            regimes = list(desk.regimes)
        return cls(name, tracks, capital, regimes)

    def extras(self) -> dict[str, Any]:
        """The desk's part, as JSON (the tracks are stored as arrays beside it)."""
        return {
            "capital": {
                r: {"experts": cols, "weights": np.round(w, 6).tolist()} for r, (cols, w) in self.capital.items()
            },
            "regimes": self.regimes,
        }

    @classmethod
    def restore(cls, name: str, tracks: list[Track], record: dict[str, Any]) -> WindowTracks:
        capital = {r: (c["experts"], np.asarray(c["weights"])) for r, c in record.get("capital", {}).items()}
        return cls(name, tracks, capital, list(record.get("regimes", [])))


def stitch(windows: list[WindowTracks], initial: float) -> list[Track]:
    """One track per strategy present in every window: its daily returns are the concatenation of the
    windows' (each period starts from cash), its value their compound from `initial`; costs are each day's
    cost as a share of that day's value, applied to the stitched value."""
    keys = [t.key for t in windows[0].tracks if all(any(u.key == t.key for u in w.tracks) for w in windows)]
    out = []
    for key in keys:
        parts = [next(t for t in w.tracks if t.key == key) for w in windows]
        returns = np.concatenate([p.returns for p in parts])
        values = initial * np.concatenate([[1.0], np.cumprod(1.0 + returns)])
        cost_share = np.concatenate([p.costs / p.values[:-1] for p in parts])
        held = [p.weights for p in parts if p.weights is not None]
        weights = np.concatenate(held) if len(held) == len(parts) else None
        events: Counter = Counter()
        for p in parts:
            events.update(p.events)
        out.append(
            Track(
                key=key,
                dates=np.concatenate([parts[0].dates[:1], *[p.dates[1:] for p in parts]]),
                values=values,
                weights=weights,
                costs=cost_share * values[:-1],
                events=events,
                profile=parts[0].profile,
                note=parts[0].note,
                daily_returns=returns,
            )
        )
    return out


def benchmark_of(key: TrackKey) -> TrackKey:
    """The like-for-like benchmark: equal weight under the same limits, or without limits for what has none."""
    if key.kind == "agent":
        return TrackKey("baseline", f"equal_weight_{key.name}")
    if key.kind in ("router", "desk_baseline"):
        return EQUAL_WEIGHT_FUND
    return EQUAL_WEIGHT


def tested(tracks: list[Track]) -> list[Track]:
    """The strategies the multiple tests count: every agent and desk row (but `NOT_TESTED`)."""
    return [t for t in tracks if t.kind in ("agent", "router", "desk_baseline") and t.key not in NOT_TESTED]


@dataclass
class Judgement:
    """One seed's stitched strategies, their table, the table by year and the tests."""

    tracks: list[Track]
    table: pd.DataFrame  # one row per strategy (its label)
    years: pd.DataFrame  # calendar year x strategy: the year's return
    beats: pd.DataFrame  # the same: whether it beat its benchmark that year
    tests: MultipleTest
    best: str  # the label of the tested strategy with the best Sharpe ratio
    deflated: float  # its deflated Sharpe ratio
    expected_max_sharpe: float  # SR0, annualised

    def won(self) -> pd.Series:
        return self.beats.sum(axis=0)


def judge(tracks: list[Track], reps: int, seed: int, size: float) -> Judgement:
    by_key = {t.key: t for t in tracks}
    rows = {}
    for t in tracks:
        r = t.returns
        m = metrics.compute_metrics(r, None, t.weights)
        sharpe, low, high = sharpe_interval(r, reps, seed)
        bench = by_key.get(benchmark_of(t.key))
        row = {
            "kind": t.kind,
            "annual return": m.annual_return,
            "volatility": m.annual_volatility,
            "Sharpe": sharpe,
            "Sharpe low": low,
            "Sharpe high": high,
            "max drawdown": m.max_drawdown,
            "Calmar": m.calmar,
            "turnover": m.turnover,
            "costs (annual, of capital)": float(np.mean(t.costs / t.values[:-1])) * 252,
            "benchmark": bench.label if bench is not None else "",
        }
        if bench is not None and bench.key != t.key:
            diff, d_low, d_high = paired_sharpe_difference(r, bench.returns, reps, seed)
            row |= {"vs benchmark": diff, "vs benchmark low": d_low, "vs benchmark high": d_high}
        rows[t.label] = row
    table = pd.DataFrame(rows).T
    dates = pd.to_datetime(tracks[0].dates[1:])
    year_of = dates.year
    years = pd.DataFrame(
        {
            t.label: pd.Series(t.returns, index=dates).groupby(year_of).apply(lambda x: float(np.prod(1 + x) - 1))
            for t in tracks
        }
    )
    beats = pd.DataFrame(
        {
            t.label: years[t.label] > years[by_key[benchmark_of(t.key)].label]
            for t in tracks
            if benchmark_of(t.key) in by_key and benchmark_of(t.key) != t.key
        }
    )
    candidates = tested(tracks)
    excess = {
        t.label: t.returns - by_key[benchmark_of(t.key)].returns for t in candidates if benchmark_of(t.key) in by_key
    }
    tests = superior_predictive_ability(excess, reps, seed, size)
    daily = {t.label: float(np.mean(t.returns) / np.std(t.returns, ddof=1)) for t in candidates}
    best = max(daily, key=lambda k: daily[k])
    dsr, sr0 = deflated_sharpe(by_label(tracks)[best].returns, np.array(list(daily.values())))
    return Judgement(tracks, table, years, beats, tests, best, dsr, sr0 * np.sqrt(252))


def by_label(tracks: list[Track]) -> dict[str, Track]:
    return {t.label: t for t in tracks}


# ------------------------------------------------------------------------------------ plots
def plot_paths(tracks: list[Track], path: Path, title: str) -> Path:
    """Growth of 1 (log scale) and drawdown over the stitched years: the agents, the routers, their benchmarks
    and the index (the other baselines are in the tables)."""
    shown = [
        t
        for t in tracks
        if t.kind in ("agent", "router", "benchmark")
        or t.key in (EQUAL_WEIGHT, EQUAL_WEIGHT_FUND)
        or (t.kind == "baseline" and t.name.startswith("equal_weight_"))
    ]
    return plot_growth_and_drawdown(shown, path, title, log_scale=True)


def plot_capital(windows: list[WindowTracks], path: Path) -> Path | None:
    """Capital by expert over all test periods for each router, volatile regimes darkened."""
    routers = [r for r in windows[0].capital if all(r in w.capital for w in windows)]
    if not routers:
        return None
    dates = pd.to_datetime(np.concatenate([w.tracks[0].dates[:-1] for w in windows]))
    regimes = [g for w in windows for g in w.regimes]
    fig, axes = plt.subplots(len(routers), 1, figsize=(12, 2.3 * len(routers) + 0.6), sharex=True, squeeze=False)
    for ax, router in zip(axes[:, 0], routers):
        experts = windows[0].capital[router][0]
        weights = np.concatenate([w.capital[router][1] for w in windows])
        weights = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
        if len(regimes) == len(dates):
            volatile = np.array([g in VOLATILE for g in regimes])
            ax.fill_between(dates, 0, 1, where=volatile, step="post", color="k", alpha=0.18, lw=0, zorder=3)
        ax.stackplot(dates, *weights.T, labels=experts, alpha=0.85, zorder=1)
        ax.set_ylim(0, 1)
        ax.set_xlim(dates[0], dates[-1])
        ax.set_title(f"{TrackKey('router', router).label}: capital by expert", fontsize=9, loc="left")
        ax.legend(fontsize=6, ncol=len(experts), loc="upper left")
    fig.suptitle("Capital by expert, every test period; darker: volatile regime", fontsize=9)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.6 / fig.get_figheight(), top=1 - 0.75 / fig.get_figheight())
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------ text
def reading(j: Judgement, size: float) -> str:
    """What the tests say, in plain words."""
    t = j.tests
    spa = (
        f"Hansen's test for superior predictive ability over the {t.strategies} agents and desk rows (each against "
        f"equal weight under its own limits, daily, costs included) gives p = {t.p_value:.3f}"
    )
    if t.p_value < size:
        spa += (
            f": below {size:g}, so at least one of them beat its benchmark out of sample even after counting all "
            f"{t.strategies} tried. StepM (family-wise error {size:g}) names "
            + (", ".join(t.superior) if t.superior else "none individually")
            + "."
        )
    else:
        spa += (
            f": not below {size:g}. Once the number of strategies tried is accounted for, nothing beats equal "
            "weight under the same limits; the best row's lead is what the luck of trying "
            f"{t.strategies} strategies would give. StepM names " + (", ".join(t.superior) or "none") + "."
        )
    dsr = (
        f" The best of them by Sharpe ratio, {j.best}, has a deflated Sharpe ratio of {j.deflated:.2f}: the "
        f"probability that its true Sharpe ratio is above {j.expected_max_sharpe:.2f} (annualised), the best that "
        f"{t.strategies} unskilled strategies would be expected to show."
    )
    return spa + dsr


def per_seed_summary(judgements: dict[int, Judgement]) -> pd.DataFrame:
    """Per strategy: the stitched Sharpe ratio's mean and range over seeds, annual return, worst drawdown, the
    paired difference with its benchmark (mean over seeds), and the years won (mean)."""
    rows = {}
    labels = list(next(iter(judgements.values())).table.index)
    for label in labels:
        have = [j for j in judgements.values() if label in j.table.index]
        sharpe = np.array([float(j.table.loc[label, "Sharpe"]) for j in have])
        row = {
            "kind": have[0].table.loc[label, "kind"],
            "Sharpe mean": sharpe.mean(),
            "Sharpe min": sharpe.min(),
            "Sharpe max": sharpe.max(),
            "annual return": np.mean([float(j.table.loc[label, "annual return"]) for j in have]),
            "worst max drawdown": min(float(j.table.loc[label, "max drawdown"]) for j in have),
            "seeds": len(have),
        }
        diffs = [
            float(j.table.loc[label, "vs benchmark"])
            for j in have
            if "vs benchmark" in j.table.columns and pd.notna(j.table.loc[label].get("vs benchmark"))
        ]
        if diffs:
            row["vs benchmark (mean)"] = float(np.mean(diffs))
        won = [int(j.won()[label]) for j in have if label in j.beats.columns]
        if won:
            row["years won (mean)"] = float(np.mean(won))
        rows[label] = row
    return pd.DataFrame(rows).T


def _fmt(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    for col in out.columns:
        if col in (
            "annual return",
            "volatility",
            "max drawdown",
            "worst max drawdown",
            "turnover",
            "costs (annual, of capital)",
        ):
            out[col] = out[col].map(lambda v: "" if pd.isna(v) else f"{float(v):+.1%}")
        elif col not in ("kind", "benchmark", "seeds"):
            out[col] = out[col].map(lambda v: "" if pd.isna(v) else f"{float(v):.2f}")
    return out


def strategy_text(j: Judgement) -> str:
    t = j.table
    shown = pd.DataFrame(
        {
            "annual": t["annual return"].map(lambda v: f"{float(v):+.1%}"),
            "vol": t["volatility"].map(lambda v: f"{float(v):.1%}"),
            "Sharpe [95%]": [
                f"{float(a):.2f} [{float(b):.2f}, {float(c):.2f}]"
                for a, b, c in zip(t["Sharpe"], t["Sharpe low"], t["Sharpe high"])
            ],
            "max DD": t["max drawdown"].map(lambda v: f"{float(v):+.1%}"),
            "Calmar": t["Calmar"].map(lambda v: f"{float(v):.2f}"),
            "turnover": t["turnover"].map(lambda v: "" if pd.isna(v) else f"{float(v):.1%}"),
            "costs/yr": t["costs (annual, of capital)"].map(lambda v: f"{float(v):.2%}"),
        },
        index=t.index,
    )
    if "vs benchmark" in t.columns:
        shown["vs benchmark [95%]"] = [
            "" if pd.isna(d) else f"{float(d):+.2f} [{float(lo):+.2f}, {float(hi):+.2f}]"
            for d, lo, hi in zip(t["vs benchmark"], t["vs benchmark low"], t["vs benchmark high"])
        ]
    won = j.won()
    shown["years won"] = [f"{int(won[i])} of {len(j.years)}" if i in won.index else "" for i in shown.index]
    return shown.to_string()


def write_walkforward(
    cfg: Config, chains: dict[int, list[WindowTracks]], out: Path, extra: dict[str, Any] | None = None
) -> Path:
    """Stitch, judge and report every seed's windows under `out` (report.html, results.json, tables, plots);
    print the first seed's table, the tests in plain words and, with several seeds, the summary over seeds."""
    out.mkdir(parents=True, exist_ok=True)
    wf = cfg.walkforward
    judgements = {}
    for seed, windows in chains.items():
        stitched = stitch(windows, cfg.env.initial_cash)
        judgements[seed] = judge(stitched, wf.bootstrap_reps, seed, wf.test_size)
    first_seed = next(iter(chains))
    j = judgements[first_seed]
    windows = chains[first_seed]
    span = f"{windows[0].tracks[0].dates[1]} .. {windows[-1].tracks[0].dates[-1]}"
    title = f"walk-forward out of sample, {span}, {len(windows)} test periods, costs included"
    print(f"\n{title} (seed {first_seed}; each strategy's like-for-like benchmark in results.json):")
    print(strategy_text(j))
    print("\n" + reading(j, wf.test_size))
    summary = per_seed_summary(judgements) if len(judgements) > 1 else None
    if summary is not None:
        print(f"\nOver {len(judgements)} seeds {sorted(judgements)}:")
        print(_fmt(summary).to_string())
        for seed, jj in judgements.items():
            print(
                f"  seed {seed}: SPA p = {jj.tests.p_value:.3f}, StepM: {', '.join(jj.tests.superior) or 'none'}; "
                f"best {jj.best}, deflated Sharpe {jj.deflated:.2f}"
            )
    files = {
        "paths": plot_paths(j.tracks, out / "walkforward_paths.png", span),
    }
    capital = plot_capital(windows, out / "walkforward_capital.png")
    if capital is not None:
        files["capital"] = capital
    j.table.to_csv(out / "strategies.csv")
    j.years.to_csv(out / "years.csv")
    j.beats.to_csv(out / "years_beaten.csv")
    if summary is not None:
        summary.to_csv(out / "seeds.csv")
    years = j.years.copy()
    years.index = years.index.astype(str)
    won = j.won()
    years_text = years.map(lambda v: f"{v:+.1%}").to_string()
    body = (
        f"<p>{html.escape(title)}. Every test period was traded once, by policies and a gate chosen on the period "
        "before it; every strategy restarts from cash each period. Each strategy is compared with equal weight under "
        "the same limits (its profile's for an agent, the fund's for a desk row; without limits for the classic "
        "portfolios and the index).</p>"
        f"<pre>{html.escape(strategy_text(j))}</pre>"
        f"<p><b>What the tests say.</b> {html.escape(reading(j, wf.test_size))}</p>"
        '<img src="walkforward_paths.png" style="max-width:100%">'
        + ('<img src="walkforward_capital.png" style="max-width:100%">' if capital is not None else "")
        + f"<h3>By year</h3><pre>{html.escape(years_text)}</pre>"
        + "<p>Years won (the year's return above its benchmark's): "
        + html.escape(", ".join(f"{k} {int(v)}" for k, v in won.items()))
        + "</p>"
    )
    if summary is not None:
        body += f"<h3>Over {len(judgements)} seeds</h3><pre>{html.escape(_fmt(summary).to_string())}</pre>"
    sections = [ReportSection("Walk-forward, out of sample", body, files)]
    ref = j.tracks[0]
    bt = Backtest(
        split="walk-forward", start=str(ref.dates[0]), end=str(ref.dates[-1]), tracks=j.tracks, benchmark_returns=None
    )
    payload = {
        "walkforward": {
            "config": cfg.walkforward.model_dump(mode="json"),
            "seeds": {
                str(seed): {
                    "spa_pvalues": jj.tests.spa_pvalues,
                    "stepm_superior": jj.tests.superior,
                    "strategies_tested": jj.tests.strategies,
                    "best": jj.best,
                    "deflated_sharpe": jj.deflated,
                    "expected_max_sharpe": jj.expected_max_sharpe,
                    "years_won": {k: int(v) for k, v in jj.won().items()},
                    "benchmarks": {t.label: benchmark_of(t.key).label for t in jj.tracks},
                }
                for seed, jj in judgements.items()
            },
            **(extra or {}),
        }
    }
    paths = write_results(
        bt,
        out,
        payload,
        tearsheets=False,
        survivorship=cfg.data.provider == "sample",
        sections=sections,
        plotted=[],
    )
    (out / "walkforward.json").write_text(json.dumps(payload["walkforward"], indent=1, default=str))
    if cfg.data.provider == "sample":
        print("\n" + SURVIVORSHIP_NOTE)
    return paths["report"]
