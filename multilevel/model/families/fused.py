"""Log-likelihoods of the logit families with their derivative in eta written by hand.

For ``s = ±eta``, ``softplus(s) = max(s, 0) + log1p(e)`` with ``e = exp(-|s|)``, and
its derivative is ``sigmoid(s) = 1 / (1 + e)`` for ``s ≥ 0``, ``e / (1 + e)`` below:
one exponential serves the value and the gradient. JAX's ``softplus`` (through
``logaddexp``, with its checks for infinities) and its derivative cost several times
as much on CPU. The values are those of the library's definitions up to rounding:

.. math::
   \\log p(y | \\eta) = -\\operatorname{softplus}(\\mp\\eta) \\quad (y = 1, 0), \\qquad
   \\frac{\\partial}{\\partial\\eta} = y - \\sigma(\\eta);

   \\log p(k | n, \\eta) = \\log\\binom{n}{k} + k\\eta - n \\operatorname{softplus}(\\eta),
   \\qquad \\frac{\\partial}{\\partial\\eta} = k - n\\,\\sigma(\\eta).

The rules are custom JVPs: reverse mode (NUTS), forward mode and higher derivatives
(a Newton step) all use them. They differentiate in eta only: y and the trials are data.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _softplus_sigmoid(s):
    """``(softplus(s), sigmoid(s))`` from one exponential."""
    e = jnp.exp(-jnp.abs(s))
    return jnp.maximum(s, 0.0) + jnp.log1p(e), jnp.where(s >= 0.0, 1.0, e) / (1.0 + e)


@jax.custom_jvp
def bernoulli_logit(y, eta):
    """``log p(y | eta)`` of a Bernoulli with logit link, y in {0, 1}."""
    return -_softplus_sigmoid(jnp.where(y > 0.5, -eta, eta))[0]


@bernoulli_logit.defjvp
def _bernoulli_logit_jvp(primals, tangents):
    y, eta = primals
    positive = y > 0.5
    softplus, sigmoid = _softplus_sigmoid(jnp.where(positive, -eta, eta))
    slope = jnp.where(positive, sigmoid, -sigmoid)    # y - σ(eta)
    return -softplus, slope * tangents[1]


@jax.custom_jvp
def binomial_logit_kernel(y, trials, eta):
    """``k eta - n softplus(eta)`` (n softplus 0 where n = 0): the binomial's log-likelihood
    with logit link less ``log C(n, k)``."""
    softplus, _ = _softplus_sigmoid(eta)
    return y * eta - jnp.where(trials == 0, 0.0, trials * softplus)


@binomial_logit_kernel.defjvp
def _binomial_kernel_jvp(primals, tangents):
    y, trials, eta = primals
    softplus, sigmoid = _softplus_sigmoid(eta)
    value = y * eta - jnp.where(trials == 0, 0.0, trials * softplus)
    return value, (y - trials * sigmoid) * tangents[2]

