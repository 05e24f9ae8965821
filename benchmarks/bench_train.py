#!/usr/bin/env python
"""PPO training throughput of WealthArena's 5-agent env against the same run with a no-op env of
identical spaces (5 agents, same observation and action shapes, same episode length): RLlib's
own ceiling on this machine. Target: ours >= 0.9x the no-op figure.

Four runs, same PPO config:
- no-op env, RLlib's MultiAgentEnvRunner (separate env objects in RLlib's SyncVectorMultiAgentEnv):
  the ceiling the target refers to;
- MultiAgentTradingEnv on that same runner (`training.vector_env: false`);
- MultiAgentTradingVectorEnv on `VectorEnvRunner` (the default training path: one call steps
  all episodes of a runner);
- a no-op vector env on `VectorEnvRunner`: the ceiling of that path (it also skips RLlib's
  per-step deep copy of the observation dicts, so it sits above the first row).

    python benchmarks/bench_train.py [--config default] [--iterations 3] [--rounds 3] [--runners N] [--envs N]
                                     [--batch N]

env steps/s = env steps sampled / wall time of algo.train(). Both algorithms are built once, warmed
up by one iteration, then measured in alternating rounds (no-op, ours, no-op, ours, ...) so that
drift in the machine's speed hits both alike; the figure is the median over all measured iterations.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time

import numpy as np
import pandas as pd
from gymnasium import spaces
from ray.rllib.env.multi_agent_env import MultiAgentEnv
from ray.rllib.env.vector.vector_multi_agent_env import VectorMultiAgentEnv
from ray.tune.registry import register_env

from wealtharena.config import load_config
from wealtharena.envs.data import load_env_data
from wealtharena.envs.multi_agent_env import MultiAgentTradingEnv, _EnvSlot
from wealtharena.training.algorithms import build_algorithm_config
from wealtharena.training.data_service import publish
from wealtharena.training.env_runner import VectorEnvRunner
from wealtharena.training.runtime import ray_session


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


class NoOpVectorMultiAgentEnv(VectorMultiAgentEnv):
    """`num_envs` no-op episodes in RLlib's vector multi-agent API (NEXT_STEP autoreset)."""

    metadata = {"autoreset_mode": "next_step"}

    def __init__(self, num_envs: int, env_config: dict):
        self.one = NoOpMultiAgentEnv(env_config)
        self.agent_ids = list(self.one.possible_agents)
        self.num_envs = num_envs
        self.single_observation_spaces = self.one.observation_spaces
        self.single_action_spaces = self.one.action_spaces
        self.single_observation_space = spaces.Dict(self.single_observation_spaces)
        self.single_action_space = spaces.Dict(self.single_action_spaces)
        self.envs = [_EnvSlot(self) for _ in range(num_envs)]
        self.t = np.zeros(num_envs, dtype=int)

    def reset(self, *, seed=None, options=None):
        self.t[:] = 0
        o = self.one._obs
        return [{a: o for a in self.agent_ids} for _ in range(self.num_envs)], [
            self.one.infos(self.agent_ids) for _ in range(self.num_envs)
        ]

    def step(self, actions):
        out = ([], [], [], [], [])
        o, length = self.one._obs, self.one.length
        for e in range(self.num_envs):
            self.t[e] = 0 if self.t[e] >= length else self.t[e] + 1  # autoreset: the reset obs, no step
            done = bool(self.t[e] >= length)
            rew = {a: 0.0 for a in self.agent_ids}
            for lst, d in zip(
                out,
                (
                    {a: o for a in self.agent_ids},
                    rew,
                    {a: False for a in self.agent_ids} | {"__all__": False},
                    {a: done for a in self.agent_ids} | {"__all__": done},
                    self.one.infos(self.agent_ids),
                ),
            ):
                lst.append(d)
        return out


