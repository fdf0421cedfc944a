"""Response families: one file per kind, one registry line per family.

=============================  ========================  ===================================
family                         links                     parameters besides the mean
=============================  ========================  ===================================
``gaussian``                   identity                  ``sigma``
``student_t``                  identity                  ``sigma``, ``nu`` (unless fixed)
``lognormal``                  identity (of log y)       ``sigma``
``gamma``                      log, inverse, identity    ``shape``
``exponential``                log                       none
``weibull``                    log                       ``shape``
``beta``                       logit, probit, cloglog    ``phi`` (precision)
``bernoulli``                  logit, probit, cloglog    none; y is 0 or 1
``binomial``                   logit, probit, cloglog    none; ``cbind(s, f) ~`` or ``s | trials(n) ~``
``beta_binomial``              logit, probit, cloglog    ``phi``; trials as for ``binomial``
``poisson``                    log                       none; counts
``negbinomial``                log                       ``shape`` (variance ``mu + mu²/shape``)
``zero_inflated_poisson``      log                       ``zi``
``zero_inflated_negbinomial``  log                       ``shape``, ``zi``
``zero_inflated_binomial``     logit, probit, cloglog    ``zi``; trials
``hurdle_poisson``             log                       ``hu``
``hurdle_negbinomial``         log                       ``shape``, ``hu``
``hurdle_lognormal``           identity (of log y)       ``sigma``, ``hu``
``hurdle_gamma``               log, inverse, identity    ``shape``, ``hu``
``cumulative``                 logit, probit, cloglog    ``Intercept[1]`` ... ``Intercept[K-1]``
=============================  ========================  ===================================
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from ...errors import DataError, FamilyError
from .base import Family, Param
from .binary import Bernoulli, Binomial
from .counts import NegBinomial, Poisson
from .gaussian import Gaussian, StudentT
from .inflated import (HurdleGamma, HurdleLognormal, HurdleNegBinomial, HurdlePoisson, ZeroInflatedBinomial,
                       ZeroInflatedNegBinomial, ZeroInflatedPoisson)
from .ordinal import Cumulative
from .positive import Exponential, Gamma, Lognormal, Weibull
from .unit import Beta, BetaBinomial
from .links import LINKS, Link, get_link

#: The families by name.
FAMILIES: dict[str, type[Family]] = {
    "gaussian": Gaussian,
    "student_t": StudentT,
    "bernoulli": Bernoulli,
    "binomial": Binomial,
    "poisson": Poisson,
    "negbinomial": NegBinomial,
    "lognormal": Lognormal,
    "gamma": Gamma,
    "exponential": Exponential,
    "weibull": Weibull,
    "beta": Beta,
    "beta_binomial": BetaBinomial,
    "zero_inflated_poisson": ZeroInflatedPoisson,
    "zero_inflated_negbinomial": ZeroInflatedNegBinomial,
    "zero_inflated_binomial": ZeroInflatedBinomial,
    "hurdle_poisson": HurdlePoisson,
    "hurdle_negbinomial": HurdleNegBinomial,
    "hurdle_lognormal": HurdleLognormal,
    "hurdle_gamma": HurdleGamma,
    "cumulative": Cumulative,
}
_ALIASES = {"normal": "gaussian", "student": "student_t", "studentt": "student_t", "logistic": "bernoulli",
            "negative_binomial": "negbinomial", "negbin": "negbinomial", "betabinomial": "beta_binomial",
            "zero_inflated_negative_binomial": "zero_inflated_negbinomial",
            "hurdle_negative_binomial": "hurdle_negbinomial", "ordinal": "cumulative"}
_CALL = re.compile(r"^\s*([A-Za-z_]+)\s*(?:\((.*)\))?\s*$")
#: Rows shown in a support error before "...".
MAX_ROWS_SHOWN = 8

__all__ = ["FAMILIES", "Family", "Param", "Link", "LINKS", "get_link", "get_family", "check_response",
           *(cls.__name__ for cls in FAMILIES.values())]


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
        raise FamilyError(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
    options = {}
    for k, part in enumerate(p.strip() for p in (match.group(2) or "").split(",") if p.strip()):
        key, sep, value = part.partition("=")
        key, value = (key.strip(), value.strip().strip("'\"")) if sep else ("link" if k == 0 else "", part.strip("'\""))
        if key not in ("link", "nu"):
            raise FamilyError(f"family {family!r}: unknown argument {part!r}; give a link, as in "
                              "'bernoulli(probit)', or nu for student_t, as in 'student_t(nu=4)'")
        if key == "nu":
            try:
                value = float(value)
            except ValueError:
                raise FamilyError(f"family {family!r}: nu must be a number, got {value!r}") from None
        options[key] = value
    return _make(match.group(1), options)


def _make(name: str, options: dict) -> Family:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in FAMILIES:
        raise FamilyError(f"unknown family {name!r}; choose from {', '.join(FAMILIES)}")
    try:
        return FAMILIES[key](**options)
    except TypeError:
        raise FamilyError(f"the {key} family takes no {', '.join(options)} argument") from None


def check_response(family: Family, y: np.ndarray, trials: np.ndarray | None, index, response: str,
                   has_trials: bool) -> None:
    """Raise DataError unless every response is in the family's support, naming the rows at fault.

    A constant response is an error for a family whose linear predictor is on the
    response's own scale (there is no spread to scale the default priors by or to
    estimate ``sigma`` from); for the other families it is a warning (all failures,
    all zero counts: the priors alone keep the intercept finite).
    """
    if family.needs_trials and trials is None:
        raise DataError(f"the {family.name} family needs the number of trials of each row: write the response "
                        f"as cbind(successes, failures) ~ ... or successes | trials(n) ~ ...")
    if has_trials and not family.needs_trials:
        raise DataError(f"{response} gives numbers of trials, which the {family.name} family does not use; "
                        "use family='binomial'")
    problem = family.support_problem(np.asarray(y, dtype=float),
                                     None if trials is None else np.asarray(trials, dtype=float))
    if problem is not None and problem[0].any():
        bad, what = problem
        rows = np.flatnonzero(bad)
        shown = ", ".join(f"{index[i]} ({y[i]:g}" + (f" of {trials[i]:g})" if trials is not None else ")")
                          for i in rows[:MAX_ROWS_SHOWN])
        more = f", ... ({len(rows)} rows in all)" if len(rows) > MAX_ROWS_SHOWN else ""
        raise DataError(f"the {family.name} family needs the response {response} to be {what}; "
                        f"rows {shown}{more} are not: fix or drop them, or choose another family")
    if len(y) > 0 and np.all(y == y[0]):
        if family.response_scale:
            raise DataError(f"the response {response} is {y[0]:g} in every row: a {family.name} model needs "
                            "responses that vary (there is no spread to estimate); check the column and the "
                            "rows kept")
        warnings.warn(f"the response {response} is {y[0]:g} in every row: the {family.name} model's intercept "
                      "is held by its prior alone", stacklevel=3)
