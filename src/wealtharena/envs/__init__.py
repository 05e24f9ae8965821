"""Gymnasium and RLlib environments over the shared simulation core.

`gymnasium.make("WealthArena-v0")` builds a `TradingEnv` on config/default.yaml;
`gymnasium.make_vec("WealthArena-v0", num_envs=64, vectorization_mode="vector_entry_point")` a
`TradingVectorEnv` (64 episodes stepped as one array).
"""

from gymnasium.envs.registration import register, registry

from wealtharena.envs.data import EnvData, load_env_data
from wealtharena.envs.spec import EnvOptions
from wealtharena.envs.trading_env import TradingEnv
from wealtharena.envs.vector_env import TradingVectorEnv

__all__ = [
    "EnvData",
    "EnvOptions",
    "MultiAgentTradingEnv",
    "MultiAgentTradingVectorEnv",
    "TradingEnv",
    "TradingVectorEnv",
    "load_env_data",
]

if "WealthArena-v0" not in registry:
    register(
        id="WealthArena-v0",
        entry_point="wealtharena.envs.trading_env:TradingEnv",
        vector_entry_point="wealtharena.envs.vector_env:TradingVectorEnv",
    )


def __getattr__(name: str):
    # RLlib is heavy to import: load the multi-agent env only when asked for.
    if name in ("MultiAgentTradingEnv", "MultiAgentTradingVectorEnv"):
        from wealtharena.envs import multi_agent_env

        return getattr(multi_agent_env, name)
    raise AttributeError(name)
