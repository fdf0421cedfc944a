"""What a response family is: a link, a tuple of parameter specs and the likelihood.

A family is a frozen dataclass (hashable: it keys the compiled log density)
whose only fields are its options (``link``, and e.g. ``nu`` for ``student_t``).
Everything else is declared on the class:

* ``name``, ``links`` (the first is the default);
* ``params``: one :class:`Param` per distributional parameter besides the mean
  (``sigma``, ``shape``, ``nu`` ...), with its support, lower bound, default prior,
  starting value and whether it may be predicted by a formula of its own;
* capability flags that samplers read instead of the family's name:
  ``gaussian_marginal`` (y is Normal given the linear predictor, so the effects
  integrate out in closed form), ``needs_trials``, ``discrete``;
* pure JAX functions of the linear predictor ``eta``, the parameters ``aux``
  (a sequence, in ``params`` order) and, for the binomial, the trials:
  :meth:`Family.log_likelihood`, :meth:`Family.mean`, :meth:`Family.sample`, and for
  censored and truncated responses :meth:`Family.log_cdf` and :meth:`Family.log_sf`
  (families with ``takes_bounds``);
* numpy helpers for the data: :meth:`Family.support_problem`,
  :meth:`Family.working_response` (starting values) and
  :meth:`Family.information` (the centring rule).

A new family is one file in this package and one line in its registry.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np

from ...design import Design
from ...errors import DataError, FamilyError
from ..priors import Prior
from .links import Link, get_link


@dataclass(frozen=True)
class Param:
    """A distributional parameter of a family.

    Attributes
    ----------
    name
        As brms names it: ``sigma``, ``shape``, ``nu``, ``phi``, ``zi``, ``hu``, ``disc``,
        ``Intercept[k]``.
    support
        ``"positive"`` (mapped from the real line by ``lower + exp(u)``), ``"unit"``
        (by the logistic) or ``"ordered"`` (one of a run of increasing values: the
        first is ``u``, each next one the one before plus ``exp(u)``).
    lower
        Lower bound of a positive parameter (its prior is truncated there).
    prior
        Default prior; None: ``HalfStudentT(3, s_y)``, scaled to the response's sd.
    start
        Starting value; None: the residual sd of the working response.
    predictable
        Whether the parameter may get its own formula (``sigma ~ x``).
    link
        The link of that formula (log for positive parameters, logit for probabilities).
    """

    name: str
    support: str = "positive"
    lower: float = 0.0
    prior: Prior | None = None
    start: float | None = None
    predictable: bool = True
    link: str = "log"
    #: The prior class (``"Intercept"`` for ordinal thresholds); None: the name itself.
    cls: str | None = None
    #: The value of a parameter that is a constant unless a formula predicts it (an ordinal
    #: model's ``disc``, 1); None: a free parameter.
    fixed: float | None = None


@dataclass(frozen=True)
class Family:
    """Base class of the response families (see the module notes)."""

    link: str = ""

    name: ClassVar[str] = ""
    links: ClassVar[tuple[str, ...]] = ("identity",)
    params: ClassVar[tuple[Param, ...]] = ()
    #: The working response is Normal given the linear predictor (y itself, or log y for the
    #: lognormal): the effects integrate out exactly.
    gaussian_marginal: ClassVar[bool] = False
    #: The linear predictor is on the scale of the working response, with a spread to scale
    #: default priors by (gaussian, student_t, lognormal); else the unit of scale is 1.
    response_scale: ClassVar[bool] = False
    #: The response counts successes out of ``trials``.
    needs_trials: ClassVar[bool] = False
    #: Responses are whole numbers (posterior predictive draws are integers).
    discrete: ClassVar[bool] = False
    #: The likelihood's spread is a residual sd ``sigma`` around the linear predictor, which a
    #: known standard error per row (``y | se(s) ~ ...``) replaces (or adds to): gaussian, student_t.
    takes_se: ClassVar[bool] = False
    #: The family has a distribution function (:meth:`log_cdf`, :meth:`log_sf`), so its responses
    #: may be censored (``cens()``) or truncated (``trunc()``).
    takes_bounds: ClassVar[bool] = False

    def __post_init__(self):
        if not self.link:
            object.__setattr__(self, "link", self.links[0])
        if self.link not in self.links:
            raise FamilyError(f"the {self.name} family has no {self.link!r} link; "
                              f"choose from {', '.join(self.links)}")

    @property
    def link_function(self) -> Link:
        return get_link(self.link)

    @property
    def aux(self) -> tuple[str, ...]:
        """Names of the distributional parameters, in the order of ``aux`` arrays."""
        return tuple(p.name for p in self.params)

    @property
    def aux_lower(self) -> tuple[float, ...]:
        """Lower bound of each parameter (its prior is truncated there)."""
        return tuple(p.lower for p in self.params)

    def prepare(self, design: Design) -> tuple["Family", Design]:
        """The family and design as the model uses them (an ordinal family learns its
        categories and drops the intercept here). Every other family takes numbers only."""
        if design.response_levels is not None:
            shown = ", ".join(map(repr, design.response_levels[:5]))
            raise DataError(f"the response {design.response} is not numeric (categories {shown}); give a numeric "
                            "column (code categories as numbers, e.g. 0/1), or use family='cumulative' for "
                            "ordered categories")
        return self, design

    def log_likelihood(self, y, eta, aux, trials=None):
        """Pointwise ``log p(y_i | eta_i, aux)``."""
        raise NotImplementedError

    def log_normaliser(self, y, trials=None):
        """The part of :meth:`log_likelihood` that depends on the data alone, per row, where the
        family splits one off (``-log y!`` of the Poisson): ``log_likelihood = log_kernel +
        log_normaliser``, so that a log density computes it once per data set instead of
        at every evaluation. None: no split (:meth:`log_kernel` is then not used)."""
        return None

    def log_kernel(self, y, eta, aux, trials=None):
        """:meth:`log_likelihood` less :meth:`log_normaliser` (called only where that is not None)."""
        raise NotImplementedError

    def mean(self, eta, aux, trials=None):
        """``E[y | eta]`` on the data scale (a count of successes for the binomial)."""
        return self.link_function.inverse(eta)

    def sample(self, key, eta, aux, trials=None):
        """Draws of new responses given eta."""
        raise NotImplementedError

    def log_tails(self, y, eta, aux, trials=None):
        """Pointwise ``(log P(Y_i <= y_i), log P(Y_i > y_i))`` given ``eta_i`` and ``aux``, each
        computed on the side that keeps its precision; a family with ``takes_bounds`` defines
        this or overrides :meth:`log_cdf` and :meth:`log_sf` themselves."""
        raise NotImplementedError

    def log_cdf(self, y, eta, aux, trials=None):
        """Pointwise ``log P(Y_i <= y_i | eta_i, aux)`` (``-inf`` below the support); for a
        discrete family ``y`` is a whole number."""
        return self.log_tails(y, eta, aux, trials)[0]

    def log_sf(self, y, eta, aux, trials=None):
        """Pointwise ``log P(Y_i > y_i | eta_i, aux)`` (0 below the support)."""
        return self.log_tails(y, eta, aux, trials)[1]

    def partial_mean(self, y, eta, aux, trials=None):
        """Pointwise ``E[Y_i 1{Y_i <= y_i}]``, the mean's share below ``y`` (finite ``y``), from
        which the mean of a truncated response follows."""
        raise NotImplementedError

    def support_problem(self, y: np.ndarray, trials: np.ndarray | None) -> tuple[np.ndarray, str] | None:
        """``(bad rows mask, what the response must be)``, or None if every y is in the support."""
        return None

    def working_response(self, y: np.ndarray, trials: np.ndarray | None) -> np.ndarray:
        """The response on the link scale, smoothed to stay finite (for starting values)."""
        return np.asarray(y, dtype=float)

    def log_jacobian(self, y: np.ndarray, weights: np.ndarray | None = None) -> float:
        """``Σ w_i log |dz_i/dy_i|`` of the working response ``z`` of a Gaussian-marginal family
        (0 for y itself; ``w_i`` the row weights, 1 if None): the (weighted) log-likelihood
        of y is that of z plus this."""
        return 0.0

    def information(self, y: np.ndarray, trials: np.ndarray | None) -> np.ndarray:
        """Roughly the Fisher information of each row about the linear predictor, in
        units of a Gaussian row (1): a heuristic weight for choosing the parameterisation."""
        return np.ones(np.shape(y))

    def initial_aux(self, resid_sd: float) -> tuple[float, ...]:
        """Starting values of the parameters (:attr:`Param.start`, else ``resid_sd``)."""
        return tuple(resid_sd if p.start is None else p.start for p in self.params)

    def to_dict(self) -> dict:
        """What :func:`~multilevel.model.families.get_family` needs to rebuild the family."""
        return {"name": self.name, **{f.name: getattr(self, f.name) for f in fields(self)}}

    def __str__(self) -> str:
        return f"{self.name}({self.link})"


def whole(y: np.ndarray) -> np.ndarray:
    """Whether each value is a whole number."""
    return np.mod(y, 1) == 0
