#!/usr/bin/env python
"""Env step throughput: TradingEnv and MultiAgentTradingEnv (one step = all 5 agents act), 20 assets,
random actions, resets included; each as one env (one Python call per step) and as a vector env
(B episodes stepped as one array; steps/s counts env steps, B per call).

    python benchmarks/bench_env.py [--steps 5000] [--repeats 3] [--vector 64] [--ma-vector 32]
                                   [--set env.rebalance_speed=1]

Targets: a TradingEnv step rate of 50,000 env steps/s and a MultiAgentTradingEnv rate of 15,000
env steps/s (5 agents each), met by the vector envs (a single env pays ~100 small numpy calls per step).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import gymnasium as gym
import numpy as np
import pandas as pd
import yaml

import wealtharena.envs  # noqa: F401  (registers WealthArena-v0)
from wealtharena.config import coerce_config
from wealtharena.envs import TradingEnv
from wealtharena.envs.data import load_env_data
from wealtharena.envs.multi_agent_env import MultiAgentTradingEnv, MultiAgentTradingVectorEnv


def run_single(cfg, data, steps: int) -> float:
    env = TradingEnv(config=cfg, data=data)
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, env.action_space.shape[0])).astype(np.float32)
    t0 = time.perf_counter()
    for i in range(steps):
        _, _, term, trunc, _ = env.step(actions[i])
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - t0)


def run_multi(cfg, data, steps: int) -> float:
    env = MultiAgentTradingEnv({"config": cfg}, data=data)
    env.reset(seed=0)
    n = env.core.n + 1
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, len(env.possible_agents), n)).astype(np.float32)
    t0 = time.perf_counter()
    for i in range(steps):
        _, _, term, trunc, _ = env.step({a: actions[i, k] for k, a in enumerate(env.agents)})
        if term["__all__"] or trunc["__all__"]:
            env.reset()
    return steps / (time.perf_counter() - t0)


def run_vector(cfg, data, steps: int, num_envs: int) -> float:
    env = gym.make_vec(
        "WealthArena-v0", num_envs=num_envs, vectorization_mode="vector_entry_point", config=cfg, data=data
    )
    env.reset(seed=0)
    calls = max(steps // num_envs, 20)
    actions = np.random.default_rng(0).uniform(-1, 1, (calls,) + env.action_space.shape).astype(np.float32)
    t0 = time.perf_counter()
    for i in range(calls):
        env.step(actions[i])  # autoreset: ended episodes restart on the next call
    return calls * num_envs / (time.perf_counter() - t0)


def run_multi_vector(cfg, data, steps: int, num_envs: int) -> float:
    env = MultiAgentTradingVectorEnv(num_envs, {"config": cfg}, data=data)
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
    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides (YAML values), e.g. env.rebalance_speed=1",
    )
    args = p.parse_args()
    logging.disable(logging.WARNING)
    cfg = coerce_config({}, {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)})
    data = load_env_data(cfg)
    rows = []
    cases = (
        ("TradingEnv (1 agent)", run_single, 50_000, 1),
        (f"TradingVectorEnv ({args.vector} envs)", lambda c, d, n: run_vector(c, d, n, args.vector), 50_000, 1),
        ("MultiAgentTradingEnv (5 agents)", run_multi, 15_000, 5),
        (
            f"MultiAgentTradingVectorEnv ({args.ma_vector} envs)",
            lambda c, d, n: run_multi_vector(c, d, n, args.ma_vector),
            15_000,
            5,
        ),
    )
    for name, fn, target, agents in cases:
        fn(cfg, data, 200)  # warm up: caches, strided windows
        runs = [fn(cfg, data, args.steps) for _ in range(args.repeats)]
        sps = statistics.median(runs)
        rows.append(
            {
                "env": name,
                "steps/s (median)": round(sps),
                "agent-steps/s": round(sps * agents),
                "us/step": round(1e6 / sps, 1),
                "target": target,
                "runs": ", ".join(f"{r:.0f}" for r in runs),
            }
        )
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
