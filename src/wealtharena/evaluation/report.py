"""Tables, plots and result files for a backtest. Every table and figure names its split, its
date range and that costs are included."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wealtharena.evaluation.backtest import Backtest

SHOWN = [("total_return", "total", "pct"), ("annual_return", "annual", "pct"), ("annual_volatility", "vol", "pct"),
         ("sharpe", "Sharpe", "num"), ("sortino", "Sortino", "num"), ("calmar", "Calmar", "num"),
         ("max_drawdown", "max DD", "pct"), ("max_drawdown_days", "DD days", "int"), ("var_95", "VaR95", "pct"),
         ("cvar_95", "CVaR95", "pct"), ("win_rate", "win", "pct"), ("turnover", "turnover", "pct"),
         ("beta", "beta", "num"), ("information_ratio", "IR", "num"), ("costs_paid", "costs", "money"),
         ("risk_events", "risk evts", "int")]

SURVIVORSHIP_NOTE = ("Note: the bundled sample universe (20 S&P 500 stocks that were large in 2022) is "
                     "survivorship-biased; compare strategies with each other on it, not with real-time returns.")


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=table.index)
    for col, name, kind in SHOWN:
        if col not in table:
            continue
        values = table[col]
        if kind == "pct":
            out[name] = values.map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.1%}")
        elif kind == "num":
            out[name] = values.map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}")
        elif kind == "money":
            out[name] = values.map(lambda v: f"{v:,.0f}")
        else:
            out[name] = values.map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{int(v)}")
    return out


def render(bt: Backtest, survivorship: bool = False) -> str:
    table = format_table(bt.metrics_table())
    lines = [f"Results on the {bt.title()}:", table.to_string()]
    if survivorship:
        lines.append(SURVIVORSHIP_NOTE)
    return "\n".join(lines)


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return _json_ready(value.item())
    return value


def write_results(bt: Backtest, out_dir: Path, extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """results.json, equity.png, drawdown.png and allocation_<agent>.png under `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table = bt.metrics_table()
    payload = {
        "split": bt.split, "start": bt.start, "end": bt.end, "costs_included": True,
        "metrics": {name: {k: _json_ready(v) for k, v in row.items()} for name, row in table.to_dict("index").items()},
        "series": {tr.name: {"dates": [str(d) for d in tr.dates], "values": tr.values.tolist()} for tr in bt.tracks},
        "risk_events": {tr.name: dict(tr.events) for tr in bt.tracks if tr.events},
        **(extra or {}),
    }
    paths = {"results": out_dir / "results.json"}
    paths["results"].write_text(json.dumps(payload, indent=1, default=str))
    paths |= plot_all(bt, out_dir)
    return paths


def plot_all(bt: Backtest, out_dir: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: dict[str, Path] = {}
    dates = {tr.name: pd.to_datetime(tr.dates) for tr in bt.tracks}
    fig, ax = plt.subplots(figsize=(11, 5.5))
    for tr in bt.tracks:
        style = "--" if tr.kind == "benchmark" else "-"
        ax.plot(dates[tr.name], tr.values / tr.values[0], style, lw=1.2 if tr.kind == "agent" else 1.6, label=tr.name)
    ax.set_title(f"Growth of 1 ({bt.title()})")
    ax.set_ylabel("value / start value")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths["equity"] = out_dir / "equity.png"
    fig.savefig(paths["equity"], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(11, 4))
    for tr in bt.tracks:
        v = tr.values
        ax.plot(dates[tr.name], v / np.maximum.accumulate(v) - 1.0, lw=1.0, label=tr.name)
    ax.set_title(f"Drawdown ({bt.title()})")
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths["drawdown"] = out_dir / "drawdown.png"
    fig.savefig(paths["drawdown"], dpi=110)
    plt.close(fig)

    for tr in bt.tracks:
        if tr.kind != "agent" or tr.weights is None:
            continue
        fig, ax = plt.subplots(figsize=(11, 4))
        w = tr.weights
        top = np.argsort(-w.mean(axis=0))[:8]
        rest = np.delete(w, top, axis=1).sum(axis=1)
        labels = [bt.tickers[i] for i in top]
        stack = [w[:, i] for i in top] + [rest, 1.0 - w.sum(axis=1)]
        ax.stackplot(dates[tr.name][1:], *stack, labels=labels + ["others", "cash"], alpha=0.85)
        ax.set_ylim(0, 1)
        ax.set_title(f"Allocation of {tr.name} ({bt.title()})")
        ax.legend(fontsize=7, ncol=5, loc="upper left")
        fig.tight_layout()
        path = out_dir / f"allocation_{tr.name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths[f"allocation_{tr.name}"] = path
    return paths
