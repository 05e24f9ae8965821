#!/usr/bin/env python
"""PPO training throughput of WealthArena's 5-agent env, four ways, in one run:

(a) a no-op env of identical spaces (5 agents, same observation and action shapes, same episode
    length) on RLlib's own runner: RLlib's ceiling on this machine, whatever the env;
(b) MultiAgentTradingVectorEnv on `VectorEnvRunner` (`training.runner: vector`): RLlib episodes from
    one array step of all a runner's episodes (`--vector-envs` per runner, 4 by default: the
    fastest it was measured at);
(c) the array path (`training.runner: array`, the default): `ArrayEnvRunner` + `ArrayPPO`;
(d) a bare single-process PPO loop over the same core and networks (benchmarks/bare_ppo.py): the
    yardstick of what these cores do with this env and network, without RLlib.

Targets on 2 cores: (c) >= 2.5x (a) and >= 0.8x (d) on the default config; on the production config
(c) >= 2.5x (b).

    python benchmarks/bench_train.py [--config default] [--iterations 3] [--rounds 3] [--runners N]
                                     [--envs N] [--vector-envs 4] [--batch N]

env steps/s = env steps sampled / wall time of one iteration (`algo.train()`, or one sample + update of
(d)). Everything is built once and warmed up by one iteration, then measured in alternating rounds
(a, b, c, d, a, b, ...) so that drift in the machine's speed hits all alike; the figure is the median over
all measured iterations. (c)'s iteration is also split into where it spends its time (RLlib's timers of
the last iteration: sampling, building the train batch, the learner update, the weight sync).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from gymnasium import spaces
from ray.rllib.env.multi_agent_env import MultiAgentEnv
from ray.tune.registry import register_env

from wealtharena.config import load_config
from wealtharena.envs.data import load_env_data
from wealtharena.envs.multi_agent_env import MultiAgentTradingEnv
from wealtharena.training.algorithms import build_algorithm_config
from wealtharena.training.data_service import publish
from wealtharena.training.runtime import ray_session

sys.path.insert(0, str(Path(__file__).parent))
from bare_ppo import BarePPO  # noqa: E402  (a sibling script, not part of the package)

TIMERS = {
    "sampling": "env_runner_sampling_timer",
    "train batch": "train_batch_build",
    "update": "learner_update_timer",
    "weight sync": "synch_weights",
}


class NoOpMultiAgentEnv(MultiAgentEnv):
    """Same agents and spaces as MultiAgentTradingEnv, zero work per step. With `critic_dim` (the
    run's training.critic_horizons) every info carries a `critic` array of that size, as the
    training env's do, so that the learner does the same work."""

    def __init__(self, env_config: dict | None = None):
        super().__init__()
        c = env_config or {}
        self.possible_agents = list(c["agents"])
        self.agents = list(self.possible_agents)
        obs = spaces.Box(-10.0, 10.0, (c["obs_dim"],), np.float32)
        act = spaces.Box(-1.0, 1.0, (c["act_dim"],), np.float32)
        self.observation_spaces = {a: obs for a in self.possible_agents}
        self.action_spaces = {a: act for a in self.possible_agents}
        self.length = c["length"]
        self._obs = np.zeros(c["obs_dim"], np.float32)
        self._critic = np.zeros(c.get("critic_dim", 0), np.float32)
        self.t = 0

    def infos(self, agents) -> dict:
        return {a: {"critic": self._critic} for a in agents} if self._critic.size else {a: {} for a in agents}

    def reset(self, *, seed=None, options=None):
        self.t = 0
        self.agents = list(self.possible_agents)
        return {a: self._obs for a in self.agents}, self.infos(self.agents)

    def step(self, action_dict):
        self.t += 1
        done = self.t >= self.length
        obs = {a: self._obs for a in action_dict}
        rew = {a: 0.0 for a in action_dict}
        term = {a: False for a in action_dict} | {"__all__": False}
        trunc = {a: done for a in action_dict} | {"__all__": done}
        return obs, rew, term, trunc, self.infos(action_dict)


def _bare_worker(conn, config: str, overrides: dict, envs: int, threads: int) -> None:
    """(d) in a process of its own (no Ray, no other algorithm in memory): one iteration per request."""
    logging.disable(logging.WARNING)
    cfg = load_config(config, overrides)
    bare = BarePPO(cfg, load_env_data(cfg), envs, threads=threads, seed=cfg.seed)
    while conn.recv():
        conn.send(bare.iteration()[2])


def measure(step, iterations: int) -> list[float]:
    """env steps/s of each of `iterations` calls of `step` (which returns the env steps it took)."""
    rates = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        steps = step()
        rates.append(steps / (time.perf_counter() - t0))
    return rates


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="default", help="config name or path (default: config/default.yaml)")
    p.add_argument("--iterations", type=int, default=3, help="iterations per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--runners", type=int, default=None, help="env runners (default: the config's)")
    p.add_argument("--envs", type=int, default=None, help="episodes per runner, (a) and (c) (default: the config's)")
    p.add_argument("--vector-envs", type=int, default=4, help="episodes per runner of (b)")
    p.add_argument("--bare-envs", type=int, default=64, help="episodes stepped together by (d)")
    p.add_argument("--batch", type=int, default=None, help="train batch size (default: the config's)")
    args = p.parse_args()
    logging.disable(logging.WARNING)
    base = load_config(args.config)
    runners = base.training.num_env_runners if args.runners is None else args.runners
    envs = base.training.num_envs_per_env_runner if args.envs is None else args.envs
    overrides = {
        "training.num_env_runners": runners,
        "training.num_envs_per_env_runner": envs,
        **({"training.train_batch_size": args.batch} if args.batch else {}),
        # logical CPUs: the algorithms train one at a time
        "training.num_cpus": 3 * max(runners, 1),
    }
    cfg = load_config(args.config, overrides)
    cores = len(os.sched_getaffinity(0))
    data = load_env_data(cfg)
    probe = MultiAgentTradingEnv({"config": cfg}, data=data)
    noop_config = {
        "agents": probe.possible_agents,
        "obs_dim": probe.core.dim,
        "act_dim": probe.core.n + 1,
        "length": cfg.env.episode_length,
        "critic_dim": len(cfg.training.critic_inputs() or []) * probe.core.n,
    }
    rows, split = [], {}
    with ray_session(cfg, obs_dim=probe.core.dim):
        holder = publish(data)  # noqa: F841  (every runner takes the driver's data)
        register_env("wealtharena_noop", lambda c: NoOpMultiAgentEnv(dict(c)))

        def variant(**training):
            return cfg.model_copy(update={"training": cfg.training.model_copy(update=training)})

        rllib = variant(runner="rllib")
        vector = variant(runner="vector", num_envs_per_env_runner=args.vector_envs)
        algos = {
            "(a) no-op env, RLlib's runner": build_algorithm_config(rllib, data)
            .environment("wealtharena_noop", env_config=noop_config)
            .build_algo(),
            f"(b) VectorEnvRunner ({args.vector_envs} episodes per runner)": build_algorithm_config(
                vector, data
            ).build_algo(),
            "(c) array path (ArrayEnvRunner + ArrayPPO)": build_algorithm_config(cfg, data).build_algo(),
        }
        conn, child = mp.get_context("spawn").Pipe()
        worker = mp.get_context("spawn").Process(
            target=_bare_worker, args=(child, args.config, overrides, args.bare_envs, cores), daemon=True
        )
        worker.start()
        bare_name = f"(d) bare single-process loop ({args.bare_envs} episodes)"

        def bare_step() -> int:
            conn.send(True)
            return int(conn.recv())

        steps = {
            name: (lambda a=algo: a.train()["env_runners"]["num_env_steps_sampled"]) for name, algo in algos.items()
        }
        steps[bare_name] = bare_step
        try:
            rates: dict[str, list[float]] = {name: [] for name in steps}
            for step in steps.values():
                step()  # warm-up: first sampling, module build
            for _ in range(args.rounds):
                for name, step in steps.items():
                    rates[name] += measure(step, args.iterations)
            array = algos["(c) array path (ArrayEnvRunner + ArrayPPO)"]
            timers = array.train()["timers"]
            split = {k: timers.get(v, float("nan")) for k, v in TIMERS.items()}
        finally:
            for algo in algos.values():
                algo.stop()
            conn.send(False)
            worker.join(timeout=30)
        for name, r in rates.items():
            rows.append(
                {"path": name, "env steps/s": round(statistics.median(r)), "range": f"{min(r):.0f}-{max(r):.0f}"}
            )
    table = pd.DataFrame(rows)
    table["ratio to (a)"] = (table["env steps/s"] / table["env steps/s"].iloc[0]).round(2)
    c, b, d = (table["env steps/s"].iloc[i] for i in (2, 1, 3))
    print(
        f"PPO, config {args.config}, {runners} runners x {envs} episodes, batch {cfg.training.train_batch_size}, "
        f"{cores} cores, learner threads {cfg.training.learner_threads or cores}"
    )
    print(table.to_string(index=False))
    print(f"(c) / (b) = {c / b:.2f}, (c) / (d) = {c / d:.2f}")
    print("(c) one iteration: " + ", ".join(f"{k} {v:.2f} s" for k, v in split.items()))


if __name__ == "__main__":
    main()
