"""Response families, as brms names them: ``ml.fit(..., family=ml.families.bernoulli("probit"))``.

Each name here is a family class; calling it with a link (and, for
``student_t``, ``nu``) gives a family object. The same families can be named
by string (``family="bernoulli(probit)"``, ``"student_t(nu=4)"``). The table of
families, links and parameters is in :mod:`multilevel.model.families` and the README.
"""

from __future__ import annotations

from .model.families import FAMILIES, Family, Param, get_family

__all__ = ["FAMILIES", "Family", "Param", "get_family", *FAMILIES]


def __getattr__(name: str) -> type[Family]:
    """``ml.families.gaussian`` ... : every registered family, by its name."""
    if name in FAMILIES:
        return FAMILIES[name]
    raise AttributeError(f"module 'multilevel.families' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
