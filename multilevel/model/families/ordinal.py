"""Ordered categories: the ``cumulative`` family (brms's; ``clmm`` in R's ordinal).

For K categories with thresholds ``θ_1 < ... < θ_{K-1}`` (named ``Intercept[k]``,
prior class ``Intercept``) and a linear predictor ``η`` without an intercept,

.. math:: P(y \\le k) = F(d (θ_k - η)), \\qquad P(y = k) = F(d (θ_k - η)) - F(d (θ_{k-1} - η)),

with the discrimination ``d`` (brms's ``disc``) 1 unless a formula predicts it
(``disc ~ 0 + x``, log link, without an intercept: ``d = 1`` where the predictors are 0
fixes the scale of the latent variable), ``F`` the inverse link (logistic, normal or complementary log-log CDF) and
``θ_0 = -∞``, ``θ_K = ∞``. The response is an ordered pandas Categorical, strings
(ordered as a Categorical's categories, else sorted) or whole numbers 1..K; it is
held as the category number 1..K. The thresholds have brms's default prior
Student-t(3, 0, 2.5) each and an ordered transform.

Each middle probability is computed from whichever tail keeps it accurate: below
the middle of its two thresholds as ``F(a) (1 - F(b)/F(a))``, above it as
``(1 - F(b)) (1 - (1 - F(a))/(1 - F(b)))``, in logs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import numpy as np

from ...design import Design
from ...errors import DataError, FamilyError
from ..priors import StudentT
from .base import Family, Param
from .binary import UNIT_LINKS

THRESHOLD_PRIOR = StudentT(3.0, 0.0, 2.5)
#: The discrimination: 1 unless a formula predicts it.
DISC = Param("disc", start=1.0, fixed=1.0)


def _log1mexp(x):
    """``log(1 - exp(x))`` for x < 0, accurate on both sides of ``-log 2``. Each branch
    sees only inputs it is finite at, so that neither sends an infinite gradient
    through the ``where`` (x is capped just below 0: two equal cumulative
    probabilities give a very small probability, not a zero one)."""
    x = jnp.minimum(x, -1e-300)
    near = x > -0.6931471805599453
    return jnp.where(near, jnp.log(-jnp.expm1(jnp.where(near, x, -1.0))),
                     jnp.log1p(-jnp.exp(jnp.where(near, -1.0, x))))


@dataclass(frozen=True)
class Cumulative(Family):
    """Ordered categories by a cumulative link model (see the module notes)."""

    categories: tuple[str, ...] = ()

    name = "cumulative"
    links = UNIT_LINKS
    discrete = True

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "categories", tuple(str(c) for c in self.categories))

    @property
    def params(self) -> tuple[Param, ...]:  # type: ignore[override]
        k = len(self.categories)
        return tuple(Param(f"Intercept[{j}]", support="ordered", prior=THRESHOLD_PRIOR,
                           start=float(self.link_function(np.asarray(j / k))), predictable=False, cls="Intercept")
                     for j in range(1, k)) + (DISC,)

    def prepare(self, design: Design) -> tuple[Family, Design]:
        y = design.y
        if design.response_levels is not None:
            categories = design.response_levels
        else:
            bad = (y < 1) | (np.mod(y, 1) != 0)
            if bad.any():
                rows = ", ".join(f"{design.row_index[i]} ({y[i]:g})" for i in np.flatnonzero(bad)[:8])
                raise DataError(f"the cumulative family needs the response {design.response} to be ordered "
                                f"categories: a Categorical, strings, or whole numbers 1..K; rows {rows} are not")
            categories = tuple(str(k) for k in range(1, int(y.max()) + 1))
        if len(categories) < 2:
            raise DataError(f"the response {design.response} has a single category: an ordinal model needs two "
                            "or more")
        if self.categories and self.categories != categories:
            raise FamilyError(f"the cumulative family was given the categories {self.categories}, but the "
                              f"response has {categories}")
        keep = [j for j, c in enumerate(design.columns) if c != "Intercept"]
        return replace(self, categories=categories), design.keep_columns(keep)

    def _thresholds(self, aux):
        return jnp.stack([aux[j] for j in range(len(self.categories) - 1)], axis=-1)

    def category_log_probs(self, eta, aux):
        """``log P(y = k)`` for every category, shape ``eta.shape + (K,)``."""
        theta = self._thresholds(aux)
        disc = jnp.asarray(aux[len(self.categories) - 1])
        x = disc[..., None] * (theta - eta[..., None])
        log_p, log_q = self.link_function.log_probs(x)
        first, last = log_p[..., :1], log_q[..., -1:]
        if theta.shape[-1] < 2:
            return jnp.concatenate([first, last], axis=-1)
        lower_tail = log_p[..., 1:] + _log1mexp(log_p[..., :-1] - log_p[..., 1:])
        upper_tail = log_q[..., :-1] + _log1mexp(log_q[..., 1:] - log_q[..., :-1])
        upper = (x[..., 1:] + x[..., :-1]) > 0
        return jnp.concatenate([first, jnp.where(upper, upper_tail, lower_tail), last], axis=-1)

    def log_likelihood(self, y, eta, aux, trials=None):
        """``log P(y)`` from the two thresholds around each row's category only (the
        tails as :meth:`category_log_probs` takes them): 2 CDF evaluations a row, not K - 1."""
        last = len(self.categories) - 1
        eta = jnp.asarray(eta)
        shape = jnp.broadcast_shapes(eta.shape, jnp.shape(y))
        theta = jnp.broadcast_to(self._thresholds(aux), shape + (last,))   # thresholds may carry draws
        disc = jnp.asarray(aux[last])
        k = jnp.broadcast_to(jnp.asarray(y, dtype=jnp.int32) - 1, shape)

        def at(index):
            return jnp.take_along_axis(theta, jnp.clip(index, 0, last - 1)[..., None], -1)[..., 0]

        # the first category has no lower threshold, the last no upper one: a stand-in one
        # unit away keeps the branch not taken finite to second order (the pilot's Hessian)
        above, below = at(k), at(k - 1)
        upper = disc * (jnp.where(k == last, below + 1.0, above) - eta)
        lower = disc * (jnp.where(k == 0, above - 1.0, below) - eta)
        log_p_upper, log_q_upper = self.link_function.log_probs(upper)
        log_p_lower, log_q_lower = self.link_function.log_probs(lower)
        lower_tail = log_p_upper + _log1mexp(log_p_lower - log_p_upper)
        upper_tail = log_q_lower + _log1mexp(log_q_upper - log_q_lower)
        middle = jnp.where(upper + lower > 0, upper_tail, lower_tail)
        return jnp.where(k == 0, log_p_upper, jnp.where(k == last, log_q_lower, middle))

    def mean(self, eta, aux, trials=None):
        """The expected category number, ``Σ_k k P(y = k)``."""
        probs = jnp.exp(self.category_log_probs(eta, aux))
        return jnp.sum(probs * jnp.arange(1, probs.shape[-1] + 1), axis=-1)

    def sample(self, key, eta, aux, trials=None):
        """Category numbers 1..K."""
        return jax.random.categorical(key, self.category_log_probs(eta, aux)) + 1

    def support_problem(self, y, trials):
        bad = (y < 1) | (y > len(self.categories)) | (np.mod(y, 1) != 0)
        return bad, f"one of the categories 1..{len(self.categories)}"

    def working_response(self, y, trials):
        return np.zeros(np.shape(y))

    def information(self, y, trials):
        return np.full(np.shape(y), 0.2)
