"""RLlib callbacks: per-policy reward terms of finished episodes, read from the env's final infos."""

from __future__ import annotations

from typing import Any

from ray.rllib.callbacks.callbacks import RLlibCallback


class RewardTermsCallback(RLlibCallback):
    """Logs `reward_terms/<profile>/<term>` (sum over an episode, mean over recent episodes) and
    `final_value/<profile>` (end value over start value) into the env runners' results."""

    def on_episode_end(self, *, episode: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
        if metrics_logger is None:
            return
        infos = episode.get_infos(indices=-1, env_steps=False)
        for info in infos.values():
            terms = info.get("episode_reward_terms") if isinstance(info, dict) else None
            if not terms:
                continue
            profile = info["profile"]
            for term, value in terms.items():
                metrics_logger.log_value(("reward_terms", profile, term), value, reduce="mean", window=50)
