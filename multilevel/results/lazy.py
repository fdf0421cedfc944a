"""ArviZ, imported at its first use.

Importing ArviZ loads matplotlib and scipy.stats with it (about a second); a fit
that is only summarised never needs it, so the results modules import it here,
inside the functions that use it.
"""

from __future__ import annotations

import warnings
from types import ModuleType


def arviz() -> ModuleType:
    """The ``arviz`` module, without the warning of its coming refactor."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ArviZ is undergoing a major refactor.*")
        import arviz
    return arviz
