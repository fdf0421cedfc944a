"""Proportions: ``beta`` (a response in (0, 1)) and ``beta_binomial`` (overdispersed
successes of trials), with brms's mean-precision parameterisation: mean ``mu``,
precision ``phi``, shapes ``mu phi`` and ``(1 - mu) phi``."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

from .base import Family, Param
from .tails import regularized_beta, support_tails
from .binary import UNIT_LINKS, Binomial
from .positive import SHAPE_PRIOR

PHI = Param("phi", prior=SHAPE_PRIOR, start=10.0)


def _log_beta(a, b):
    """``log B(a, b)`` by log-gamma functions: jax's ``betaln`` is off by ~1e-8 for a large ``b``."""
    return gammaln(a) + gammaln(b) - gammaln(a + b)


def _shapes(family: Family, eta, phi):
    mu = family.link_function.inverse(eta)
    return mu * phi, (1.0 - mu) * phi


@dataclass(frozen=True)
class Beta(Family):
    """``y ~ Beta(mu phi, (1 - mu) phi)`` for y strictly between 0 and 1."""

    name = "beta"
    links = UNIT_LINKS
    params = (PHI,)

    def log_likelihood(self, y, eta, aux, trials=None):
        log_mu, log_1mu = self.link_function.log_probs(eta)
        phi = aux[0]
        a, b = jnp.exp(log_mu) * phi, jnp.exp(log_1mu) * phi
        return -_log_beta(a, b) + (a - 1) * jnp.log(y) + (b - 1) * jnp.log1p(-y)

    def sample(self, key, eta, aux, trials=None):
        a, b = _shapes(self, eta, aux[0])
        return jax.random.beta(key, a, b)

    def support_problem(self, y, trials):
        return ~((y > 0) & (y < 1)), "strictly between 0 and 1 (for 0s or 1s, use a zero-one-inflated model)"

    def working_response(self, y, trials):
        return self.link_function(np.clip(np.asarray(y, dtype=float), 0.001, 0.999))

    def information(self, y, trials):
        p = float(np.clip(np.mean(y), 0.01, 0.99))
        return np.full(np.shape(y), 10.0 * p * (1 - p))   # phi mu (1 - mu), phi guessed 10

    takes_bounds = True

    def log_tails(self, y, eta, aux, trials=None):
        """``P(Y <= y) = I_y(a, b)``, ``P(Y > y) = I_{1-y}(b, a)``; 0 and 1 beyond (0, 1)."""
        a, b = _shapes(self, eta, aux[0])

        def tails(y):
            return jnp.log(regularized_beta(a, b, y)), jnp.log(regularized_beta(b, a, 1 - y))

        return support_tails(tails, y, y <= 0, y >= 1, 0.5)

    def partial_mean(self, y, eta, aux, trials=None):
        """``mu I_y(a + 1, b)``: the size-biased beta is ``Beta(a + 1, b)``."""
        a, b = _shapes(self, eta, aux[0])
        return a / (a + b) * regularized_beta(a + 1, b, jnp.clip(y, 0.0, 1.0))


@dataclass(frozen=True)
class BetaBinomial(Binomial):
    """``y ~ BetaBinomial(trials, mu phi, (1 - mu) phi)``: successes of trials, overdispersed
    (the binomial's trials, support, mean and starting values)."""

    name = "beta_binomial"
    params = (PHI,)
    #: No closed-form distribution function here (a sum of the mass up to k per row).
    takes_bounds = False

    def log_kernel(self, y, eta, aux, trials=None):
        """``log B(y + a, trials - y + b) - log B(a, b)`` (the binomial's ``log C(trials, y)`` apart)."""
        a, b = _shapes(self, eta, aux[0])
        return _log_beta(y + a, trials - y + b) - _log_beta(a, b)

    def sample(self, key, eta, aux, trials=None):
        beta_key, binomial_key = jax.random.split(key)
        a, b = _shapes(self, eta, aux[0])
        p = jax.random.beta(beta_key, a, b)
        return jax.random.binomial(binomial_key, jnp.broadcast_to(trials, jnp.shape(p)), p).astype(jnp.int32)

    def information(self, y, trials):
        return super().information(y, trials) / (1 + trials / 10.0)   # phi guessed 10
