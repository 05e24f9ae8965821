#!/usr/bin/env python
"""Env step throughput: TradingEnv and MultiAgentTradingEnv (one step = all 5 agents act), 20 assets,
random actions, resets included; each as one env (one Python call per step) and as a vector env
(B episodes stepped as one array; steps/s counts env steps, B per call).

    python benchmarks/bench_env.py [--steps 5000] [--repeats 3] [--vector 64] [--ma-vector 32]

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


def run_vector(cfg, steps: int, num_envs: int) -> float:
    import gymnasium as gym

    import wealtharena.envs  # noqa: F401  (registers WealthArena-v0)

    env = gym.make_vec("WealthArena-v0", num_envs=num_envs, vectorization_mode="vector_entry_point", config=cfg)
    env.reset(seed=0)
    calls = max(steps // num_envs, 20)
    actions = np.random.default_rng(0).uniform(-1, 1, (calls,) + env.action_space.shape).astype(np.float32)
    t0 = time.perf_counter()
    for i in range(calls):
        env.step(actions[i])                             # autoreset: ended episodes restart on the next call
    return calls * num_envs / (time.perf_counter() - t0)


def run_multi_vector(cfg, steps: int, num_envs: int) -> float:
    from wealtharena.envs.multi_agent_env import MultiAgentTradingVectorEnv

    env = MultiAgentTradingVectorEnv(num_envs, {"config": cfg})
    env.reset(seed=0)
    ids, n = env.agent_ids, env.core.n + 1
    calls = max(steps // num_envs, 20)
    actions = np.random.default_rng(0).uniform(-1, 1, (calls, num_envs, len(ids), n)).astype(np.float32)
    t0 = time.perf_counter()
    for i in range(calls):
        env.step([{a: actions[i, e, k] for k, a in enumerate(ids)} for e in range(num_envs)])
    return calls * num_envs / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--vector", type=int, default=64, help="episodes per TradingVectorEnv")
    p.add_argument("--ma-vector", type=int, default=32, help="episodes per MultiAgentTradingVectorEnv")
    args = p.parse_args()
    logging.disable(logging.WARNING)
    cfg = config_from_dict({"data": {"quality": {"warn_only": ["jump"]}}})
    rows = []
    cases = (("TradingEnv (1 agent)", run_single, 50_000, 1),
             (f"TradingVectorEnv ({args.vector} envs)", lambda c, n: run_vector(c, n, args.vector), 50_000, 1),
             ("MultiAgentTradingEnv (5 agents)", run_multi, 15_000, 5),
             (f"MultiAgentTradingVectorEnv ({args.ma_vector} envs)",
              lambda c, n: run_multi_vector(c, n, args.ma_vector), 15_000, 5))
    for name, fn, target, agents in cases:
        fn(cfg, 200)  # warm up: data, features, caches
        runs = [fn(cfg, args.steps) for _ in range(args.repeats)]
        sps = statistics.median(runs)
        rows.append({"env": name, "steps/s (median)": round(sps), "agent-steps/s": round(sps * agents),
                     "us/step": round(1e6 / sps, 1), "target": target, "runs": ", ".join(f"{r:.0f}" for r in runs)})
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
