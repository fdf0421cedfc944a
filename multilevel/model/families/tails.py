r"""Stable tail probabilities for the families' distribution functions.

* :func:`regularized_beta`: ``I_x(a, b)``, the regularised incomplete beta function,
  differentiable in ``a`` and ``b`` too (``jax.scipy.special.betainc`` is not): the
  CDFs of the beta, negative binomial and Student-t families have their parameters
  there.
* :func:`log_diff_exp`: ``log(exp(a) - exp(b))`` for ``a >= b``, finite with
  finite gradients when ``b = -inf`` (an empty side of a window).
* :func:`log_one_minus_exp`: ``log(1 - exp(x))`` for ``x <= 0``, by ``log(-expm1(x))``.
* :func:`support_tails`: a family's ``(log F, log S)`` inside its support and their
  limits outside, without NaN gradients from the other branch of ``where``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import betainc, gammaln

#: Relative step of the central differences of ``I_x(a, b)`` in ``a`` and ``b``: the error is
#: O(step²) from truncation plus O(1e-16 / step) from rounding, about 1e-10 either way.
_STEP = 1e-5


@jax.custom_jvp
def regularized_beta(a, b, x):
    r"""``I_x(a, b) = B(x; a, b) / B(a, b)``.

    Notes
    -----
    The derivative in ``x`` is the beta density
    ``x^{a-1} (1-x)^{b-1} / B(a, b)``; those in ``a`` and ``b`` are central
    differences with a relative step of 1e-5 (accurate to about 1e-10, ample
    for gradient-based samplers).
    """
    return betainc(a, b, x)


@regularized_beta.defjvp
def _regularized_beta_jvp(primals, tangents):
    a, b, x = primals
    da, db, dx = tangents
    value = regularized_beta(a, b, x)
    ha, hb = _STEP * a, _STEP * b
    d_a = (betainc(a + ha, b, x) - betainc(a - ha, b, x)) / (2 * ha)
    d_b = (betainc(a, b + hb, x) - betainc(a, b - hb, x)) / (2 * hb)
    inside = (x > 0) & (x < 1)
    xs = jnp.where(inside, x, 0.5)
    density = jnp.exp((a - 1) * jnp.log(xs) + (b - 1) * jnp.log1p(-xs)
                      - (gammaln(a) + gammaln(b) - gammaln(a + b)))
    d_x = jnp.where(inside, density, 0.0)
    return value, d_a * da + d_b * db + d_x * dx


def log_one_minus_exp(x):
    """``log(1 - exp(x))`` for ``x <= 0`` (``-inf`` at 0)."""
    return jnp.log(-jnp.expm1(jnp.minimum(x, -1e-300)))


def log_diff_exp(a, b):
    """``log(exp(a) - exp(b))`` for ``a > b``; ``a`` when ``b = -inf``."""
    safe_a = jnp.where(jnp.isfinite(a), a, 0.0)
    return jnp.where(jnp.isfinite(a), safe_a + log_one_minus_exp(b - safe_a), a)


def support_tails(tails, y, below, above, safe):
    """``(log F(y), log S(y))`` by ``tails`` inside the support, ``(-inf, 0)`` where ``below``
    it and ``(0, -inf)`` where ``above``; ``tails`` sees ``safe`` in place of ``y`` outside,
    so neither branch of ``where`` gives NaN gradients."""
    inside = ~(below | above)
    log_cdf, log_sf = tails(jnp.where(inside, y, safe))
    return (jnp.where(inside, log_cdf, jnp.where(below, -jnp.inf, 0.0)),
            jnp.where(inside, log_sf, jnp.where(below, 0.0, -jnp.inf)))
