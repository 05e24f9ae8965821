"""Run by test_walkforward_cluster.py in its own process (the test session holds its own Ray): a real
two-node Ray cluster on this machine (a head with 1 CPU, a second node with 2), and train.py's walk-forward
joining it with --address, every window from scratch as a parallel Ray task. Prints one JSON line."""

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

        rc = train.main(["--config", config, "--mode", "walkforward", "--address", cluster.address, "--no-progress"])
        root = Path(workdir) / "checkpoints" / "tiny" / "walkforward-s0"
        records = {p.parent.name: json.loads(p.read_text()) for p in root.glob("*/result.json")}
        print(
            "CLUSTER_RESULT "
            + json.dumps(
                {
                    "rc": rc,
                    "nodes": {name: r["node"] for name, r in records.items()},
                    "seconds": {name: r["seconds"] for name, r in records.items()},
                    "head": cluster.head_node.node_id,
                    "worker": worker.node_id,
                    "report": str(Path(workdir) / "checkpoints" / "tiny" / "walkforward" / "report.html"),
                }
            )
        )
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
