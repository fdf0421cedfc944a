"""Simulators with the structure of the worked examples' data (no real data is shipped)."""

from .ratings import CHEESE_MODELS, cheese_priors, simulate_ratings

__all__ = ["CHEESE_MODELS", "cheese_priors", "simulate_ratings"]
