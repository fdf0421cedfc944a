"""Stage 5: the Fit object: summaries, diagnostics, information criteria, predictions,
save and load."""

from .criteria import DIC, compare
from .fit import Fit, FitInfo, load
from .summary import ConvergenceWarning

__all__ = ["Fit", "FitInfo", "load", "ConvergenceWarning", "DIC", "compare"]
