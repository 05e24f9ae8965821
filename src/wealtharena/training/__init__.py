"""RLlib training of the agents' policies: algorithms (PPO and A2C on the array runner, SAC), the training
run (`Run`, `train`), checkpoints, tracking, and the trained policies for inference without Ray.

    from wealtharena.training import TrainedPolicy
    policy = TrainedPolicy.from_checkpoint("checkpoints/default/<run>/best", cfg)
"""

from wealtharena.training.algorithms import build_algorithm_config
from wealtharena.training.checkpoints import CheckpointMeta, read_meta
from wealtharena.training.inference import TrainedPolicy
from wealtharena.training.run import Run, TrainResult, train

__all__ = ["CheckpointMeta", "Run", "TrainResult", "TrainedPolicy", "build_algorithm_config", "read_meta", "train"]
