"""Tables, plots, tearsheets and result files for a backtest. Every table and figure names its
split, its date range and that costs are included."""

from __future__ import annotations

import html
import json
import logging
import math
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import PercentFormatter, ScalarFormatter

from wealtharena.evaluation.backtest import Backtest, Track
from wealtharena.evaluation.validation import ValidationResult


class IterationLike(Protocol):
    """What the training plot reads of one training iteration (training's `IterationRecord`)."""

    iteration: int
    policy_return: dict[str, float]
    reward_terms: dict[str, dict[str, float]]


matplotlib.use("Agg")  # reports are files: no display needed
log = logging.getLogger(__name__)
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)

SHOWN = [
    ("total_return", "total", "pct"),
    ("annual_return", "annual", "pct"),
    ("annual_volatility", "vol", "pct"),
    ("sharpe", "Sharpe", "num"),
    ("sharpe_ci", "Sharpe 95% CI", "ci"),
    ("sortino", "Sortino", "num"),
    ("calmar", "Calmar", "num"),
    ("max_drawdown", "max DD", "pct"),
    ("max_drawdown_days", "DD days", "int"),
    ("var_95", "VaR95", "pct"),
    ("cvar_95", "CVaR95", "pct"),
    ("win_rate", "win", "pct"),
    ("turnover", "turnover", "pct"),
    ("beta", "beta", "num"),
    ("information_ratio", "IR", "num"),
    ("costs_paid", "costs", "money"),
    ("risk_events", "risk evts", "int"),
]

SURVIVORSHIP_NOTE = (
    "Note: the bundled sample universe (20 S&P 500 stocks that were large in 2022) is "
    "survivorship-biased; compare strategies with each other on it, not with real-time returns."
)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=table.index)
    for col, name, kind in SHOWN:
        if kind == "ci":
            if "sharpe_ci_low" in table:
                out[name] = [
                    ("" if _missing(lo) else f"[{lo:.2f}, {hi:.2f}]")
                    for lo, hi in zip(table["sharpe_ci_low"], table["sharpe_ci_high"])
                ]
            continue
        if col not in table:
            continue
        fmt = {
            "pct": lambda v: f"{v:+.1%}",
            "num": lambda v: f"{v:.2f}",
            "money": lambda v: f"{v:,.0f}",
            "int": lambda v: f"{int(v)}",
        }[kind]
        out[name] = table[col].map(lambda v, fmt=fmt: "" if _missing(v) else fmt(v))
    return out


def render(bt: Backtest, survivorship: bool = False) -> str:
    table = format_table(bt.metrics_table())
    lines = [f"Results on the {bt.title()}:", table.to_string()]
    if survivorship:
        lines.append(SURVIVORSHIP_NOTE)
    return "\n".join(lines)


