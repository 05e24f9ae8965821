"""Gymnasium and RLlib environments over the shared simulation core.

`gymnasium.make("WealthArena-v0")` builds a `TradingEnv` on config/default.yaml.
"""
from gymnasium.envs.registration import register, registry

from wealtharena.envs.trading_env import TradingEnv

__all__ = ["TradingEnv", "MultiAgentTradingEnv"]

if "WealthArena-v0" not in registry:
    register(id="WealthArena-v0", entry_point="wealtharena.envs.trading_env:TradingEnv")


def __getattr__(name: str):
    # RLlib is heavy to import: load the multi-agent env only when asked for.
    if name == "MultiAgentTradingEnv":
        from wealtharena.envs.multi_agent_env import MultiAgentTradingEnv

        return MultiAgentTradingEnv
    raise AttributeError(name)
