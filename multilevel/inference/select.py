"""Which sampler fits a model best, and why.

``auto`` picks the collapsed sampler for every Gaussian model whose group terms
share one grouping factor, or sit on two nested factors (exact,
row-count-independent, no funnel), and NUTS on the full model otherwise.
"""

from __future__ import annotations

from ..errors import SamplerError
from ..model.family import Family

SAMPLERS = ("auto", "nuts", "collapsed")


def collapsible(family: Family, factors: tuple[str, ...], order: tuple[str, ...] | None) -> str | None:
    """None if the collapsed sampler covers the model, else the reason it does not.

    ``factors`` are the grouping factors, ``order`` their nesting order (None if not nested).
    """
    if family.name != "gaussian":
        return f"the {family.name} family has no closed-form marginal likelihood"
    if len(factors) > 2:
        return f"more than two grouping factors ({', '.join(factors)}) are not collapsed yet"
    if order is None:
        return f"the grouping factors {' and '.join(factors)} are crossed, not nested"
    return None


def choose_sampler(requested: str, family: Family, factors: tuple[str, ...],
                   order: tuple[str, ...] | None) -> tuple[str, str]:
    """``(sampler, reason)`` for a requested sampler name (see :func:`collapsible`)."""
    if requested not in SAMPLERS:
        raise SamplerError(f"unknown sampler {requested!r}; choose from {', '.join(SAMPLERS)}")
    why_not = collapsible(family, factors, order)
    if requested == "collapsed":
        if why_not:
            raise SamplerError(f"sampler='collapsed' cannot fit this model: {why_not}; "
                               "use sampler='nuts'")
        return "collapsed", "requested"
    if requested == "nuts":
        return "nuts", "requested"
    if why_not is None:
        where = {0: "no group terms", 1: f"one grouping factor ({order[0]})"}.get(
            len(order), f"nested grouping factors ({' within '.join(reversed(order))})")
        return "collapsed", f"Gaussian with {where}: effects integrated out exactly"
    return "nuts", f"NUTS on the full model: {why_not}"