def _json_ready(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def learning_curve(validation: Sequence[ValidationResult]) -> str:
    """Validation episode reward per policy at each evaluation, and the change since the first with
    its paired standard error: where learning should be visible."""
    rows = [
        {
            "iteration": v.iteration,
            **{p: round(r, 2) for p, r in v.policy_episode_reward.items()},
            "mean Sharpe": round(v.mean_sharpe, 2),
        }
        for v in validation
    ]
    if not rows:
        return "no validation run yet"
    table = pd.DataFrame(rows).set_index("iteration")
    first, last = validation[0], validation[-1]
    se = ", ".join(f"{p} {v:.2f}" for p, v in last.policy_episode_reward_se.items())
    text = (
        f"Validation split, deterministic actions, costs included (iteration 0 = untrained): mean reward of "
        f"the {last.episodes} {last.episode_length}-day episodes starting every {last.stride} days, per "
        f"policy; mean Sharpe of the whole-split backtest\n"
        + table.to_string()
        + (f"\nstandard error of the last row's means: {se}" if se else "")
    )
    if len(table) > 1:
        change = (table.iloc[-1] - table.iloc[0]).round(2)
        change_se = last.change_se(first)
        parts = ", ".join(
            f"{c} {v:+.2f}" + (f" (SE {change_se[c]:.2f})" if c in change_se else "") for c, v in change.items()
        )
        text += f"\nchange since iteration {table.index[0]}: {parts}"
        if change_se:
            text += (
                "\n(SE of a change: over the same episodes, paired; a change beyond about twice its SE "
                "is unlikely to be window noise, though another seed may still differ)"
            )
    return text


def write_results(
    bt: Backtest,
    out_dir: Path,
    extra: dict[str, Any] | None = None,
    tearsheets: bool = True,
    survivorship: bool = False,
    training_plot: Path | None = None,
    sections: Sequence[ReportSection] = (),
    plotted: Sequence[Track] | None = None,
) -> dict[str, Path]:
    """report.html, results.json, plots, and a quantstats tearsheet per distinct agent under `out_dir`.
    `training_plot` (the run's learning curve) is copied in and shown; `sections` add blocks (the desk's,
    with its own plots); `plotted` are the tracks of the equity and drawdown plots (default: all)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table = bt.metrics_table()
    payload = {
        "split": bt.split,
        "start": bt.start,
        "end": bt.end,
        "costs_included": True,
        "metrics": {name: {k: _json_ready(v) for k, v in row.items()} for name, row in table.to_dict("index").items()},
        "agents": {tr.label: list(tr.members) for tr in bt.agents()},
        "risk_events_by_reason": {tr.label: dict(tr.events) for tr in bt.agents()},
        "series": {tr.label: {"dates": [str(d) for d in tr.dates], "values": tr.values.tolist()} for tr in bt.tracks},
        **(extra or {}),
    }
    paths = {"results": out_dir / "results.json"}
    paths["results"].write_text(json.dumps(payload, indent=1, default=str))
    if training_plot is not None and training_plot.is_file():
        paths["training"] = out_dir / "training.png"
        shutil.copyfile(training_plot, paths["training"])
    if plotted is None or len(plotted):
        paths |= plot_all(bt, out_dir, plotted)
    for section in sections:
        paths |= section.files
    if tearsheets:
        paths |= write_tearsheets(bt, out_dir)
    paths["report"] = write_html(bt, out_dir, paths, survivorship, sections)
    return paths


class ReportSection:
    """A block of report.html: a heading, HTML (tables, text) and the files it shows or links."""

    def __init__(self, title: str, body_html: str, files: dict[str, Path] | None = None):
        self.title, self.body_html, self.files = title, body_html, files or {}


# ------------------------------------------------------------------------------------ plots
SOLID = ("agent", "router")  # the strategies under study; baselines and the index are dashed


def plot_growth_and_drawdown(tracks: Sequence[Track], path: Path, title: str, log_scale: bool = False) -> Path:
    """One figure: growth of 1 (top; `log_scale` for long spans) and drawdown (bottom) of `tracks`; the
    strategies under study solid, baselines and the index dashed."""
    colors = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(tracks), 2))) if len(tracks) > 10 else [None] * len(tracks)
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 8.5), sharex=True, height_ratios=(5.5, 3))
    for tr, color in zip(tracks, colors):
        dates = pd.to_datetime(tr.dates)
        style, lw = ("-", 1.5) if tr.kind in SOLID else ("--", 1.0)
        ax.plot(dates, tr.values / tr.values[0], style, lw=lw, color=color, label=tr.label)
        ax2.plot(dates, tr.values / np.maximum.accumulate(tr.values) - 1.0, style, lw=lw, color=color)
    if log_scale:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(ScalarFormatter())
    ax.set_title(f"Growth of 1{', log scale' if log_scale else ''} ({title})", fontsize=10)
    ax2.set_title("drawdown", fontsize=10, loc="left")
    ax2.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.legend(fontsize=7, ncol=2 if len(tracks) <= 12 else 3)
    for a in (ax, ax2):
        a.grid(alpha=0.3, which="both")
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.04, top=0.96, hspace=0.12)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_all(bt: Backtest, out_dir: Path, plotted: Sequence[Track] | None = None) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    dates = {tr.label: pd.to_datetime(tr.dates) for tr in bt.tracks}
    lines = bt.tracks if plotted is None else list(plotted)
    paths["equity"] = plot_growth_and_drawdown(lines, out_dir / "equity.png", bt.title())

    for tr in bt.tracks:
        if tr.kind != "agent" or tr.weights is None:
            continue
        fig, ax = plt.subplots(figsize=(11, 4))
        w = tr.weights
        top = np.argsort(-w.mean(axis=0))[:8]
        rest = np.delete(w, top, axis=1).sum(axis=1)
        stack = [w[:, i] for i in top] + [rest, np.maximum(1.0 - w.sum(axis=1), 0.0)]
        labels = [bt.tickers[i] if bt.tickers else str(i) for i in top] + ["others", "cash"]
        ax.stackplot(dates[tr.label][1:], *stack, labels=labels, alpha=0.85)
        ax.set_ylim(0, 1)
        ax.set_title(f"Allocation of {tr.label} after the risk manager\n{bt.title()}", fontsize=10)
        ax.legend(fontsize=7, ncol=5, loc="upper left")
        fig.subplots_adjust(left=0.05, right=0.99, top=0.86, bottom=0.08)
        path = out_dir / f"allocation_{tr.name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths[f"allocation_{tr.name}"] = path
    return paths


def plot_training_history(
    history: Sequence[IterationLike], path: Path, validation: Sequence[ValidationResult] = ()
) -> Path | None:
    """Top row: episode return and each reward term per policy over training iterations (train split).
    Bottom row, with validations: the learning curve the console prints (each policy's mean validation
    episode reward, with its standard error, and the whole-split mean Sharpe) against the iteration."""
    if not history:
        return None
    policies = sorted(
        {p for row in history for p in row.reward_terms} | {p for row in history for p in row.policy_return}
    )
    if not policies:  # no episode finished yet (episodes longer than the steps sampled so far)
        return None
    terms = sorted({t for row in history for d in row.reward_terms.values() for t in d})
    rows = 2 if validation else 1
    fig, axes = plt.subplots(rows, len(policies), figsize=(5 * len(policies), 4 * rows), squeeze=False)
    it = [row.iteration for row in history]
    for ax, p in zip(axes[0], policies):
        ax.plot(it, [row.policy_return.get(p, np.nan) for row in history], "k-", lw=2, label="episode return")
        for t in terms:
            ax.plot(it, [row.reward_terms.get(p, {}).get(t, np.nan) for row in history], lw=1, label=t)
        ax.set_title(f"{p}: reward terms per episode (train split)", fontsize=10)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    if validation:
        vit = [v.iteration for v in validation]
        sharpe = [v.mean_sharpe for v in validation]
        for ax, p in zip(axes[1], policies):
            mean = np.array([v.policy_episode_reward.get(p, np.nan) for v in validation])
            se = np.array([v.policy_episode_reward_se.get(p, np.nan) for v in validation])
            ax.plot(vit, mean, "o-", color="C0", label="mean episode reward")
            ax.fill_between(vit, mean - 2 * se, mean + 2 * se, color="C0", alpha=0.15, label="+- 2 SE")
            ax.set_title(f"{p}: validation (deterministic, costs included)", fontsize=10)
            ax.set_xlabel("iteration")
            ax.grid(alpha=0.3)
            twin = ax.twinx()
            twin.plot(vit, sharpe, "s--", color="C3", ms=3, lw=1, label="mean Sharpe (whole split)")
            twin.set_ylabel("mean Sharpe", color="C3")
        handles = [h for a in (axes[1][0], twin) for h in a.get_legend_handles_labels()[0]]
        labels = [lab for a in (axes[1][0], twin) for lab in a.get_legend_handles_labels()[1]]
        axes[1][0].legend(handles, labels, fontsize=7)
    fig.subplots_adjust(left=0.06, right=0.94, top=0.93, bottom=0.09, wspace=0.35, hspace=0.35)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------- tearsheets
def write_tearsheets(bt: Backtest, out_dir: Path) -> dict[str, Path]:
    """A quantstats HTML tearsheet per agent against the benchmark index (costs included)."""
    try:
        import quantstats as qs  # heavy (seaborn, its own plots), and only needed for tearsheets
    except ImportError:
        log.warning("quantstats is not installed: no tearsheets")
        return {}
    paths = {}
    bench = None
    bh = next((tr for tr in bt.tracks if tr.kind == "benchmark"), None)
    for tr in bt.tracks:
        if tr.kind != "agent":
            continue
        index = pd.to_datetime(tr.dates[1:])
        r = pd.Series(tr.returns, index=index, name=tr.name)
        if bh is not None:
            bench = pd.Series(bh.returns[: len(r)], index=index[: len(bh.returns)], name=bh.label)
        path = out_dir / f"tearsheet_{tr.name}.html"
        try:
            with warnings.catch_warnings():  # quantstats' own plotting warnings are not the user's concern
                warnings.simplefilter("ignore")
                qs.reports.html(
                    r, benchmark=bench, output=str(path), title=f"{tr.label}: {bt.title()}", download_filename=path.name
                )
            paths[f"tearsheet_{tr.name}"] = path
        except Exception as exc:  # a third-party report must not sink the evaluation
            log.warning("tearsheet for %s failed: %s", tr.name, exc)
    return paths


def figure_title(key: str, bt: Backtest) -> str:
    """A report heading for a figure file's key (`equity`, `allocation_<agent>`, ...)."""
    if key.startswith("allocation_"):
        agent = key.removeprefix("allocation_")
        track = next((t for t in bt.agents() if t.name == agent), None)
        return f"Allocation of {track.label if track is not None else agent}"
    return {"equity": "Growth of 1 and drawdown"}.get(key, key.replace("_", " "))


def write_html(
    bt: Backtest, out_dir: Path, paths: dict[str, Path], survivorship: bool, sections: Sequence[ReportSection] = ()
) -> Path:
    table = format_table(bt.metrics_table())
    in_sections = {p for section in sections for p in section.files.values()}
    images = "".join(
        f'<h3>{html.escape(figure_title(k, bt))}</h3><img src="{p.name}" style="max-width:100%">'
        for k, p in paths.items()
        if p.suffix == ".png" and p not in in_sections and k != "training"
    )
    sheets = "".join(
        f'<li><a href="{p.name}">{html.escape(k)}</a></li>'
        for k, p in paths.items()
        if p.suffix == ".html" and p not in in_sections
    )
    training = ""
    if "training" in paths:
        training = (
            "<h2>Learning curve</h2><p>Top: episode return and each reward term per policy over the training "
            "iterations (train split). Bottom: the validation every few iterations that the console prints, each "
            "policy's mean episode reward (with two standard errors) and the whole split's mean Sharpe, which "
            'picks the best checkpoint.</p><img src="training.png" style="max-width:100%">'
        )
    blocks = "".join(f"<h2>{html.escape(s.title)}</h2>{s.body_html}" for s in sections)
    body = (
        f"<h1>WealthArena evaluation</h1><p><b>{html.escape(bt.title())}</b>. Every figure is net of "
        "commission and slippage; all strategies start with the same cash on the same day. Agents that act "
        "identically are one row, named by every agent it stands for.</p>"
        + (f"<p><i>{html.escape(SURVIVORSHIP_NOTE)}</i></p>" if survivorship else "")
        + table.to_html(classes="metrics", border=0)
        + blocks
        + training
        + (f"<h2>Tearsheets</h2><ul>{sheets}</ul>" if sheets else "")
        + images
    )
    style = (
        "<style>body{font-family:sans-serif;margin:2em} table.metrics{border-collapse:collapse;font-size:13px}"
        "table.metrics td,table.metrics th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}</style>"
    )
    path = out_dir / "report.html"
    path.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>WealthArena {bt.split}</title>"
        f"{style}</head><body>{body}</body></html>"
    )
    return path
