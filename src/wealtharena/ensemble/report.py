"""The desk in the report: its text, plots, the meeting round table, the logs, and the seed table.

- `desk_summary`: the lines the console prints under the results table;
- `desk_sections`: report.html blocks: equity and drawdown of the desk against its experts, capital by
  expert over time for every router (stacked areas, volatile regimes shaded behind), the round table
  of the expert meetings, the gate's fit record, and links to routing.jsonl and meetings.json.
- `desk_seed_table`: over the runs of several seeds, each desk row's test Sharpe (mean and standard
  error across seeds) and its paired difference with the agent each seed would have chosen on
  validation, with a bootstrap interval that resamples seeds and, within each, blocks of days.
"""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from wealtharena.arrays import standard_error
from wealtharena.ensemble.desk import CHOSEN, CHOSEN_ALONE, EQUAL_CAPITAL, DeskResult
from wealtharena.ensemble.routers.meeting import Meeting
from wealtharena.evaluation.backtest import Backtest, Track, TrackKey
from wealtharena.evaluation.report import ReportSection, plot_growth_and_drawdown
from wealtharena.portfolio import metrics

VOLATILE = {"volatile_up", "volatile_down"}


def round_returns(meetings: list[Meeting]) -> tuple[list[Meeting], np.ndarray, np.ndarray]:
    """The meetings whose round has ended, the desk's return over each round and the index's."""
    rows = [m for m in meetings if m.desk_return is not None and m.index_return is not None]
    return rows, np.array([m.desk_return for m in rows]), np.array([m.index_return for m in rows])


def round_table_text(meetings: list[Meeting]) -> str:
    rows, desk, index = round_returns(meetings)
    if not rows:
        return ""
    head = f"{'round':>5} {'date':>10} {'decision':>9} {'agreement':>9} {'desk':>8} {'S&P 500':>8} {'diff':>8}"
    lines = ["Expert meetings (desk return over the round against S&P 500 buy-and-hold, costs included):", head]
    for i, (m, d, x) in enumerate(zip(rows, desk, index), 1):
        lines.append(f"{i:>5} {m.date:>10} {m.decision:>9} {m.agreement:>9.2f} {d:>+8.2%} {x:>+8.2%} {d - x:>+8.2%}")
    lines.append(
        f"{'mean':>5} {'':>10} {'':>9} {'':>9} {desk.mean():>+8.2%} {index.mean():>+8.2%} "
        f"{(desk - index).mean():>+8.2%}   (rounds beating the index: {int((desk > index).sum())} of "
        f"{len(rows)})"
    )
    return "\n".join(lines)


def desk_summary(desk: DeskResult) -> str:
    """What the console prints under the results table: experts, the chosen and hindsight agents, the notes
    and the meetings' record."""
    lines = [
        f"\nDesk on the {desk.split} split: experts {', '.join(desk.experts)}; agent chosen on validation: "
        f"{desk.chosen_agent}; best agent in hindsight: {desk.hindsight_agent}"
    ]
    lines += [f"  {note}" for note in desk.notes]
    rounds, ret, index = round_returns(desk.meetings)
    if rounds:
        lines.append(
            f"  expert meetings: {len(rounds)} rounds ({sum(m.decision == 'consensus' for m in rounds)} "
            f"consensus, {sum(m.decision == 'vote' for m in rounds)} votes); mean round return "
            f"{ret.mean():+.2%} against S&P 500 buy-and-hold {index.mean():+.2%} (beating it in "
            f"{int((ret > index).sum())} of {len(rounds)}); the round table is in report.html"
        )
    return "\n".join(lines)


def _shade_regimes(ax: plt.Axes, dates: pd.DatetimeIndex, regimes: list[str]) -> None:
    """Darken the days whose regime is volatile (one collection over the stacks, however many spells)."""
    volatile = np.array([r in VOLATILE for r in regimes], dtype=bool)
    ax.fill_between(
        dates, 0, 1, where=volatile, step="post", color="k", alpha=0.18, lw=0, zorder=3,
        transform=ax.get_xaxis_transform(),
    )  # fmt: skip


