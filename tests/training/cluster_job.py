"""Run by test_cluster.py in its own process (the test session holds its own Ray): a real two-node
Ray cluster on this machine (a head with 1 CPU, a second node with 2), train.py joining it with
--address, then --mode evaluate on the checkpoint it wrote. Prints one JSON line for the test."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", PYTHONHASHSEED="0")


def main(config: str, workdir: str) -> None:
    import ray
    from ray.cluster_utils import Cluster

    os.chdir(workdir)
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": 128 * 2**20, "include_dashboard": False},
    )
    worker = cluster.add_node(num_cpus=2, object_store_memory=128 * 2**20)
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
        import train

        rc_train = train.main(
            [
                "--config",
                config,
                "--address",
                cluster.address,
                "--iterations",
                "2",
                "--experiment",
                "cluster",
                "--no-progress",
            ]
        )
        run = next((Path(workdir) / "checkpoints" / "cluster").iterdir())
        meta = json.loads((run / "best" / "wealtharena.json").read_text())
        rc_eval = train.main(["--mode", "evaluate", "--checkpoint", str(run / "best"), "--split", "validation"])
        print(
            "CLUSTER_RESULT "
            + json.dumps(
                {
                    "rc_train": rc_train,
                    "rc_eval": rc_eval,
                    "runners": meta["runners"],
                    "head": cluster.head_node.node_id,
                    "worker": worker.node_id,
                    "report": str(run / "best" / "eval-validation" / "report.html"),
                }
            )
        )
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
