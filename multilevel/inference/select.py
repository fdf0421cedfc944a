"""Which sampler fits a model best, and why.

``auto`` picks, for a Gaussian model, the collapsed sampler when its group terms
share one grouping factor or sit on two nested factors (exact,
row-count-independent, no funnel), and the blocked Gibbs sampler when its
factors are crossed (what NUTS mixes worst on, and what Gibbs with the fixed
effects moved along each factor handles in seconds); NUTS on the full model
otherwise. A Gaussian offset (identity link) is subtracted from the response
before the fast paths see it.
"""

from __future__ import annotations

from ..errors import SamplerError
from ..model.families import Family

SAMPLERS = ("auto", "nuts", "collapsed", "gibbs")


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
                   order: tuple[str, ...] | None, gibbs_problem: str | None = None) -> tuple[str, str]:
    """``(sampler, reason)`` for a requested sampler name (see :func:`collapsible`);
    ``gibbs_problem`` says why the priors rule out the Gibbs sampler (None if they do not)."""
    if requested not in SAMPLERS:
        raise SamplerError(f"unknown sampler {requested!r}; choose from {', '.join(SAMPLERS)}")
    why_not = collapsible(family, factors, order)
    if requested == "collapsed":
        if why_not:
            raise SamplerError(f"sampler='collapsed' cannot fit this model: {why_not}; "
                               "use sampler='gibbs' or 'nuts'")
        return "collapsed", "requested"
    if requested == "gibbs":
        if family.name != "gaussian":
            raise SamplerError(f"sampler='gibbs' fits Gaussian models; the {family.name} family has no "
                               "conjugate updates: use sampler='nuts'")
        return "gibbs", "requested"
    if requested == "nuts":
        return "nuts", "requested"
    if why_not is None:
        if not order:
            where = "no group terms"
        elif len(order) == 1:
            where = f"one grouping factor ({order[0]})"
        else:
            where = f"nested grouping factors ({' within '.join(reversed(order))})"
        return "collapsed", f"Gaussian with {where}: effects integrated out exactly"
    if family.name == "gaussian" and gibbs_problem is None:
        return "gibbs", (f"Gaussian, and {why_not}: blocked Gibbs, fixed effects drawn jointly with "
                         "each factor's effects")
    if family.name == "gaussian":
        return "nuts", f"NUTS on the full model: {why_not}, and Gibbs cannot: {gibbs_problem}"
    return "nuts", f"NUTS on the full model: {why_not}"
