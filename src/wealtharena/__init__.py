"""WealthArena: multi-agent reinforcement-learning trading on real data, with enforced risk limits."""

__version__ = "0.1.0"
