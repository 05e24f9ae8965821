#!/usr/bin/env python
"""PPO training throughput on one node and on a local 2-node Ray cluster, at the same runner counts.

    python benchmarks/bench_cluster.py [--iterations 3] [--runners 1 2] [--envs N] [--batch N]

For each runner count, the default config (the array path) trains in (1) a local single-node session, as
`python train.py` runs, and (2) a cluster of a head node (1 CPU: the driver and the learner) and a second
node with 4 logical CPUs on this machine, where Ray places the runners on either node. env steps/s = env
steps sampled / wall time of `algo.train()`, median over the iterations after the first. On a 2-core machine
both share the same two cores: read the table as the cost of the cluster's machinery (object transfer
between nodes, remote weight sync), not as hardware scaling.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time

import pandas as pd


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=4)
    p.add_argument("--runners", type=int, nargs="+", default=[1, 2])
    p.add_argument("--envs", type=int, default=None, help="episodes per runner (default: the config's)")
    p.add_argument("--batch", type=int, default=None, help="train batch size (default: the config's)")
    args = p.parse_args()
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    logging.disable(logging.WARNING)
    import ray
    import torch
    from ray.cluster_utils import Cluster

    from wealtharena.config import load_config
    from wealtharena.envs.data import load_env_data
    from wealtharena.training.algorithms import build_algorithm_config
    from wealtharena.training.data_service import publish
    from wealtharena.training.runtime import RUNTIME_ENV, runner_placement

    torch.set_num_threads(1)

    def configs():
        for runners in args.runners:
            overrides: dict = {"training.num_env_runners": runners, "training.num_cpus": runners + 1}
            if args.envs:
                overrides["training.num_envs_per_env_runner"] = args.envs
            if args.batch:
                overrides["training.train_batch_size"] = args.batch
            yield runners, load_config("default", overrides)

    def measure(where: str, runners: int, cfg) -> dict:
        data = load_env_data(cfg)
        holder = publish(data)  # noqa: F841  (alive while the runners start)
        algo = build_algorithm_config(cfg, data).build_algo()
        try:
            nodes = {p["node_id"] for p in runner_placement(algo)}
            rates = []
            for i in range(args.iterations):
                t0 = time.perf_counter()
                steps = algo.train()["env_runners"]["num_env_steps_sampled"]
                if i > 0:
                    rates.append(steps / (time.perf_counter() - t0))
        finally:
            algo.stop()
        rate = statistics.median(rates)
        return {
            "where": where,
            "env runners": runners,
            "envs/runner": cfg.training.num_envs_per_env_runner,
            "nodes used": len(nodes),
            "env steps/s": round(rate),
            "per runner": round(rate / runners),
        }

    rows = []
    for runners, cfg in configs():
        ray.init(
            address="local",
            num_cpus=runners + 1,
            include_dashboard=False,
            object_store_memory=256 * 2**20,
            runtime_env=RUNTIME_ENV,
            logging_level=logging.ERROR,
            log_to_driver=False,
        )
        try:
            rows.append(measure("one node", runners, cfg))
        finally:
            ray.shutdown()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False, "object_store_memory": 256 * 2**20},
    )
    cluster.add_node(num_cpus=4, object_store_memory=256 * 2**20)
    try:
        ray.init(address=cluster.address, runtime_env=RUNTIME_ENV, logging_level=logging.ERROR, log_to_driver=False)
        for runners, cfg in configs():
            rows.append(measure("2-node cluster", runners, cfg))
    finally:
        ray.shutdown()
        cluster.shutdown()
    table = pd.DataFrame(rows)
    print(
        f"PPO (default config, array path) on one node and on a local 2-node Ray cluster, "
        f"{len(os.sched_getaffinity(0))} cores"
    )
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