def plot_capital(desk: DeskResult, path: Path, title: str) -> Path:
    runs = desk.router_runs()
    dates = pd.to_datetime(desk.dates[:-1])
    fig, axes = plt.subplots(len(runs), 1, figsize=(11, 2.4 * len(runs) + 0.6), sharex=True, squeeze=False)
    for ax, run in zip(axes[:, 0], runs):
        _shade_regimes(ax, dates, desk.regimes)
        capital = run.capital / np.maximum(run.capital.sum(axis=1, keepdims=True), 1e-12)
        ax.stackplot(dates, *capital.T, labels=run.columns, alpha=0.85, zorder=1)
        ax.set_ylim(0, 1)
        ax.set_xlim(dates[0], dates[-1])
        what = "vote weight by scorer" if run.key.name == "ranking" else "capital by expert"
        ax.set_title(f"{run.key.label}: {what}", fontsize=9, loc="left")
        ax.legend(fontsize=6, ncol=min(len(run.columns), 6), loc="upper left")
    fig.suptitle(f"{title}; darker: volatile regime (index volatility above its own history's threshold)", fontsize=9)
    # fixed margins: tight_layout measures every label and costs as much as drawing the stacks
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.6 / fig.get_figheight(), top=1 - 0.75 / fig.get_figheight())
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def desk_sections(desk: DeskResult, bt: Backtest, out_dir: Path) -> list[ReportSection]:
    title = bt.title()
    shown = [t for t in bt.tracks if t.kind in ("router", "agent", "benchmark") or t.key == EQUAL_CAPITAL]
    paths = plot_growth_and_drawdown(shown, out_dir / "desk_paths.png", f"the desk against its experts, {title}")
    capital = plot_capital(desk, out_dir / "desk_capital.png", title)
    files = {"desk_paths": paths, "desk_capital": capital, **desk.files}
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in desk.notes)
    rounds = round_table_text(desk.meetings)
    links = ", ".join(f'<a href="{p.name}">{html.escape(p.name)}</a>' for k, p in desk.files.items())
    body = (
        "<p>The desk routes one fund's capital among expert sleeves (the agents, identical ones once, and "
        "the other configured sleeves). Every router decides at the close of day t the capital of each expert "
        "for t+1 from what is known at that close; the mixed book passes the fund profile's risk gate and pays "
        f"costs on its own net trades. Experts: {html.escape(', '.join(desk.experts))}. Agent chosen on validation: "
        f"<b>{html.escape(str(desk.chosen_agent))}</b>; best agent in hindsight (unattainable): "
        f"{html.escape(str(desk.hindsight_agent))}.</p>"
        + (f"<ul>{notes}</ul>" if notes else "")
        + '<img src="desk_paths.png" style="max-width:100%"><img src="desk_capital.png" style="max-width:100%">'
        + (f"<h3>Expert meetings</h3><pre>{html.escape(rounds)}</pre>" if rounds else "")
        + f"<p>Logs: {links} (one line per day and router: date, regime, label, weights, explanation).</p>"
    )
    return [ReportSection("The desk (mixture of experts)", body, files)]


def _block_indices(rng: np.random.Generator, n: int, block: int) -> np.ndarray:
    starts = rng.integers(0, n, size=-(-n // block))
    return ((starts[:, None] + np.arange(block)[None, :]).ravel()[:n]) % n


def desk_seed_table(
    backtests: dict[int, Backtest], n_boot: int = 2000, block: int = 21, seed: int = 0
) -> pd.DataFrame | None:
    """Per desk row over seeds: Sharpe mean and standard error, max drawdown, and the paired Sharpe difference
    with each seed's agent chosen on validation, as the fund would hold it (the fund's limits) and as it trades
    alone (its own profile's limits), each with a 95% bootstrap interval (seeds resampled, and blocks of
    `block` days within each)."""
    rows = {}
    per_seed: dict[int, dict[TrackKey, Track]] = {}
    for s, bt in backtests.items():
        per_seed[s] = {t.key: t for t in bt.tracks if t.kind in ("router", "desk_baseline")}
        if CHOSEN not in per_seed[s]:
            return None
    seeds = sorted(per_seed)
    keys = [k for k in per_seed[seeds[0]] if all(k in per_seed[s] for s in seeds)]
    label = {k: per_seed[seeds[0]][k].label for k in keys}
    references = {"fund limits": CHOSEN} | ({"own limits": CHOSEN_ALONE} if CHOSEN_ALONE in keys else {})
    rng = np.random.default_rng(seed)

    def paired(name: TrackKey, ref: TrackKey) -> tuple[float, str]:
        diff = [metrics.sharpe(per_seed[s][name].returns) - metrics.sharpe(per_seed[s][ref].returns) for s in seeds]
        boots = np.empty(n_boot)
        for b in range(n_boot):
            d = []
            for s in rng.choice(seeds, size=len(seeds)):
                r, c = per_seed[s][name].returns, per_seed[s][ref].returns
                idx = _block_indices(rng, len(r), block)
                d.append(metrics.sharpe(r[idx]) - metrics.sharpe(c[idx]))
            boots[b] = np.nanmean(d)
        return float(np.mean(diff)), f"[{np.nanquantile(boots, 0.025):+.2f}, {np.nanquantile(boots, 0.975):+.2f}]"

    for name in keys:
        sharpe = np.array([metrics.sharpe(per_seed[s][name].returns) for s in seeds])
        mdd = np.array([metrics.max_drawdown(per_seed[s][name].returns) for s in seeds])
        row = {
            "Sharpe mean": sharpe.mean(),
            "Sharpe SE": standard_error(sharpe),
            "max DD worst": mdd.min(),
        }
        for what, ref in references.items():
            row[f"vs chosen agent ({what})"], row[f"95% interval ({what})"] = paired(name, ref)
        rows[label[name]] = row | {"seeds": len(seeds)}
    table = pd.DataFrame(rows).T
    table.index.name = "desk row"
    return table


def render_desk_seed_table(table: pd.DataFrame, split: str) -> str:
    """`desk_seed_table` as text: Sharpe to two decimals, drawdown in percent."""
    shown = pd.DataFrame(
        {
            "Sharpe mean": table["Sharpe mean"].map(lambda v: f"{v:.2f}"),
            "SE": table["Sharpe SE"].map(lambda v: "" if pd.isna(v) else f"{v:.2f}"),
            "worst max DD": table["max DD worst"].map(lambda v: f"{v:+.1%}"),
        },
        index=table.index,
    )
    for column in table.columns:
        if column.startswith("vs chosen agent"):
            shown[column] = table[column].map(lambda v: f"{v:+.2f}")
        elif column.startswith("95% interval"):
            shown[column] = table[column]
    seeds = int(table["seeds"].iloc[0])
    return (
        f"desk on the {split} split over {seeds} seeds (Sharpe, paired with each seed's agent chosen on validation, "
        "held by the fund under its limits and trading alone under its own):\n" + shown.to_string()
    )
