#!/usr/bin/env python
"""Env step throughput: TradingEnv and MultiAgentTradingEnv (one step = all 5 agents act), 20 assets,
random actions, resets included.

    python benchmarks/bench_env.py [--steps 5000] [--repeats 3]

Anchors measured on a 2-core machine (shared/notes/peers.md): FinRL StockTradingEnv 271 steps/s,
FinRL portfolio env 825 steps/s, a bare numpy rebalance step with no risk manager 111,000 steps/s.
Targets (issue #4): TradingEnv >= 50,000 steps/s, MultiAgentTradingEnv >= 15,000 steps/s.
"""
from __future__ import annotations

import argparse
import logging
import statistics
import time

import numpy as np
import pandas as pd

from wealtharena.config import config_from_dict


def run_single(cfg, steps: int) -> float:
    from wealtharena.envs import TradingEnv

    env = TradingEnv(config=cfg)
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, env.action_space.shape[0])).astype(np.float32)
    t0 = time.perf_counter()
    for i in range(steps):
        _, _, term, trunc, _ = env.step(actions[i])
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - t0)


def run_multi(cfg, steps: int) -> float:
    from wealtharena.envs.multi_agent_env import MultiAgentTradingEnv

    env = MultiAgentTradingEnv({"config": cfg})
    env.reset(seed=0)
    n = env.core.n + 1
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, len(env.possible_agents), n)).astype(np.float32)
    t0 = time.perf_counter()
    for i in range(steps):
        _, _, term, trunc, _ = env.step({a: actions[i, k] for k, a in enumerate(env.agents)})
        if term["__all__"] or trunc["__all__"]:
            env.reset()
    return steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    logging.disable(logging.WARNING)
    cfg = config_from_dict({"data": {"quality": {"warn_only": ["jump"]}}})
    rows = []
    for name, fn, target in (("TradingEnv (1 agent)", run_single, 50_000),
                             ("MultiAgentTradingEnv (5 agents)", run_multi, 15_000)):
        fn(cfg, 200)  # warm up: data, features, caches
        runs = [fn(cfg, args.steps) for _ in range(args.repeats)]
        sps = statistics.median(runs)
        agents = 5 if "Multi" in name else 1
        rows.append({"env": name, "steps/s (median)": round(sps), "agent-steps/s": round(sps * agents),
                     "us/step": round(1e6 / sps, 1), "target": target, "runs": ", ".join(f"{r:.0f}" for r in runs)})
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
