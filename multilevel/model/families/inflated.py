"""Excess zeros: zero-inflated and hurdle families, each built on a base family.

A *zero-inflated* model mixes a point mass at 0 (probability ``zi``) with the
base distribution, which can itself give zeros:
``p(0) = zi + (1 - zi) f(0)``, ``p(y) = (1 - zi) f(y)`` for ``y > 0``.
A *hurdle* model gives every zero to the hurdle (probability ``hu``) and the
positive values to the base distribution truncated at 0:
``p(0) = hu``, ``p(y) = (1 - hu) f(y) / (1 - f(0))`` for ``y > 0`` (for a
continuous base, ``f(0) = 0``). brms's names and parameters; ``zi`` and ``hu``
have brms's default prior Beta(1, 1).

Censored and truncated responses use the mixture's own distribution function, for
``y >= 0`` (below 0 the CDF is 0):

* zero-inflated: ``P(Y > y) = (1 - zi) S(y)``, ``P(Y <= y) = zi + (1 - zi) F(y)``;
* hurdle: ``P(Y > y) = (1 - hu) S(y) / S(0)``, ``P(Y <= y) = 1 - P(Y > y)``,

with ``F`` and ``S`` the base family's CDF and survival function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ..priors import Beta as BetaPrior
from .base import Family, Param
from .tails import log_one_minus_exp
from .binary import Binomial
from .counts import NegBinomial, Poisson
from .positive import Gamma, Lognormal

ZI = Param("zi", support="unit", prior=BetaPrior(1.0, 1.0), start=0.1, link="logit")
HU = Param("hu", support="unit", prior=BetaPrior(1.0, 1.0), start=0.2, link="logit")
#: Redraws of a positive count before giving up (then 1): enough unless the mean is below ~1e-3.
MAX_REDRAWS = 1000


@dataclass(frozen=True)
class _Mixed(Family):
    """A family made of a base family and a probability of zero (the last parameter)."""

    base: ClassVar[type[Family]] = Family
    zero: ClassVar[Param] = ZI

    @property
    def links(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.base.links

    @property
    def params(self) -> tuple[Param, ...]:  # type: ignore[override]
        return self.base.params + (self.zero,)

    @property
    def needs_trials(self) -> bool:  # type: ignore[override]
        return self.base.needs_trials

    @property
    def discrete(self) -> bool:  # type: ignore[override]
        return self.base.discrete

    @property
    def takes_bounds(self) -> bool:  # type: ignore[override]
        return self.base.takes_bounds

    @property
    def inner(self) -> Family:
        return self.base(self.link)

    def _split(self, aux):
        return aux[:-1], aux[-1]

    def support_problem(self, y, trials):
        return self.inner.support_problem(y, trials)

    def working_response(self, y, trials):
        return self.inner.working_response(y, trials)

    def information(self, y, trials):
        return self.inner.information(y, trials)


@dataclass(frozen=True)
class _ZeroInflated(_Mixed):
    def log_likelihood(self, y, eta, aux, trials=None):
        base_aux, zi = self._split(aux)
        base = self.inner.log_likelihood(y, eta, base_aux, trials)
        return jnp.where(y == 0, jnp.logaddexp(jnp.log(zi), jnp.log1p(-zi) + base), jnp.log1p(-zi) + base)

    def mean(self, eta, aux, trials=None):
        base_aux, zi = self._split(aux)
        return (1 - zi) * self.inner.mean(eta, base_aux, trials)

    def log_sf(self, y, eta, aux, trials=None):
        base_aux, zi = self._split(aux)
        return jnp.where(y < 0, 0.0, jnp.log1p(-zi) + self.inner.log_sf(y, eta, base_aux, trials))

    def log_cdf(self, y, eta, aux, trials=None):
        base_aux, zi = self._split(aux)
        inflated = jnp.logaddexp(jnp.log(zi), jnp.log1p(-zi) + self.inner.log_cdf(y, eta, base_aux, trials))
        return jnp.where(y < 0, -jnp.inf, inflated)

    def partial_mean(self, y, eta, aux, trials=None):
        base_aux, zi = self._split(aux)
        return (1 - zi) * self.inner.partial_mean(y, eta, base_aux, trials)

    def sample(self, key, eta, aux, trials=None):
        base_aux, zi = self._split(aux)
        zero_key, base_key = jax.random.split(key)
        draws = self.inner.sample(base_key, eta, base_aux, trials)
        return jnp.where(jax.random.bernoulli(zero_key, zi, jnp.shape(eta)), jnp.zeros_like(draws), draws)


@dataclass(frozen=True)
class _Hurdle(_Mixed):
    zero: ClassVar[Param] = HU

    def _log_positive(self, eta, base_aux, trials):
        """``log(1 - f(0))``: the base's probability of a positive value."""
        if not self.discrete:
            return jnp.zeros_like(eta)
        return jnp.log(-jnp.expm1(self.inner.log_likelihood(jnp.zeros_like(eta), eta, base_aux, trials)))

    def log_likelihood(self, y, eta, aux, trials=None):
        base_aux, hu = self._split(aux)
        positive = y > 0
        safe = jnp.where(positive, y, 1.0)
        base = self.inner.log_likelihood(safe, eta, base_aux, trials) - self._log_positive(eta, base_aux, trials)
        return jnp.where(positive, jnp.log1p(-hu) + base, jnp.log(hu))

    def log_sf(self, y, eta, aux, trials=None):
        base_aux, hu = self._split(aux)
        above = jnp.log1p(-hu) + self.inner.log_sf(y, eta, base_aux, trials) - self._log_positive(eta, base_aux, trials)
        return jnp.where(y < 0, 0.0, above)

    def log_cdf(self, y, eta, aux, trials=None):
        return log_one_minus_exp(self.log_sf(y, eta, aux, trials))

    def partial_mean(self, y, eta, aux, trials=None):
        base_aux, hu = self._split(aux)
        positive = jnp.exp(self._log_positive(eta, base_aux, trials))
        return (1 - hu) * self.inner.partial_mean(y, eta, base_aux, trials) / positive

    def mean(self, eta, aux, trials=None):
        base_aux, hu = self._split(aux)
        return (1 - hu) * self.inner.mean(eta, base_aux, trials) / jnp.exp(self._log_positive(eta, base_aux, trials))

    def sample(self, key, eta, aux, trials=None):
        base_aux, hu = self._split(aux)
        zero_key, base_key = jax.random.split(key)
        draws = self.inner.sample(base_key, eta, base_aux, trials)
        if self.discrete:   # the base truncated at 0: redraw the zeros
            def redraw(state):
                k, values, count = state
                k, sub = jax.random.split(k)
                return k, jnp.where(values == 0, self.inner.sample(sub, eta, base_aux, trials), values), count + 1

            def zeros_left(state):
                return jnp.any(state[1] == 0) & (state[2] < MAX_REDRAWS)

            _, draws, _ = jax.lax.while_loop(zeros_left, redraw, (base_key, draws, 0))
            draws = jnp.maximum(draws, 1)
        return jnp.where(jax.random.bernoulli(zero_key, hu, jnp.shape(eta)), jnp.zeros_like(draws), draws)

    def support_problem(self, y, trials):
        if self.discrete:
            return self.inner.support_problem(y, trials)
        return ~(y >= 0), "a number >= 0"

    def working_response(self, y, trials):
        y = np.asarray(y, dtype=float)
        positive = y[y > 0]
        return self.inner.working_response(np.where(y > 0, y, positive.min(initial=2.0) / 2), trials)


