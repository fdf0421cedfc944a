"""Stage 5: the Fit object: summaries, diagnostics, predictions, save and load."""

from .fit import Fit, FitInfo, load
from .summary import ConvergenceWarning

__all__ = ["Fit", "FitInfo", "load", "ConvergenceWarning"]
