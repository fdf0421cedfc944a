"""Successes: ``bernoulli`` (0/1) and ``binomial`` (successes of trials)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

from ...design import Design
from ...errors import DataError
from .base import Family, whole
from .fused import bernoulli_logit, binomial_logit_kernel
from .tails import regularized_beta, support_tails

UNIT_LINKS = ("logit", "probit", "cloglog")


@dataclass(frozen=True)
class Bernoulli(Family):
    """``y ~ Bernoulli(link⁻¹(eta))`` for y in {0, 1}."""

    name = "bernoulli"
    links = UNIT_LINKS
    discrete = True

    def log_likelihood(self, y, eta, aux, trials=None):
        if self.link == "logit":
            return bernoulli_logit(y, eta)
        log_p, log_q = self.link_function.log_probs(eta)
        return jnp.where(y > 0.5, log_p, log_q)

    def sample(self, key, eta, aux, trials=None):
        return jax.random.bernoulli(key, self.link_function.inverse(eta)).astype(jnp.int32)

    def support_problem(self, y, trials):
        return (y != 0) & (y != 1), "0 or 1"

    def prepare(self, design: Design) -> tuple[Family, Design]:
        """A response of two categories (a factor, strings, booleans, a comparison) as 0/1, as R's
        glm and brms take it: the first level in R's order (``"no"`` of no/yes, FALSE) is 0, the
        second, the one modelled, is 1."""
        levels = design.response_levels
        if levels is None:
            return self, design
        if len(levels) != 2:
            shown = ", ".join(map(repr, levels[:5]))
            raise DataError(f"the bernoulli response {design.response} has {len(levels)} categories ({shown}); "
                            "it takes two, the second modelled as 1; compare with the one to model instead, as "
                            f"in ({design.response} == {levels[-1]!r}) ~ ..., or use family='cumulative' for "
                            "ordered categories")
        return self, replace(design, y=design.y - 1.0, response_levels=None)

    def working_response(self, y, trials):
        return self.link_function((y + 0.5) / 2.0)

    def information(self, y, trials):
        p = float(np.clip(np.mean(y), 0.01, 0.99))
        return np.full(np.shape(y), p * (1 - p))


@dataclass(frozen=True)
class Binomial(Family):
    """``y ~ Binomial(trials, link⁻¹(eta))``: y successes of ``trials``.

    The formula gives the trials: ``cbind(y, failures) ~ ...`` or ``y | trials(n) ~ ...``.
    """

    name = "binomial"
    links = UNIT_LINKS
    needs_trials = True
    discrete = True
    takes_bounds = True

    def log_likelihood(self, y, eta, aux, trials=None):
        return self.log_normaliser(y, trials) + self.log_kernel(y, eta, aux, trials)

    def log_normaliser(self, y, trials=None):
        """``log C(trials, y)``."""
        return gammaln(trials + 1) - gammaln(y + 1) - gammaln(trials - y + 1)

    def log_kernel(self, y, eta, aux, trials=None):
        if self.link == "logit":
            return binomial_logit_kernel(y, trials, eta)
        log_p, log_q = self.link_function.log_probs(eta)
        return y * log_p + (trials - y) * log_q

    def mean(self, eta, aux, trials=None):
        return trials * self.link_function.inverse(eta)

    def sample(self, key, eta, aux, trials=None):
        p = self.link_function.inverse(eta)
        n = jnp.broadcast_to(trials, jnp.shape(p))
        return jax.random.binomial(key, n, p).astype(jnp.int32)

    def support_problem(self, y, trials):
        bad = ~whole(y) | (y < 0) | ~whole(trials) | (trials < 0) | (y > trials)
        return bad, "a whole number of successes between 0 and the number of trials (itself a whole number)"

    def working_response(self, y, trials):
        return self.link_function((y + 0.5) / (trials + 1.0))

    def information(self, y, trials):
        p = float(np.clip(np.sum(y) / max(np.sum(trials), 1.0), 0.01, 0.99))
        return trials * p * (1 - p)

    def log_tails(self, k, eta, aux, trials=None):
        """``P(Y <= k) = I_{1-p}(n - k, k + 1)`` and ``P(Y > k) = I_p(k + 1, n - k)`` for
        ``0 <= k < n``; the CDF is 0 below 0 and 1 from ``n`` on."""
        p = self.link_function.inverse(eta)

        def tails(k):
            return (jnp.log(regularized_beta(trials - k, k + 1, 1 - p)),
                    jnp.log(regularized_beta(k + 1, trials - k, p)))

        return support_tails(tails, k, k < 0, k >= trials, 0.0)

    def partial_mean(self, y, eta, aux, trials=None):
        """``n p P(Y' <= y - 1)``, ``Y' ~ Binomial(n - 1, p)``: 0 below 1, ``n p`` from ``n`` on."""
        p = self.link_function.inverse(eta)
        inside = (y >= 1) & (y < trials)
        k = jnp.where(inside, y, 1.0)
        n = jnp.where(inside, trials, 2.0)
        share = jnp.where(inside, regularized_beta(n - k, k, 1 - p), jnp.where(y >= trials, 1.0, 0.0))
        return trials * p * share
