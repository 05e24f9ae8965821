#!/usr/bin/env python
"""PPO sampling throughput on a local multi-node Ray cluster with 1, 2 and 4 env runners.

    python benchmarks/bench_cluster.py [--iterations 3] [--envs 4]

A head node (1 CPU, runs the driver and the learner) and a second node with 4 logical CPUs on
this machine; env runners are spread by Ray. env steps/s = env steps sampled / wall time of
algo.train(), median over iterations after the first. On a 2-core machine runners beyond the
physical cores share them: read the table as scaling of overhead, not of hardware.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time

import pandas as pd


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--envs", type=int, default=4)
    p.add_argument("--batch", type=int, default=4000)
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
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False, "object_store_memory": 256 * 2**20},
    )
    cluster.add_node(num_cpus=4, object_store_memory=256 * 2**20)
    rows = []
    try:
        ray.init(address=cluster.address, runtime_env=RUNTIME_ENV, logging_level=logging.ERROR, log_to_driver=False)
        for runners in (1, 2, 4):
            cfg = load_config(
                "default",
                {
                    "training.num_env_runners": runners,
                    "training.num_envs_per_env_runner": args.envs,
                    "training.train_batch_size": args.batch,
                },
            )
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
            rows.append(
                {
                    "env runners": runners,
                    "envs/runner": args.envs,
                    "nodes used": len(nodes),
                    "env steps/s": round(statistics.median(rates)),
                    "agent steps/s": round(5 * statistics.median(rates)),
                }
            )
    finally:
        ray.shutdown()
        cluster.shutdown()
    table = pd.DataFrame(rows)
    table["speed-up"] = (table["env steps/s"] / table["env steps/s"].iloc[0]).round(2)
    print(f"PPO on a local 2-node Ray cluster, {os.cpu_count()} physical cores")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