@dataclass(frozen=True)
class ZeroInflatedPoisson(_ZeroInflated):
    """Counts with excess zeros: Poisson(exp(eta)) mixed with a point mass at 0 (``zi``)."""

    name = "zero_inflated_poisson"
    base = Poisson


@dataclass(frozen=True)
class ZeroInflatedNegBinomial(_ZeroInflated):
    """Overdispersed counts with excess zeros: NB2(exp(eta), shape) mixed with a point mass at 0."""

    name = "zero_inflated_negbinomial"
    base = NegBinomial


@dataclass(frozen=True)
class ZeroInflatedBinomial(_ZeroInflated):
    """Successes of trials with excess zeros: Binomial mixed with a point mass at 0."""

    name = "zero_inflated_binomial"
    base = Binomial


@dataclass(frozen=True)
class HurdlePoisson(_Hurdle):
    """Zeros with probability ``hu``, positive counts from a Poisson truncated at 0."""

    name = "hurdle_poisson"
    base = Poisson


@dataclass(frozen=True)
class HurdleNegBinomial(_Hurdle):
    """Zeros with probability ``hu``, positive counts from an NB2 truncated at 0."""

    name = "hurdle_negbinomial"
    base = NegBinomial


@dataclass(frozen=True)
class HurdleLognormal(_Hurdle):
    """Zeros with probability ``hu``, positive values lognormal (biomass, spending)."""

    name = "hurdle_lognormal"
    base = Lognormal
    response_scale = True


@dataclass(frozen=True)
class HurdleGamma(_Hurdle):
    """Zeros with probability ``hu``, positive values Gamma with mean ``exp(eta)``."""

    name = "hurdle_gamma"
    base = Gamma
