"""Link functions: ``eta = g(mu)``, the inverse ``mu = g⁻¹(eta)`` and, for links onto
(0, 1), the log-probabilities ``(log p, log(1 - p))`` stable in both tails.

Each link works on numpy arrays (``__call__``, for default priors and starting
values) and on JAX arrays (``inverse``, ``log_probs``, inside the log density).

========  =========  =====================================================
link      domain     ``g⁻¹(eta)``
========  =========  =====================================================
identity  real       ``eta``
log       positive   ``exp(eta)``
inverse   positive   ``1 / eta``
logit     unit       ``1 / (1 + exp(-eta))``
probit    unit       ``Φ(eta)``
cloglog   unit       ``1 - exp(-exp(eta))``
========  =========  =====================================================
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import expit
from jax.scipy.stats import norm
from scipy import special as sp_special

from ...errors import FamilyError

#: Clip of a mean probability (or positive mean) before the link, so that it stays finite.
MEAN_CLIP = 0.01


class Link:
    """Base class; subclasses set ``name``, ``domain`` and the maps."""

    name = ""
    #: The mean's domain: "real", "positive" or "unit" (probabilities).
    domain = "real"

    def __call__(self, mu: np.ndarray) -> np.ndarray:
        """``g(mu)`` on numpy arrays."""
        raise NotImplementedError

    def inverse(self, eta):
        """``g⁻¹(eta)`` on JAX arrays."""
        raise NotImplementedError

    def log_probs(self, eta):
        """``(log p, log(1 - p))`` for ``p = g⁻¹(eta)``: links onto (0, 1) only."""
        raise FamilyError(f"the {self.name} link does not map onto probabilities")

    def clipped(self, mean: float) -> float:
        """``g(mean)`` with the mean clipped inside the domain (by :data:`MEAN_CLIP`)."""
        if self.domain == "unit":
            mean = min(max(mean, MEAN_CLIP), 1 - MEAN_CLIP)
        elif self.domain == "positive":
            mean = max(mean, MEAN_CLIP)
        return float(self(np.asarray(mean, dtype=float)))

    def __eq__(self, other) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Link({self.name!r})"


class Identity(Link):
    name = "identity"

    def __call__(self, mu):
        return np.asarray(mu, dtype=float)

    def inverse(self, eta):
        return eta


class Log(Link):
    name, domain = "log", "positive"

    def __call__(self, mu):
        return np.log(mu)

    def inverse(self, eta):
        return jnp.exp(eta)


class Inverse(Link):
    name, domain = "inverse", "positive"

    def __call__(self, mu):
        return 1.0 / np.asarray(mu, dtype=float)

    def inverse(self, eta):
        return 1.0 / eta


class Logit(Link):
    name, domain = "logit", "unit"

    def __call__(self, mu):
        return sp_special.logit(mu)

    def inverse(self, eta):
        return expit(eta)

    def log_probs(self, eta):
        return -jax.nn.softplus(-eta), -jax.nn.softplus(eta)


class Probit(Link):
    """``log Φ(±eta)`` by ``norm.logcdf`` (an asymptotic series in the tails): finite for ``|eta| > 8``."""

    name, domain = "probit", "unit"

    def __call__(self, mu):
        from scipy.stats import norm  # scipy.stats, imported at first use
        return norm.ppf(mu)

    def inverse(self, eta):
        return norm.cdf(eta)

    def log_probs(self, eta):
        return norm.logcdf(eta), norm.logcdf(-eta)


class Cloglog(Link):
    """``log p = log(1 - exp(-exp(eta)))`` by ``log(-expm1(-e))``; ``log(1 - p) = -exp(eta)``."""

    name, domain = "cloglog", "unit"

    def __call__(self, mu):
        return np.log(-np.log1p(-np.asarray(mu, dtype=float)))

    def inverse(self, eta):
        return -jnp.expm1(-jnp.exp(eta))

    def log_probs(self, eta):
        rate = jnp.exp(eta)
        return jnp.log(-jnp.expm1(-rate)), -rate


LINKS: dict[str, Link] = {link.name: link for link in (Identity(), Log(), Inverse(), Logit(), Probit(), Cloglog())}


def get_link(name: str) -> Link:
    """The link called ``name``; FamilyError for an unknown one."""
    if name not in LINKS:
        raise FamilyError(f"unknown link {name!r}; choose from {', '.join(LINKS)}")
    return LINKS[name]
