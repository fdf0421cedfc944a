"""Simulators with the structure of the worked examples' data (no real data is shipped)."""

from .growth import simulate_growth
from .ratings import CHEESE_MODELS, cheese_priors, simulate_ratings

__all__ = ["CHEESE_MODELS", "cheese_priors", "simulate_growth", "simulate_ratings"]
