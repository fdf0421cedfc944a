"""Counts: ``poisson`` and ``negbinomial`` (NB2).

The log-likelihoods are written on the link scale: ``y η - exp(η) - log y!`` for
the Poisson (no ``log(exp(η))``), and for the negative binomial
``log(shape + μ) = logaddexp(log shape, η)``.

Their distribution functions, for censored and truncated counts, are the
regularised incomplete gamma and beta functions: for the Poisson
``P(Y <= k) = Q(k + 1, μ)`` (upper) and ``P(Y > k) = P(k + 1, μ)`` (lower); for the
negative binomial ``P(Y <= k) = I_p(shape, k + 1)`` and ``P(Y > k) = I_{1-p}(k + 1, shape)``
with ``p = shape / (shape + μ)``. Below 0 the CDF is 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammainc, gammaincc, gammaln

from ..priors import Gamma
from .base import Family, Param, whole
from .tails import regularized_beta, support_tails

COUNT = "a whole number >= 0 (a count)"


@dataclass(frozen=True)
class Poisson(Family):
    """``y ~ Poisson(exp(eta))`` for counts."""

    name = "poisson"
    links = ("log",)
    discrete = True

    def log_likelihood(self, y, eta, aux, trials=None):
        return self.log_kernel(y, eta, aux, trials) + self.log_normaliser(y, trials)

    def log_normaliser(self, y, trials=None):
        return -gammaln(y + 1)

    def log_kernel(self, y, eta, aux, trials=None):
        return y * eta - jnp.exp(eta)

    def sample(self, key, eta, aux, trials=None):
        return jax.random.poisson(key, jnp.exp(eta), jnp.shape(eta))

    def support_problem(self, y, trials):
        return ~whole(y) | (y < 0), COUNT

    def working_response(self, y, trials):
        return np.log(y + 0.5)

    def information(self, y, trials):
        return np.full(np.shape(y), float(np.mean(y)))

    takes_bounds = True

    def log_tails(self, k, eta, aux, trials=None):
        mu = jnp.exp(eta)

        def tails(k):
            return jnp.log(gammaincc(k + 1, mu)), jnp.log(gammainc(k + 1, mu))

        return _count_tails(tails, k)

    def partial_mean(self, y, eta, aux, trials=None):
        """``mu P(Y <= y - 1)`` (``k p(k) = mu p(k - 1)``), 0 below 1."""
        mu = jnp.exp(eta)
        return jnp.where(y >= 1, mu * gammaincc(jnp.maximum(y, 1.0), mu), 0.0)


@dataclass(frozen=True)
class NegBinomial(Family):
    """``y ~ NB2(mean exp(eta), shape)``: counts with variance ``mu + mu²/shape``;
    ``shape`` has brms's default prior Gamma(0.01, 0.01)."""

    name = "negbinomial"
    links = ("log",)
    params = (Param("shape", prior=Gamma(0.01, 0.01), start=5.0),)
    discrete = True

    def log_likelihood(self, y, eta, aux, trials=None):
        shape = aux[0]
        log_shape = jnp.log(shape)
        log_total = jnp.logaddexp(log_shape, eta)
        return (gammaln(y + shape) - gammaln(shape) - gammaln(y + 1)
                + shape * (log_shape - log_total) + y * (eta - log_total))

    def sample(self, key, eta, aux, trials=None):
        gamma_key, poisson_key = jax.random.split(key)
        shape = jnp.broadcast_to(aux[0], jnp.shape(eta))
        rate = jnp.exp(eta) * jax.random.gamma(gamma_key, shape) / shape
        return jax.random.poisson(poisson_key, rate, jnp.shape(eta))

    def support_problem(self, y, trials):
        return ~whole(y) | (y < 0), COUNT

    def working_response(self, y, trials):
        return np.log(y + 0.5)

    def information(self, y, trials):
        mean = float(np.mean(y))     # mu / (1 + mu / shape), with a shape of 2 for want of the fitted one
        return np.full(np.shape(y), mean / (1 + mean / 2))

    takes_bounds = True

    def log_tails(self, k, eta, aux, trials=None):
        shape = aux[0]
        log_total = jnp.logaddexp(jnp.log(shape), eta)
        p, q = jnp.exp(jnp.log(shape) - log_total), jnp.exp(eta - log_total)

        def tails(k):
            return jnp.log(regularized_beta(shape, k + 1, p)), jnp.log(regularized_beta(k + 1, shape, q))

        return _count_tails(tails, k)

    def partial_mean(self, y, eta, aux, trials=None):
        """``mu I_p(shape + 1, y)``: ``k p(k)`` is ``mu`` times the NB of size ``shape + 1`` at
        ``k - 1``; 0 below 1."""
        shape = aux[0]
        p = jnp.exp(jnp.log(shape) - jnp.logaddexp(jnp.log(shape), eta))
        return jnp.where(y >= 1, jnp.exp(eta) * regularized_beta(shape + 1, jnp.maximum(y, 1.0), p), 0.0)


def _count_tails(tails, k):
    """``tails(k) = (log F, log S)`` of a count for ``k >= 0``; ``(-inf, 0)`` below 0."""
    return support_tails(tails, k, k < 0, jnp.zeros_like(k, dtype=bool), 0.0)
