r"""The log-likelihood of censored and truncated responses, and truncated draws.

With the family's CDF ``F`` and survival function ``S = 1 - F`` at the row's
parameters, a row contributes (brms's conventions, :mod:`multilevel.design.bounds`):

==============  ============================================  =========================
censoring       continuous families                           discrete families
==============  ============================================  =========================
none            ``log f(y)``                                  ``log P(Y = y)``
left            ``log F(y)``                                  ``log P(Y <= y)``
right           ``log S(y)``                                  ``log P(Y > y)``
interval        ``log(F(y2) - F(y))``                         ``log P(y < Y <= y2)``
==============  ============================================  =========================

so a right-censored count at y says the count was above y (brms's interval
``(y, y2]`` is open on the left: for "at least y", code ``y - 1`` as right-censored).
A truncated response (``trunc(lb, ub)``) is normalised by the mass of its window,

.. math::
   \log p(y \mid lb \le Y \le ub) = \log p(y) - \log P(lb \le Y \le ub),

``P(lb <= Y <= ub) = F(ub) - F(lb)`` for a continuous family and
``F(ub) - F(lb - 1)`` for a discrete one (both bounds inclusive, as brms); a
censored and truncated row has its censored term less the same log mass.

Differences of probabilities are taken on the log scale on the side of the
distribution where they are small, ``log(F(hi) - F(lo))`` below the median and
``log(S(lo) - S(hi))`` above it, so that windows far in either tail keep their
precision. A window so narrow (against the spread) that the two probabilities agree
to within a relative 1e-8 has, for a continuous family, the midpoint rule's mass
``f((lo + hi) / 2) (hi - lo)`` instead (its relative error is of the order of the
squared width over the spread, far below 1e-8): the difference of the two would be
all rounding error, and a sampler would find a spurious maximum where the spread is
huge. Row weights multiply the result afterwards, as for any row.

The mean of a truncated response (brms's fitted values) is

.. math::
   E[Y \mid lb \le Y \le ub] = \frac{M(ub) - M(lo)}{P(lo < Y \le ub)},
   \qquad M(y) = E[Y \, 1\{Y \le y\}],

``lo = lb`` (``lb - 1`` for counts), from each family's
:meth:`~multilevel.model.families.Family.partial_mean` (``M(+inf)`` the mean, ``M(-inf) = 0``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..design.bounds import INTERVAL, LEFT, NONE, ResponseBounds
from .families import Family
from .families.tails import log_diff_exp

#: Redraws of a posterior predictive value outside its truncation window before it is clipped
#: into the window: enough unless the window holds less than about 1/1000 of the mass.
MAX_REDRAWS = 1000
#: Log-probability gap below which a continuous window's mass is taken by the midpoint rule.
_NARROW = 1e-8


def log_window(family: Family, lo, hi, inside, eta, aux, trials=None):
    """``log P(lo < Y <= hi)`` per row; ``lo = -inf`` or ``hi = +inf`` for an open side.

    ``inside`` is a value of the support in each row (the response), which the family's
    functions see in place of an infinite bound, so that no branch has NaN gradients.
    """
    has_lo, has_hi = jnp.isfinite(lo), jnp.isfinite(hi)
    lo_s, hi_s = jnp.where(has_lo, lo, inside), jnp.where(has_hi, hi, inside)
    cdf_lo = jnp.where(has_lo, family.log_cdf(lo_s, eta, aux, trials), -jnp.inf)
    sf_lo = jnp.where(has_lo, family.log_sf(lo_s, eta, aux, trials), 0.0)
    cdf_hi = jnp.where(has_hi, family.log_cdf(hi_s, eta, aux, trials), 0.0)
    sf_hi = jnp.where(has_hi, family.log_sf(hi_s, eta, aux, trials), -jnp.inf)
    upper = cdf_lo > jnp.log(0.5)
    larger, smaller = jnp.where(upper, sf_lo, cdf_hi), jnp.where(upper, sf_hi, cdf_lo)
    mass = log_diff_exp(larger, smaller)
    if family.discrete:
        return mass
    narrow = has_lo & has_hi & (larger - smaller < _NARROW)
    middle = jnp.where(narrow, 0.5 * (lo_s + hi_s), inside)
    width = jnp.where(narrow, hi_s - lo_s, 1.0)
    return jnp.where(narrow, family.log_likelihood(middle, eta, aux, trials) + jnp.log(width), mass)


def truncation_log_mass(family: Family, bounds: ResponseBounds, inside, eta, aux, trials=None):
    """``log P(lb <= Y <= ub)`` per row (module notes)."""
    lo = bounds.lb - 1.0 if family.discrete else bounds.lb
    return log_window(family, lo, bounds.ub, inside, eta, aux, trials)


def bounded_log_likelihood(family: Family, y, eta, aux, trials=None, bounds: ResponseBounds | None = None):
    """Pointwise ``log p(y_i | eta_i, aux)`` with the rows' censoring and truncation (module
    notes); the family's own log-likelihood when ``bounds`` is None."""
    loglik = family.log_likelihood(y, eta, aux, trials)
    if bounds is None:
        return loglik
    if bounds.censoring is not None:
        code = bounds.censoring
        censored = jnp.where(code == LEFT, family.log_cdf(y, eta, aux, trials), family.log_sf(y, eta, aux, trials))
        if bounds.y2 is not None:
            censored = jnp.where(code == INTERVAL, log_window(family, y, bounds.y2, y, eta, aux, trials), censored)
        loglik = jnp.where(code == NONE, loglik, censored)
    if bounds.truncated:
        loglik = loglik - truncation_log_mass(family, bounds, y, eta, aux, trials)
    return loglik


def truncated_mean(family: Family, eta, aux, trials, lb, ub):
    """``E[Y | lb <= Y <= ub]`` per row (module notes)."""
    lo = lb - 1.0 if family.discrete else lb
    has_lo, has_hi = jnp.isfinite(lo), jnp.isfinite(ub)
    lo_s, hi_s = jnp.where(has_lo, lo, 0.0), jnp.where(has_hi, ub, 0.0)
    upper = jnp.where(has_hi, family.partial_mean(hi_s, eta, aux, trials), family.mean(eta, aux, trials))
    lower = jnp.where(has_lo, family.partial_mean(lo_s, eta, aux, trials), 0.0)
    inside = jnp.where(has_lo, lo_s, hi_s)
    return (upper - lower) / jnp.exp(log_window(family, lo, ub, inside, eta, aux, trials))


def truncated_sample(family: Family, key, eta, aux, trials, lb, ub):
    """Draws of new responses inside ``[lb, ub]``: draws outside are redrawn, up to
    :data:`MAX_REDRAWS` times, and the few left (a window with almost no mass) clipped into it."""
    first_key, key = jax.random.split(key)
    draws = family.sample(first_key, eta, aux, trials)

    def outside(values):
        return (values < lb) | (values > ub)

    def redraw(state):
        k, values, count = state
        k, sub = jax.random.split(k)
        return k, jnp.where(outside(values), family.sample(sub, eta, aux, trials), values), count + 1

    def left(state):
        return jnp.any(outside(state[1])) & (state[2] < MAX_REDRAWS)

    _, draws, _ = jax.lax.while_loop(left, redraw, (key, draws, 0))
    return jnp.clip(draws, lb, ub)
