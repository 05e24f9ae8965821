#!/usr/bin/env python
"""How far `python train.py` reproduces when the CPU's floating-point kernels change, and what fixing them costs.

    python benchmarks/bench_repro.py [--iterations 40] [--seed 0] [--kernels native avx2]

Runs the default training command once per kernel setting, each in a fresh folder and process, and prints
(1) the validation learning curve of each setting with the largest difference between settings, (2) the
Sharpe of every row of the best checkpoint's validation table per setting, and (3) the wall time per setting.

A CPU's kernels are the variable: numpy, OpenBLAS, torch (ATen), MKL and oneDNN dispatch on the instruction
set they find (AVX2, AVX-512, AMX), and different kernels round differently in the last bits. `native` lets
them choose; `avx2` pins every one of them to AVX2 with their own switches (NPY_DISABLE_CPU_FEATURES,
OPENBLAS_CORETYPE, ATEN_CPU_CAPABILITY, MKL_CBWR, ONEDNN_MAX_CPU_ISA), which is what an AVX2-only CPU would
run; `baseline` turns off every SIMD dispatch the libraries allow. Two settings on one machine stand in for
two CPU kinds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
KERNELS: dict[str, dict[str, str]] = {
    "native": {},
    "avx2": {
        "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
        "OPENBLAS_CORETYPE": "Haswell",
        "ATEN_CPU_CAPABILITY": "avx2",
        "MKL_CBWR": "AVX2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
    },
    "baseline": {
        "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
        "OPENBLAS_CORETYPE": "Prescott",
        "ATEN_CPU_CAPABILITY": "default",
        "MKL_CBWR": "COMPATIBLE",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
    },
}


def train(kernels: str, iterations: int, seed: int, workdir: Path) -> tuple[float, dict, dict]:
    """One `python train.py` under a kernel setting: wall seconds, the validation history, the best table."""
    env = {**os.environ, **KERNELS[kernels]}
    env.pop("PYTHONHASHSEED", None)  # train.py fixes it itself
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--iterations", str(iterations), "--seed", str(seed), "--no-progress"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{kernels}: train.py failed\n{proc.stderr[-3000:]}")
    (run_dir,) = (workdir / "checkpoints" / "default").glob(f"*-s{seed}")
    latest = json.loads((run_dir / "latest.json").read_text())["path"]
    history = json.loads((run_dir / latest / "wealtharena.json").read_text())["validation"]
    table = json.loads((run_dir / "best" / "eval-validation" / "results.json").read_text())["metrics"]
    return wall, {v["iteration"]: v for v in history}, table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kernels", nargs="+", choices=list(KERNELS), default=["native", "avx2"])
    args = p.parse_args()

    walls, histories, tables = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for k in args.kernels:
            (Path(tmp) / k).mkdir()
            walls[k], histories[k], tables[k] = train(k, args.iterations, args.seed, Path(tmp) / k)
            print(f"{k}: {walls[k]:.0f} s", file=sys.stderr, flush=True)

    first = args.kernels[0]
    rows = []
    for it, v in histories[first].items():
        for policy in v["policy_episode_reward"]:
            values = [histories[k][it]["policy_episode_reward"][policy] for k in args.kernels]
            rows.append(
                {
                    "iteration": it,
                    "policy": policy,
                    **dict(zip(args.kernels, values)),
                    "largest difference": max(values) - min(values),
                }
            )
        sharpes = [histories[k][it]["mean_sharpe"] for k in args.kernels]
        rows.append(
            {
                "iteration": it,
                "policy": "mean Sharpe",
                **dict(zip(args.kernels, sharpes)),
                "largest difference": max(sharpes) - min(sharpes),
            }
        )
    curve = pd.DataFrame(rows).set_index(["iteration", "policy"])
    with pd.option_context(
        "display.max_rows",
        None,
        "display.max_columns",
        None,
        "display.width",
        250,
        "display.max_colwidth",
        60,
        "display.float_format",
        "{:.6g}".format,
    ):
        print("Validation learning curve per kernel setting (mean episode reward per policy, mean Sharpe):")
        print(curve)
        rows = [
            {"row": name, **{k: tables[k].get(name, {}).get("sharpe", float("nan")) for k in args.kernels}}
            for name in tables[first]
        ]
        table = pd.DataFrame(rows).set_index("row")
        table["largest difference"] = table.max(axis=1) - table.min(axis=1)
        print(
            "\nBest checkpoint's validation table, Sharpe per kernel setting (rows may name other agents "
            "when the best checkpoint differs):"
        )
        print(table)
        print("\nWall time of the whole command, seconds:")
        print(pd.Series(walls).round(0).to_string())


if __name__ == "__main__":
    main()
