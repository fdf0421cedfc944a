"""Response families: the likelihood of y given the linear predictor.

A family names its link, its auxiliary parameters (``sigma`` for the
Gaussian), and gives the pointwise log-likelihood, the mean on the data scale
and a sampler of new responses, all as pure JAX functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax.scipy.stats import norm

from ..errors import MultilevelError


@dataclass(frozen=True)
class Family:
    """Base class. ``aux`` are the family's own parameters, all positive."""

    name: str = ""
    link: str = "identity"
    aux: tuple[str, ...] = ()

    def log_likelihood(self, y, eta, aux):
        """Pointwise log p(y_i | eta_i, aux)."""
        raise NotImplementedError

    def mean(self, eta, aux):
        """E[y | eta] on the data scale."""
        raise NotImplementedError

    def sample(self, key, eta, aux):
        """Draws of new responses given eta."""
        raise NotImplementedError


@dataclass(frozen=True)
class Gaussian(Family):
    """``y ~ Normal(eta, sigma)`` with the identity link."""

    name: str = "gaussian"
    link: str = "identity"
    aux: tuple[str, ...] = ("sigma",)

    def log_likelihood(self, y, eta, aux):
        return norm.logpdf(y, eta, aux[0])

    def mean(self, eta, aux):
        return eta

    def sample(self, key, eta, aux):
        return eta + aux[0] * jax.random.normal(key, jnp.shape(eta))


FAMILIES = {"gaussian": Gaussian}


def get_family(family: str | Family) -> Family:
    """The family object for a name such as ``"gaussian"``, or the object itself."""
    if isinstance(family, Family):
        return family
    if isinstance(family, str) and family.lower() in FAMILIES:
        return FAMILIES[family.lower()]()
    raise MultilevelError(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
