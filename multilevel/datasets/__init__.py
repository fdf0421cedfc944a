"""Simulators with the structure of the worked examples' data (no real data is shipped)."""

from .growth import FACE_MODELS, face_priors, simulate_growth
from .ratings import CHEESE_MODELS, cheese_priors, simulate_ratings

__all__ = ["CHEESE_MODELS", "FACE_MODELS", "cheese_priors", "face_priors", "simulate_growth",
           "simulate_ratings"]
