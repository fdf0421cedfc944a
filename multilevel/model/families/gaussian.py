"""Continuous responses on the whole real line: ``gaussian`` and ``student_t``."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import log_ndtr
from jax.scipy.stats import norm

from ...errors import FamilyError
from ..priors import Gamma
from .base import Family, Param
from .tails import regularized_beta

SIGMA = Param("sigma")


@dataclass(frozen=True)
class Gaussian(Family):
    """``y ~ Normal(eta, sigma)`` with the identity link.

    With known standard errors (``y | se(s) ~ ...``) the sd of row i is ``s_i``, or
    ``sqrt(sigma² + s_i²)`` with ``se(s, sigma = TRUE)``: the model's predictors pass
    that as ``sigma`` (:class:`~multilevel.model.predictors.Predictors`).
    Its tails are ``log Φ(±(y - eta) / sigma)`` by ``log_ndtr``, accurate far out.
    """

    name = "gaussian"
    params = (SIGMA,)
    gaussian_marginal = True
    response_scale = True
    takes_se = True
    takes_bounds = True

    def log_likelihood(self, y, eta, aux, trials=None):
        return norm.logpdf(y, eta, aux[0])

    def log_cdf(self, y, eta, aux, trials=None):
        return log_ndtr((y - eta) / aux[0])

    def log_sf(self, y, eta, aux, trials=None):
        return log_ndtr((eta - y) / aux[0])

    def partial_mean(self, y, eta, aux, trials=None):
        """``mu Φ(z) - sigma φ(z)``, ``z = (y - mu) / sigma``."""
        z = (y - eta) / aux[0]
        return eta * jnp.exp(log_ndtr(z)) - aux[0] * norm.pdf(z)

    def sample(self, key, eta, aux, trials=None):
        return eta + aux[0] * jax.random.normal(key, jnp.shape(eta))


#: brms's default for the degrees of freedom, truncated at 1 (below, tails heavier than Cauchy's).
NU = Param("nu", lower=1.0, prior=Gamma(2.0, 0.1), start=10.0)


@dataclass(frozen=True)
class StudentT(Family):
    """``y ~ Student-t(nu, eta, sigma)``: robust regression.

    ``nu=None`` (the default) estimates the degrees of freedom as the parameter
    ``nu >= 1`` (default prior Gamma(2, 0.1) truncated at 1, as brms); a number fixes them.

    Notes
    -----
    With ``t = (y - eta) / sigma``, the tail beyond ``|t|`` is
    ``P(T > |t|) = I_{nu / (nu + t²)}(nu / 2, 1 / 2) / 2``; the CDF is that tail for
    ``t < 0`` and one less it otherwise (``log1p``), and the survival function the mirror.
    """

    nu: float | None = None

    name = "student_t"
    response_scale = True
    takes_se = True
    takes_bounds = True

    def __post_init__(self):
        super().__post_init__()
        if self.nu is not None:
            if isinstance(self.nu, bool) or not isinstance(self.nu, (int, float)) or not self.nu > 0:
                raise FamilyError(f"student_t: nu must be a number > 0 or None (estimated), got {self.nu!r}")
            object.__setattr__(self, "nu", float(self.nu))

    @property
    def params(self) -> tuple[Param, ...]:
        return (SIGMA,) if self.nu is not None else (SIGMA, NU)

    def _nu(self, aux):
        return aux[1] if self.nu is None else self.nu

    def log_likelihood(self, y, eta, aux, trials=None):
        return dist.StudentT(self._nu(aux), eta, aux[0]).log_prob(y)

    def log_tails(self, y, eta, aux, trials=None):
        """``(log P(T <= t), log P(T > t))`` of the standardised ``t``."""
        nu = self._nu(aux)
        t = (y - eta) / aux[0]
        log_far = jnp.log(0.5 * regularized_beta(0.5 * nu, 0.5, nu / (nu + t * t)))
        log_near = jnp.log1p(-jnp.exp(log_far))
        return jnp.where(t < 0, log_far, log_near), jnp.where(t < 0, log_near, log_far)

    def partial_mean(self, y, eta, aux, trials=None):
        """``mu F(z) - sigma (nu + z²) / (nu - 1) f(z)`` (``nu > 1``), ``z = (y - mu) / sigma``."""
        nu = self._nu(aux)
        z = (y - eta) / aux[0]
        density = jnp.exp(dist.StudentT(nu).log_prob(z))
        return eta * jnp.exp(self.log_cdf(y, eta, aux)) - aux[0] * (nu + z * z) / (nu - 1) * density

    def sample(self, key, eta, aux, trials=None):
        nu = jnp.broadcast_to(self._nu(aux), jnp.shape(eta))
        return eta + aux[0] * jax.random.t(key, nu, jnp.shape(eta))

    def __str__(self):
        return f"student_t({self.link}, nu={self.nu:g})" if self.nu is not None else super().__str__()