class NoOpVectorEnvRunner(VectorEnvRunner):
    """`VectorEnvRunner` over the no-op vector env (no market data needed)."""

    def build_env(self, num_envs: int, env_config: dict):
        return NoOpVectorMultiAgentEnv(num_envs, env_config)


def measure(algo, iterations: int) -> list[float]:
    """env steps/s of each of `iterations` training iterations."""
    rates = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        result = algo.train()
        rates.append(result["env_runners"]["num_env_steps_sampled"] / (time.perf_counter() - t0))
    return rates


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", default="default", help="config name or path (default: config/default.yaml)")
    p.add_argument("--iterations", type=int, default=3, help="iterations per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--runners", type=int, default=None, help="env runners (default: the config's)")
    p.add_argument("--envs", type=int, default=None, help="episodes per runner (default: the config's)")
    p.add_argument("--batch", type=int, default=None, help="train batch size (default: config/default.yaml's)")
    args = p.parse_args()
    logging.disable(logging.WARNING)
    base = load_config(args.config)
    runners = base.training.num_env_runners if args.runners is None else args.runners
    envs = base.training.num_envs_per_env_runner if args.envs is None else args.envs
    cfg = load_config(
        args.config,
        {
            "training.num_env_runners": runners,
            "training.num_envs_per_env_runner": envs,
            **({"training.train_batch_size": args.batch} if args.batch else {}),
            # logical CPUs: the four algorithms train one at a time
            "training.num_cpus": 4 * max(runners, 1),
        },
    )
    data = load_env_data(cfg)
    probe = MultiAgentTradingEnv({"config": cfg}, data=data)
    noop_config = {
        "agents": probe.possible_agents,
        "obs_dim": probe.core.dim,
        "act_dim": probe.core.n + 1,
        "length": cfg.env.episode_length,
        "critic_dim": len(cfg.training.critic_inputs() or []) * probe.core.n,
    }
    rows = []
    with ray_session(cfg, obs_dim=len(data.observation_names(cfg.env.desk_observation))):
        holder = publish(data)  # noqa: F841  (every runner takes the driver's data)
        register_env("wealtharena_noop", lambda c: NoOpMultiAgentEnv(dict(c)))
        plain = cfg.model_copy(update={"training": cfg.training.model_copy(update={"vector_env": False})})
        noop = build_algorithm_config(plain, data).environment("wealtharena_noop", env_config=noop_config)
        noop_vec = (
            build_algorithm_config(cfg, data)
            .environment("wealtharena_noop", env_config=noop_config)
            .env_runners(env_runner_cls=NoOpVectorEnvRunner)
        )
        algos = {
            "no-op env, RLlib's runner (ceiling)": noop.build_algo(),
            "MultiAgentTradingEnv, RLlib's runner": build_algorithm_config(plain, data).build_algo(),
            "MultiAgentTradingVectorEnv, VectorEnvRunner (default)": build_algorithm_config(cfg, data).build_algo(),
            "no-op vector env, VectorEnvRunner": noop_vec.build_algo(),
        }
        try:
            rates: dict[str, list[float]] = {name: [] for name in algos}
            for algo in algos.values():
                algo.train()  # warm-up: first sampling, module build
            for _ in range(args.rounds):
                for name, algo in algos.items():
                    rates[name] += measure(algo, args.iterations)
        finally:
            for algo in algos.values():
                algo.stop()
        for name, r in rates.items():
            rows.append(
                {
                    "env": name,
                    "env steps/s": round(statistics.median(r)),
                    "runners x envs": f"{runners} x {envs}",
                    "batch": cfg.training.train_batch_size,
                    "range": f"{min(r):.0f}-{max(r):.0f}",
                }
            )
    table = pd.DataFrame(rows)
    table["ratio to no-op"] = (table["env steps/s"] / table["env steps/s"].iloc[0]).round(2)
    print(
        f"PPO, config {args.config}, torch threads 1, {os.cpu_count()} cores, "
        f"critic inputs {cfg.training.critic_inputs()}"
    )
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
