"""Response families: the likelihood of y given the linear predictor.

A family names its link, its auxiliary parameters (``sigma`` for the
Gaussian; all positive), and gives the pointwise log-likelihood, the mean on
the data scale and a sampler of new responses, all as pure JAX functions of
the linear predictor ``eta``, the auxiliary parameters and, for the binomial,
the number of trials of each row.

==============  ============  ===========  ==========================================
family          links         aux          y given ``mu = link⁻¹(eta)``
==============  ============  ===========  ==========================================
``gaussian``    identity      sigma        Normal(mu, sigma)
``student_t``   identity      sigma, nu    Student-t(nu, mu, sigma); ``nu`` fixed if given
``bernoulli``   logit, probit              Bernoulli(mu)
``binomial``    logit, probit              Binomial(trials, mu)
``poisson``     log                        Poisson(mu)
``negbinomial`` log           shape        NB2: mean mu, variance mu + mu²/shape
==============  ============  ===========  ==========================================

Notes
-----
The log-likelihoods are written on the link scale where that is more stable
than the distribution's own parameterisation: ``y η - exp(η) - log y!`` for the
Poisson (no ``log(exp(η))``), ``log Φ(±η)`` by ``jax.scipy.stats.norm.logcdf``
(an asymptotic series in the tails, so probit fits with ``|η| > 8`` stay finite),
and for the negative binomial ``log(shape + μ) = logaddexp(log shape, η)``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax.scipy.special import expit, gammaln
from jax.scipy.stats import norm
from scipy import special as sp_special
from scipy import stats as sp_stats

from ..errors import DataError, MultilevelError

#: Rows shown in a support error before "...".
MAX_ROWS_SHOWN = 8


@dataclass(frozen=True)
class Family:
    """Base class. ``aux`` are the family's own parameters, all positive.

    Subclasses set ``name``, ``links`` (the first is the default) and ``aux``;
    a family object is hashable (it keys the compiled log density).
    """

    link: str = ""
    name: str = field(default="", init=False)
    aux: tuple[str, ...] = field(default=(), init=False)

    links = ("identity",)
    #: Whether the response counts successes out of ``trials``.
    needs_trials = False
    #: Whether responses are whole numbers (posterior predictive draws are integers).
    discrete = False

    def __post_init__(self):
        if not self.link:
            object.__setattr__(self, "link", self.links[0])
        if self.link not in self.links:
            raise MultilevelError(f"the {self.name} family has no {self.link!r} link; "
                                  f"choose from {', '.join(self.links)}")

    @property
    def aux_lower(self) -> tuple[float, ...]:
        """Lower bound of each auxiliary parameter (its prior is truncated there)."""
        return (0.0,) * len(self.aux)

    def log_likelihood(self, y, eta, aux, trials=None):
        """Pointwise log p(y_i | eta_i, aux)."""
        raise NotImplementedError

    def mean(self, eta, aux, trials=None):
        """E[y | eta] on the data scale (a count of successes for the binomial)."""
        raise NotImplementedError

    def sample(self, key, eta, aux, trials=None):
        """Draws of new responses given eta."""
        raise NotImplementedError

    def support_problem(self, y: np.ndarray, trials: np.ndarray | None) -> tuple[np.ndarray, str] | None:
        """``(bad rows mask, what the response must be)``, or None if every y is in the support."""
        return None

    def working_response(self, y: np.ndarray, trials: np.ndarray | None) -> np.ndarray:
        """The response on the link scale, smoothed to stay finite (for starting values)."""
        return np.asarray(y, dtype=float)

    def information(self, y: np.ndarray, trials: np.ndarray | None) -> np.ndarray:
        """Roughly the Fisher information of each row about the linear predictor, in
        units of a Gaussian row (1): a heuristic weight for choosing the parameterisation."""
        return np.ones(np.shape(y))

    def initial_aux(self, resid_sd: float) -> tuple[float, ...]:
        """Starting values of the auxiliary parameters."""
        return tuple(resid_sd for _ in self.aux)

    def to_dict(self) -> dict:
        """What :func:`get_family` needs to rebuild the family (for save/load)."""
        return {"name": self.name, **{k: v for k, v in asdict(self).items() if k not in ("name", "aux")}}

    def __str__(self) -> str:
        return f"{self.name}({self.link})"


def _whole(y: np.ndarray) -> np.ndarray:
    return np.mod(y, 1) == 0


def _inverse_link(link: str, eta):
    return expit(eta) if link == "logit" else norm.cdf(eta)


def _log_probs(link: str, eta):
    """``(log p, log(1 - p))`` for ``p = link⁻¹(eta)``, stable in both tails."""
    if link == "logit":
        return -jax.nn.softplus(-eta), -jax.nn.softplus(eta)
    return norm.logcdf(eta), norm.logcdf(-eta)


def _link_np(link: str, p: np.ndarray) -> np.ndarray:
    if link == "logit":
        return sp_special.logit(p)
    if link == "probit":
        return sp_stats.norm.ppf(p)
    if link == "log":
        return np.log(p)
    return p


@dataclass(frozen=True)
class Gaussian(Family):
    """``y ~ Normal(eta, sigma)`` with the identity link."""

    name: str = field(default="gaussian", init=False)
    aux: tuple[str, ...] = field(default=("sigma",), init=False)

    def log_likelihood(self, y, eta, aux, trials=None):
        return norm.logpdf(y, eta, aux[0])

    def mean(self, eta, aux, trials=None):
        return eta

    def sample(self, key, eta, aux, trials=None):
        return eta + aux[0] * jax.random.normal(key, jnp.shape(eta))


@dataclass(frozen=True)
class StudentT(Family):
    """``y ~ Student-t(nu, eta, sigma)``: robust regression.

    ``nu=None`` (the default) estimates the degrees of freedom as the parameter
    ``nu >= 1`` (default prior Gamma(2, 0.1) truncated at 1, as brms: below 1 the
    tails are heavier than Cauchy's); a number fixes them.
    """

    nu: float | None = None
    name: str = field(default="student_t", init=False)
    aux: tuple[str, ...] = field(default=("sigma", "nu"), init=False)

    def __post_init__(self):
        super().__post_init__()
        if self.nu is not None:
            if isinstance(self.nu, bool) or not isinstance(self.nu, (int, float)) or not self.nu > 0:
                raise MultilevelError(f"student_t: nu must be a number > 0 or None (estimated), got {self.nu!r}")
            object.__setattr__(self, "nu", float(self.nu))
            object.__setattr__(self, "aux", ("sigma",))

    @property
    def aux_lower(self) -> tuple[float, ...]:
        return (0.0,) if self.nu is not None else (0.0, 1.0)

    def _nu(self, aux):
        return aux[1] if self.nu is None else self.nu

    def log_likelihood(self, y, eta, aux, trials=None):
        return dist.StudentT(self._nu(aux), eta, aux[0]).log_prob(y)

    def mean(self, eta, aux, trials=None):
        return eta

    def sample(self, key, eta, aux, trials=None):
        nu = jnp.broadcast_to(self._nu(aux), jnp.shape(eta))
        return eta + aux[0] * jax.random.t(key, nu, jnp.shape(eta))

    def initial_aux(self, resid_sd):
        return (resid_sd,) if self.nu is not None else (resid_sd, 10.0)

    def __str__(self):
        return f"student_t({self.link}, nu={self.nu:g})" if self.nu is not None else super().__str__()


@dataclass(frozen=True)
class Bernoulli(Family):
    """``y ~ Bernoulli(link⁻¹(eta))`` for y in {0, 1}."""

    name: str = field(default="bernoulli", init=False)
    links = ("logit", "probit")
    discrete = True

    def log_likelihood(self, y, eta, aux, trials=None):
        log_p, log_q = _log_probs(self.link, eta)
        return jnp.where(y > 0.5, log_p, log_q)

    def mean(self, eta, aux, trials=None):
        return _inverse_link(self.link, eta)

    def sample(self, key, eta, aux, trials=None):
        return jax.random.bernoulli(key, _inverse_link(self.link, eta)).astype(jnp.int32)

    def support_problem(self, y, trials):
        return (y != 0) & (y != 1), "0 or 1"

    def working_response(self, y, trials):
        return _link_np(self.link, (y + 0.5) / 2.0)

    def information(self, y, trials):
        p = float(np.clip(np.mean(y), 0.01, 0.99))
        return np.full(np.shape(y), p * (1 - p))


@dataclass(frozen=True)
class Binomial(Family):
    """``y ~ Binomial(trials, link⁻¹(eta))``: y successes of ``trials``.

    The formula gives the trials: ``cbind(y, failures) ~ ...`` or ``y | trials(n) ~ ...``.
    """

    name: str = field(default="binomial", init=False)
    links = ("logit", "probit")
    needs_trials = True
    discrete = True

    def log_likelihood(self, y, eta, aux, trials=None):
        if self.link == "logit":
            return dist.BinomialLogits(logits=eta, total_count=trials).log_prob(y)
        log_p, log_q = _log_probs(self.link, eta)
        log_choose = gammaln(trials + 1) - gammaln(y + 1) - gammaln(trials - y + 1)
        return log_choose + y * log_p + (trials - y) * log_q

    def mean(self, eta, aux, trials=None):
        return trials * _inverse_link(self.link, eta)

    def sample(self, key, eta, aux, trials=None):
        p = _inverse_link(self.link, eta)
        n = jnp.broadcast_to(trials, jnp.shape(p))
        return jax.random.binomial(key, n, p).astype(jnp.int32)

    def support_problem(self, y, trials):
        bad = ~_whole(y) | (y < 0) | ~_whole(trials) | (trials < 0) | (y > trials)
        return bad, "a whole number of successes between 0 and the number of trials (itself a whole number)"

    def working_response(self, y, trials):
        return _link_np(self.link, (y + 0.5) / (trials + 1.0))

    def information(self, y, trials):
        p = float(np.clip(np.sum(y) / max(np.sum(trials), 1.0), 0.01, 0.99))
        return trials * p * (1 - p)


@dataclass(frozen=True)
class Poisson(Family):
    """``y ~ Poisson(exp(eta))`` for counts."""

    name: str = field(default="poisson", init=False)
    links = ("log",)
    discrete = True

    def log_likelihood(self, y, eta, aux, trials=None):
        return y * eta - jnp.exp(eta) - gammaln(y + 1)

    def mean(self, eta, aux, trials=None):
        return jnp.exp(eta)

    def sample(self, key, eta, aux, trials=None):
        return jax.random.poisson(key, jnp.exp(eta), jnp.shape(eta))

    def support_problem(self, y, trials):
        return ~_whole(y) | (y < 0), "a whole number >= 0 (a count)"

    def working_response(self, y, trials):
        return np.log(y + 0.5)

    def information(self, y, trials):
        return np.full(np.shape(y), float(np.mean(y)))


@dataclass(frozen=True)
class NegBinomial(Family):
    """``y ~ NB2(mean exp(eta), shape)``: counts with variance ``mu + mu²/shape``."""

    name: str = field(default="negbinomial", init=False)
    aux: tuple[str, ...] = field(default=("shape",), init=False)
    links = ("log",)
    discrete = True

    def log_likelihood(self, y, eta, aux, trials=None):
        shape = aux[0]
        log_shape = jnp.log(shape)
        log_total = jnp.logaddexp(log_shape, eta)
        return (gammaln(y + shape) - gammaln(shape) - gammaln(y + 1)
                + shape * (log_shape - log_total) + y * (eta - log_total))

    def mean(self, eta, aux, trials=None):
        return jnp.exp(eta)

    def sample(self, key, eta, aux, trials=None):
        gamma_key, poisson_key = jax.random.split(key)
        shape = jnp.broadcast_to(aux[0], jnp.shape(eta))
        rate = jnp.exp(eta) * jax.random.gamma(gamma_key, shape) / shape
        return jax.random.poisson(poisson_key, rate, jnp.shape(eta))

    def support_problem(self, y, trials):
        return ~_whole(y) | (y < 0), "a whole number >= 0 (a count)"

    def working_response(self, y, trials):
        return np.log(y + 0.5)

    def information(self, y, trials):
        mean = float(np.mean(y))     # mu / (1 + mu / shape), with a shape of 2 for want of the fitted one
        return np.full(np.shape(y), mean / (1 + mean / 2))

    def initial_aux(self, resid_sd):
        return (5.0,)


FAMILIES = {"gaussian": Gaussian, "student_t": StudentT, "bernoulli": Bernoulli, "binomial": Binomial,
            "poisson": Poisson, "negbinomial": NegBinomial}
_ALIASES = {"normal": "gaussian", "student": "student_t", "studentt": "student_t", "logistic": "bernoulli",
            "negative_binomial": "negbinomial", "negbin": "negbinomial"}
_CALL = re.compile(r"^\s*([A-Za-z_]+)\s*(?:\((.*)\))?\s*$")


def get_family(family: str | dict | Family) -> Family:
    """The family object for a name, a name with arguments, or the object itself.

    Strings are ``"bernoulli"``, ``"bernoulli(probit)"``, ``"binomial(link=probit)"``,
    ``"student_t(nu=4)"``; a dict is what :meth:`Family.to_dict` wrote.
    """
    if isinstance(family, Family):
        return family
    if isinstance(family, dict):
        options = dict(family)
        return _make(options.pop("name"), options)
    match = _CALL.match(family) if isinstance(family, str) else None
    if match is None:
        raise MultilevelError(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
    options = {}
    for k, part in enumerate(p.strip() for p in (match.group(2) or "").split(",") if p.strip()):
        key, sep, value = part.partition("=")
        key, value = (key.strip(), value.strip().strip("'\"")) if sep else ("link" if k == 0 else "", part.strip("'\""))
        if key not in ("link", "nu"):
            raise MultilevelError(f"family {family!r}: unknown argument {part!r}; give a link, as in "
                                  "'bernoulli(probit)', or nu for student_t, as in 'student_t(nu=4)'")
        if key == "nu":
            try:
                value = float(value)
            except ValueError:
                raise MultilevelError(f"family {family!r}: nu must be a number, got {value!r}") from None
        options[key] = value
    return _make(match.group(1), options)


def _make(name: str, options: dict) -> Family:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in FAMILIES:
        raise MultilevelError(f"unknown family {name!r}; choose from {', '.join(FAMILIES)}")
    try:
        return FAMILIES[key](**options)
    except TypeError:
        raise MultilevelError(f"the {key} family takes no {', '.join(options)} argument") from None


def check_response(family: Family, y: np.ndarray, trials: np.ndarray | None, index, response: str,
                   has_trials: bool) -> None:
    """Raise DataError unless every response is in the family's support, naming the rows at fault."""
    if family.needs_trials and trials is None:
        raise DataError(f"the {family.name} family needs the number of trials of each row: write the response "
                        f"as cbind(successes, failures) ~ ... or successes | trials(n) ~ ...")
    if has_trials and not family.needs_trials:
        raise DataError(f"{response} gives numbers of trials, which the {family.name} family does not use; "
                        "use family='binomial'")
    problem = family.support_problem(np.asarray(y, dtype=float),
                                     None if trials is None else np.asarray(trials, dtype=float))
    if problem is None or not problem[0].any():
        return
    bad, what = problem
    rows = np.flatnonzero(bad)
    shown = ", ".join(f"{index[i]} ({_value_text(y[i])}"
                      + (f" of {_value_text(trials[i])})" if trials is not None else ")")
                      for i in rows[:MAX_ROWS_SHOWN])
    more = f", ... ({len(rows)} rows in all)" if len(rows) > MAX_ROWS_SHOWN else ""
    raise DataError(f"the {family.name} family needs the response {response} to be {what}; "
                    f"rows {shown}{more} are not: fix or drop them, or choose another family")


def _value_text(value) -> str:
    return f"{value:g}"
