"""Results over several seeds: mean, standard deviation and range per strategy and metric, so that
one lucky seed is not mistaken for a result."""

from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = ("annual_return", "sharpe", "max_drawdown", "annual_volatility", "costs_paid")


def aggregate(tables: dict[int, pd.DataFrame], columns: tuple[str, ...] = COLUMNS) -> pd.DataFrame:
    """{seed: metrics table} -> one row per strategy, `<metric> mean`, `std`, `min`, `max` columns, and `seeds`:
    how many seeds have the row (agents that act identically in one seed are one row there, so an agent's
    own row can cover fewer seeds than its group's)."""
    stacked = pd.concat({seed: t[list(columns)] for seed, t in tables.items()}, names=["seed", "strategy"])
    grouped = stacked.groupby(level="strategy", sort=False)
    out = pd.DataFrame(index=grouped.size().index)
    for col in columns:
        g = grouped[col]
        out[f"{col} mean"] = g.mean()
        out[f"{col} std"] = g.std(ddof=1)
        out[f"{col} min"] = g.min()
        out[f"{col} max"] = g.max()
    out["seeds"] = grouped.size()
    return out


def render(agg: pd.DataFrame, title: str) -> str:
    total = int(agg["seeds"].max())
    rows = {}
    for strategy, row in agg.iterrows():
        cells = {}
        for col in COLUMNS:
            pct = col != "sharpe" and col != "costs_paid"
            fmt = (
                (lambda v: f"{v:+.1%}")
                if pct
                else ((lambda v: f"{v:,.0f}") if col == "costs_paid" else (lambda v: f"{v:.2f}"))
            )
            std = row[f"{col} std"]
            spread = f" [{fmt(row[f'{col} min'])} .. {fmt(row[f'{col} max'])}]"
            cells[col] = fmt(row[f"{col} mean"]) + ("" if np.isnan(std) else f" ± {fmt(std).lstrip('+')}") + spread
        n = int(row["seeds"])
        rows[strategy if n == total else f"{strategy} ({n} of {total} seeds)"] = cells
    return f"{title} (mean ± std [min .. max] over {total} seeds):\n" + pd.DataFrame(rows).T.to_string()
