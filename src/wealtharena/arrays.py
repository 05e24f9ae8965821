"""Small numpy helpers shared by the packages (a leaf: it imports numpy only)."""

from __future__ import annotations

import numpy as np

nz = np.count_nonzero  # the cheapest "any" on a small bool array of the hot path: `if nz(mask):`


def standard_error(x: np.ndarray) -> float:
    """The standard error of the mean of `x` (sample standard deviation / sqrt(n)); nan for fewer than two."""
    x = np.asarray(x, dtype=np.float64)
    return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")
