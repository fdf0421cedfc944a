"""Positive continuous responses: ``gamma``, ``lognormal``, ``exponential``, ``weibull``
(brms's parameterisations: the linear predictor gives the mean, or for the
lognormal the mean of log y).

Their distribution functions (for censored and truncated responses) are exact
closed forms where there is one (``log S(y) = -(y / scale)^k`` for the Weibull and
exponential, ``log F = log(-expm1(log S))``), ``log_ndtr`` for the lognormal and the
regularised incomplete gamma functions for the gamma; at ``y <= 0`` (a bound at the
edge of the support) the CDF is 0 and the survival function 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammainc, gammaincc, gammaln, log_ndtr
from jax.scipy.stats import norm

from ..priors import Gamma as GammaPrior
from .base import Family, Param
from .tails import log_one_minus_exp, support_tails

POSITIVE = "a number > 0"
#: brms's default prior on a shape or precision.
SHAPE_PRIOR = GammaPrior(0.01, 0.01)


def _log_mean(family: Family, eta):
    """``log mu`` for ``mu = link⁻¹(eta)``, exactly ``eta`` under the log link."""
    return eta if family.link == "log" else jnp.log(family.link_function.inverse(eta))


def _positive_tail(fn, y):
    """``fn(y) = (log F, log S)`` for ``y > 0``; ``(-inf, 0)`` at ``y <= 0``."""
    return support_tails(fn, y, y <= 0, jnp.zeros_like(y, dtype=bool), 1.0)


def _positive_working(family: Family, y: np.ndarray) -> np.ndarray:
    return family.link_function(np.maximum(np.asarray(y, dtype=float), np.min(y[y > 0], initial=1.0) / 2))


@dataclass(frozen=True)
class Gamma(Family):
    """``y ~ Gamma(shape, rate = shape / mu)``: mean ``mu``, variance ``mu² / shape``."""

    name = "gamma"
    links = ("log", "inverse", "identity")
    params = (Param("shape", prior=SHAPE_PRIOR, start=2.0),)

    def log_likelihood(self, y, eta, aux, trials=None):
        shape = aux[0]
        log_mu = _log_mean(self, eta)
        return (shape * (jnp.log(shape) - log_mu) - gammaln(shape) + (shape - 1) * jnp.log(y)
                - shape * y * jnp.exp(-log_mu))

    def sample(self, key, eta, aux, trials=None):
        shape = jnp.broadcast_to(aux[0], jnp.shape(eta))
        return jax.random.gamma(key, shape) * self.link_function.inverse(eta) / shape

    def support_problem(self, y, trials):
        return ~(y > 0), POSITIVE

    def working_response(self, y, trials):
        return _positive_working(self, y)

    def information(self, y, trials):
        return np.full(np.shape(y), 2.0)   # the shape, for want of the fitted one (log link)

    takes_bounds = True

    def log_tails(self, y, eta, aux, trials=None):
        shape = aux[0]

        def tails(y):
            x = shape * y * jnp.exp(-_log_mean(self, eta))
            return jnp.log(gammainc(shape, x)), jnp.log(gammaincc(shape, x))

        return _positive_tail(tails, y)

    def partial_mean(self, y, eta, aux, trials=None):
        """``mu P(shape + 1, shape y / mu)``: the size-biased gamma has shape + 1."""
        shape, mu = aux[0], self.link_function.inverse(eta)
        return mu * gammainc(shape + 1, shape * jnp.maximum(y, 0.0) / mu)


@dataclass(frozen=True)
class Lognormal(Family):
    """``log y ~ Normal(eta, sigma)``: the linear predictor is the mean of log y, the mean of
    y is ``exp(eta + sigma² / 2)``. Gaussian on log y, so the exact samplers fit it."""

    name = "lognormal"
    params = (Param("sigma"),)
    gaussian_marginal = True
    response_scale = True

    def log_likelihood(self, y, eta, aux, trials=None):
        log_y = jnp.log(y)
        return norm.logpdf(log_y, eta, aux[0]) - log_y

    def mean(self, eta, aux, trials=None):
        return jnp.exp(eta + 0.5 * aux[0] ** 2)

    def sample(self, key, eta, aux, trials=None):
        return jnp.exp(eta + aux[0] * jax.random.normal(key, jnp.shape(eta)))

    def support_problem(self, y, trials):
        return ~(y > 0), POSITIVE

    def working_response(self, y, trials):
        return np.log(np.asarray(y, dtype=float))

    def log_jacobian(self, y, weights=None):
        log_y = np.log(y)
        return -float(np.sum(log_y if weights is None else weights * log_y))

    takes_bounds = True

    def log_tails(self, y, eta, aux, trials=None):
        def tails(y):
            z = (jnp.log(y) - eta) / aux[0]
            return log_ndtr(z), log_ndtr(-z)

        return _positive_tail(tails, y)

    def partial_mean(self, y, eta, aux, trials=None):
        """``exp(mu + sigma²/2) Φ((log y - mu - sigma²) / sigma)``."""
        sigma = aux[0]
        log_y = jnp.log(jnp.where(y > 0, y, 1.0))
        share = jnp.exp(log_ndtr((log_y - eta - sigma ** 2) / sigma))
        return jnp.where(y > 0, self.mean(eta, aux) * share, 0.0)


@dataclass(frozen=True)
class Exponential(Family):
    """``y ~ Exponential(rate = 1 / mu)``: mean ``mu`` (survival times, waiting times)."""

    name = "exponential"
    links = ("log",)
    takes_bounds = True

    def log_likelihood(self, y, eta, aux, trials=None):
        return -eta - y * jnp.exp(-eta)

    def log_tails(self, y, eta, aux, trials=None):
        def tails(y):
            log_sf = -y * jnp.exp(-eta)
            return log_one_minus_exp(log_sf), log_sf

        return _positive_tail(tails, y)

    def partial_mean(self, y, eta, aux, trials=None):
        """``mu P(2, y / mu)``: the size-biased exponential is a gamma of shape 2."""
        mu = jnp.exp(eta)
        return mu * gammainc(2.0, jnp.maximum(y, 0.0) / mu)

    def sample(self, key, eta, aux, trials=None):
        return jnp.exp(eta) * jax.random.exponential(key, jnp.shape(eta))

    def support_problem(self, y, trials):
        return ~(y > 0), POSITIVE

    def working_response(self, y, trials):
        return _positive_working(self, y)


@dataclass(frozen=True)
class Weibull(Family):
    """``y ~ Weibull(shape k, scale mu / Γ(1 + 1/k))``: mean ``mu``, as brms."""

    name = "weibull"
    links = ("log",)
    params = (Param("shape", prior=SHAPE_PRIOR, start=1.0),)

    def _log_scale(self, eta, shape):
        return eta - gammaln(1.0 + 1.0 / shape)

    def log_likelihood(self, y, eta, aux, trials=None):
        shape = aux[0]
        log_scale = self._log_scale(eta, shape)
        log_ratio = jnp.log(y) - log_scale
        return jnp.log(shape) - log_scale + (shape - 1) * log_ratio - jnp.exp(shape * log_ratio)

    takes_bounds = True

    def log_tails(self, y, eta, aux, trials=None):
        shape = aux[0]

        def tails(y):
            log_sf = -jnp.exp(shape * (jnp.log(y) - self._log_scale(eta, shape)))
            return log_one_minus_exp(log_sf), log_sf

        return _positive_tail(tails, y)

    def partial_mean(self, y, eta, aux, trials=None):
        """``mu P(1 + 1/k, (y / scale)^k)``, the lower incomplete gamma of the Weibull's moment."""
        shape = aux[0]
        log_y = jnp.log(jnp.where(y > 0, y, 1.0))
        r = jnp.exp(shape * (log_y - self._log_scale(eta, shape)))
        return jnp.where(y > 0, jnp.exp(eta) * gammainc(1.0 + 1.0 / shape, r), 0.0)

    def sample(self, key, eta, aux, trials=None):
        shape = aux[0]
        u = jax.random.exponential(key, jnp.shape(eta))
        return jnp.exp(self._log_scale(eta, shape)) * u ** (1.0 / shape)

    def support_problem(self, y, trials):
        return ~(y > 0), POSITIVE

    def working_response(self, y, trials):
        return _positive_working(self, y)
