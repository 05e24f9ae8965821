"""An RLlib env runner that steps all its episodes in one `MultiAgentTradingVectorEnv` call.

RLlib's `MultiAgentEnvRunner` vectorises a multi-agent env by holding `num_envs_per_env_runner`
separate env objects (`SyncVectorMultiAgentEnv`) and stepping them one after the other, deep-copying
every observation dict. `VectorEnvRunner` keeps everything else of that runner (episodes, connectors,
callbacks, metrics, checkpoints) and only builds the env differently: one
`MultiAgentTradingVectorEnv` whose core steps the B episodes x 5 agents as [B*5, N] arrays. The
vector env is tested equal to the single env step by step, autoresets included, so the samples are
those of B `MultiAgentTradingEnv`s; only the random stream that draws start days differs (one per
runner instead of one per sub-env).

Selected with `training.vector_env: true` (the default); `false` goes back to RLlib's own runner.
"""

from __future__ import annotations

from typing import Any

from ray.rllib.callbacks.utils import make_callback
from ray.rllib.env.env_context import EnvContext
from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner

from wealtharena.envs.multi_agent_env import MultiAgentTradingVectorEnv
from wealtharena.training.data_service import env_data_for


class VectorEnvRunner(MultiAgentEnvRunner):
    """`MultiAgentEnvRunner` over one `MultiAgentTradingVectorEnv` of `num_envs_per_env_runner`
    episodes (RLlib's `VectorMultiAgentEnv` API, NEXT_STEP autoreset, as the runner expects).
    `build_env` makes the env (the training benchmark swaps in a no-op)."""

    def build_env(self, num_envs: int, env_config: dict[str, Any]) -> Any:
        return MultiAgentTradingVectorEnv(num_envs, env_config, data=env_data_for(env_config))

    env: Any

    def make_env(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None
        env_ctx: Any = self.config.env_config
        if not isinstance(env_ctx, EnvContext):
            env_ctx = EnvContext(
                env_ctx, worker_index=self.worker_index, num_workers=self.config.num_env_runners, remote=False
            )
        self.env = self.build_env(self.config.num_envs_per_env_runner, dict(env_ctx))
        self.num_envs = self.env.num_envs
        self._needs_initial_reset = True
        make_callback(
            "on_environment_created",
            callbacks_objects=self._callbacks,
            callbacks_functions=self.config.callbacks_on_environment_created,
            kwargs=dict(env_runner=self, metrics_logger=self.metrics, env=self.env, env_context=env_ctx),
        )
