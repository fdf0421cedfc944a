"""Response families, as brms names them: ``ml.fit(..., family=ml.families.bernoulli("probit"))``.

Each function returns a family object; the same families can be named by string
(``family="bernoulli(probit)"``, ``"student_t(nu=4)"``).

==================  ===============  ================================================
family              links            parameters besides the linear predictor
==================  ===============  ================================================
``gaussian()``      identity         ``sigma``
``student_t(nu)``   identity         ``sigma``, ``nu`` (estimated if ``nu`` is None)
``bernoulli()``     logit, probit    none; y is 0 or 1
``binomial()``      logit, probit    none; ``cbind(s, f) ~`` or ``s | trials(n) ~``
``poisson()``       log              none; counts
``negbinomial()``   log              ``shape`` (NB2: variance ``mu + mu²/shape``)
==================  ===============  ================================================
"""

from __future__ import annotations

from .model.family import (FAMILIES, Bernoulli, Binomial, Family, Gaussian, NegBinomial, Poisson, StudentT,
                           get_family)

__all__ = ["FAMILIES", "Family", "get_family", "gaussian", "student_t", "bernoulli", "binomial", "poisson",
           "negbinomial"]


def gaussian(link: str = "identity") -> Family:
    """Normal responses: ``y ~ Normal(eta, sigma)``."""
    return Gaussian(link)


def student_t(link: str = "identity", nu: float | None = None) -> Family:
    """Student-t responses (robust regression); ``nu`` fixes the degrees of freedom,
    None estimates them (default prior Gamma(2, 0.1))."""
    return StudentT(link, nu)


def bernoulli(link: str = "logit") -> Family:
    """0/1 responses: ``y ~ Bernoulli(link⁻¹(eta))``; links ``"logit"`` and ``"probit"``."""
    return Bernoulli(link)


def binomial(link: str = "logit") -> Family:
    """Successes out of trials: ``y ~ Binomial(trials, link⁻¹(eta))``; links ``"logit"`` and ``"probit"``."""
    return Binomial(link)


def poisson(link: str = "log") -> Family:
    """Counts: ``y ~ Poisson(exp(eta))``."""
    return Poisson(link)


def negbinomial(link: str = "log") -> Family:
    """Overdispersed counts: ``y ~ NB2(exp(eta), shape)``, variance ``mu + mu²/shape``."""
    return NegBinomial(link)
