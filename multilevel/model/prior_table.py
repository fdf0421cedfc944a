"""Default priors and the resolution of user priors onto parameters.

Defaults are proper, weakly informative and scaled to the data (``s_y`` is the
sd of the response, ``m_y`` its mean, ``s_x`` the sd of a design column; a
constant column counts as ``s_x = 1``):

===================  ==================================  =========================
parameter            default                             why
===================  ==================================  =========================
``Intercept``        Normal(m_y, s_0)                    as bambi (below)
``b`` (column x)     Normal(0, 2.5 s_y / s_x)            as bambi: 2.5 sd of y per sd of x
``sigma``            HalfStudentT(3, s_y)                as brms, on the sd scale
``sd(x|g)``          HalfStudentT(3, s_y / s_x)          same units as the effect
``cor|g``            LKJ(1)                              uniform over correlations
``sds(sx_1)``        HalfStudentT(3, s_y / s_x)          as ``sd``; s_x the rms sd of its columns
===================  ==================================  =========================

A smooth's penalised coefficients (``s_sx_1[1]`` ...) have the prior ``N(0, sds²)`` of
their block's sd (:mod:`multilevel.model.penalties`), not a prior of their own: they are
not in the prior table and take no user prior; its unpenalised columns (``sx_1``) are
fixed effects of class ``b``.

The intercept is the mean response where every predictor is 0, which may be far
from the data when predictors are not centred: with ``m_x`` the column means,
``s_0² = (2.5 s_y)² + Σ_x (2.5 s_y m_x / s_x)²`` is the prior variance of
``m_y - Σ_x b_x m_x`` under the slopes' priors. Normal priors on every fixed
effect let the collapsed sampler integrate them out.

Families with a logit, probit or log link have no ``s_y`` on the scale of the
linear predictor: there the unit is 1 (a change of 2.5 on the logit scale is
large), so ``b`` gets Normal(0, 2.5 / s_x), the intercept Normal(m_0, s_0) with
``s_y = 1`` and ``m_0`` the link of the mean response (``logit(Σy / Σtrials)``,
``log(ȳ)``, clipped away from 0 and 1, minus the mean offset), and the sds
HalfStudentT(3, 2.5 / s_x), as brms's ``student_t(3, 0, 2.5)``. Other
family parameters take their family's default (:attr:`Param.prior`), brms's:
``nu`` (student_t) Gamma(2, 0.1), ``shape`` (negbinomial) Gamma(0.01, 0.01).

A parameter predicted by a formula of its own (``sigma ~ x + (1 | g)``) has its
coefficients on its link scale (log for a positive parameter, logit for a
probability), with brms's defaults there: ``sigma_Intercept`` StudentT(3, l, 2.5)
around ``l``, the link of the parameter's starting value (``log s_y`` for
``sigma``), the other coefficients Normal(0, 2.5 / s_x) and the sds of its terms
HalfStudentT(3, 2.5 / s_x).

User priors are keyed by parameter name (``"sd(diam|tree)"``), by class and
group (``"sd|tree"``, ``"cor|tree"``) or by class (``"Intercept"``, ``"b"``,
``"sigma"``, ``"sd"``, ``"cor"``); the most specific key wins. The classes of a
predicted parameter's coefficients and terms end with its name, as brms's
``dpar``: ``"Intercept_sigma"``, ``"b_sigma"``, ``"sd_sigma"`` (``"sd_sigma|g"``),
``"cor_sigma"``. The covariance
of a correlated term can instead take an InverseWishart prior (``"cov|tree"``
or ``"cov"``), which then sets its sds and correlations together.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping, NamedTuple

import numpy as np
import pandas as pd

from ..design import Design
from ..design.summary import DataSummary, summarise
from ..errors import PriorError
from .families import Family, Gaussian, Param, get_link
from .layout import Layout
from .priors import LKJ, HalfStudentT, InverseWishart, Normal, Prior, StudentT, prior_from_string, prior_text



class PriorValues(NamedTuple):
    """The prior objects as the log densities read them (a pytree whose leaves are the
    priors' numbers): per fixed effect, per family parameter, per group term its sds,
    and per group term its correlation (or covariance) prior or None."""

    fixed: tuple[Prior, ...]
    aux: tuple[Prior, ...]
    sd: tuple[tuple[Prior, ...], ...]
    cor: tuple[Prior | None, ...]


@dataclass(frozen=True)
class ParamPrior:
    """The prior of one parameter (or one correlation matrix) and where it came from."""

    name: str
    cls: str
    group: str | None
    prior: Prior
    source: str  # "default" or the user key that set it


@dataclass(frozen=True)
class PriorSet:
    """Resolved priors, in the layout's order, grouped as the log density reads them."""

    fixed: tuple[ParamPrior, ...]
    aux: tuple[ParamPrior, ...]
    sd: tuple[tuple[ParamPrior, ...], ...]
    cor: tuple[ParamPrior | None, ...]

    def all(self) -> list[ParamPrior]:
        """Every parameter with a prior of its own (not a smooth's penalised coefficients)."""
        out = [p for p in self.fixed if p.cls != "zs"] + list(self.aux)
        for sds, cor in zip(self.sd, self.cor):
            out += list(sds) + ([cor] if cor is not None else [])
        return out

    def table(self) -> pd.DataFrame:
        """One row per parameter: name, class, group, prior, source (a compound-symmetric
        term's one sd once)."""
        rows = list(dict.fromkeys((p.name, p.cls, p.group or "", str(p.prior), p.source) for p in self.all()))
        return pd.DataFrame(rows, columns=["parameter", "class", "group", "prior", "source"])

    def arguments(self) -> dict[str, str]:
        """The ``priors=`` under which a refit resolves to these same priors, whatever its data:
        every parameter by name (a term under an InverseWishart prior by its ``cov`` key), each
        prior as exact text (:func:`~multilevel.model.priors.prior_text`)."""
        return {p.name: prior_text(p.prior) for p in self.all()
                if not isinstance(p.prior, InverseWishart) or base_class(p.cls) != "sd"}

    def values(self) -> PriorValues:
        """The prior objects as a pytree for the log density."""
        return PriorValues(tuple(p.prior for p in self.fixed), tuple(p.prior for p in self.aux),
                           tuple(tuple(p.prior for p in sds) for sds in self.sd),
                           tuple(None if c is None else c.prior for c in self.cor))


def column_scale(sd: float) -> float:
    """A column's sd as a scale: 1 for a constant column (the intercept)."""
    sd = float(sd)
    return sd if np.isfinite(sd) and sd > 1e-12 else 1.0


def intercept_location(family: Family, y: np.ndarray, trials: np.ndarray | None,
                       offset: np.ndarray | None) -> float:
    """The link of the mean response, clipped inside the support, minus the mean offset."""
    if family.needs_trials:
        mean = float(np.sum(y)) / max(float(np.sum(trials)), 1.0)
    else:
        mean = float(np.mean(y))
    location = family.link_function.clipped(mean)
    return location - (float(np.mean(offset)) if offset is not None else 0.0)


def default_priors(summary: DataSummary, layout: Layout, family: Family | None = None,
                   location: float | None = None) -> dict[str, Prior]:
    """Default prior of every parameter name (``cor|g`` for correlation matrices).

    For a family without :attr:`Family.response_scale`, ``location`` is the intercept's prior
    mean (:func:`intercept_location`; 0 if None) and the unit of scale is 1.
    """
    family = family or Gaussian()
    identity = family.response_scale
    s_y, m_y = column_scale(summary.y_sd), float(summary.y_mean)
    sd_scale = s_y
    if not identity:
        s_y, m_y, sd_scale = 1.0, float(location or 0.0), 2.5
    out: dict[str, Prior] = {}
    intercept_var = (2.5 * s_y) ** 2
    for j, (name, dpar) in enumerate(zip(layout.fixed, layout.fixed_dpars)):
        s_x = column_scale(summary.X_sd[j])
        if name in layout.penalised:
            out[name] = Normal(0.0, 1.0)   # a placeholder: the prior is N(0, sds²)
        elif dpar:
            out[name] = (StudentT(3.0, _dpar_location(family, dpar, summary), 2.5)
                         if name == f"{dpar}_Intercept" else Normal(0.0, 2.5 / s_x))
        elif name != "Intercept":
            out[name] = Normal(0.0, 2.5 * s_y / s_x)
            intercept_var += (2.5 * s_y * float(summary.X_mean[j]) / s_x) ** 2
    if "Intercept" in layout.fixed:
        out["Intercept"] = Normal(m_y, float(np.sqrt(intercept_var)))
    for param in family.params:
        if param.name in layout.aux:
            out[param.name] = HalfStudentT(3.0, s_y) if param.prior is None else param.prior
    for name, columns in layout.smooths:
        j = [layout.fixed.index(c) for c in columns]
        s_x = column_scale(np.sqrt(np.mean(np.asarray(summary.X_sd)[j] ** 2)))
        out[name] = HalfStudentT(3.0, (2.5 if layout.fixed_dpars[j[0]] else sd_scale) / s_x)
    for t, g in enumerate(layout.groups):
        scales = [(2.5 if g.dpars[j] else sd_scale) / column_scale(summary.z_sd(t)[j]) for j in range(g.q)]
        for j, sd_name in enumerate(g.sd_names):     # a compound-symmetric term's one sd: the widest
            out[sd_name] = HalfStudentT(3.0, max(scales) if g.compound else scales[j])
        if g.has_cor:
            out[g.cor_key] = LKJ(1.0)
    return out


def _dpar_location(family: Family, dpar: str, summary: DataSummary) -> float:
    """The link of a predicted parameter's starting value (``log s_y`` for a scale without one)."""
    param = next(p for p in family.params if p.name == dpar)
    start = param.start if param.start is not None else column_scale(summary.y_sd)
    return float(get_link(param.link)(np.asarray(max(start - param.lower, 1e-6))))


def _entries(layout: Layout, family: Family):
    """(name, class, group) of every prior-carrying parameter, in order."""
    block = {c: sds for sds, columns in layout.smooths for c in columns}
    for name, dpar in zip(layout.fixed, layout.fixed_dpars):
        intercept, suffix = (f"{dpar}_Intercept", f"_{dpar}") if dpar else ("Intercept", "")
        if name in block:
            yield name, "zs", block[name]
            continue
        yield name, ("Intercept" if name == intercept else "b") + suffix, None
    for param in family.params:
        if param.name in layout.aux:
            yield param.name, param.cls or param.name, None
    for name, columns in layout.smooths:
        dpar = layout.fixed_dpars[layout.fixed.index(columns[0])]
        yield name, f"sds_{dpar}" if dpar else "sds", None
    for g in layout.groups:
        for j, name in enumerate(g.sd_names):
            yield name, f"sd{g.column_suffix(j)}", g.name
        if g.has_cor:
            yield g.cor_key, g.cor_key.split("|")[0], g.name


def resolve_priors(data: Design | DataSummary, layout: Layout,
                   user: Mapping[str, Prior | str] | None = None, family: Family | None = None) -> PriorSet:
    """Apply user priors over the defaults (scaled to ``data``, a design or its
    summary, and to the ``family``, Gaussian if None); the most specific key wins.

    Raises
    ------
    PriorError
        For a key that matches no parameter (listing the valid keys), or a
        prior whose support does not fit the parameter.
    """
    user = dict(user or {})
    for key, value in list(user.items()):
        if isinstance(value, str):
            user[key] = prior_from_string(value)
        elif not isinstance(value, Prior):
            raise PriorError(f"the prior for {key!r} must be a prior such as ml.Normal(0, 1), "
                             f"got {type(value).__name__}")
    entries = list(_entries(layout, family or Gaussian()))
    valid = []
    for name, cls, group in entries:
        if cls == "zs":
            continue
        valid += [name, cls] + ([f"{cls}|{group}"] if group else [])
        if base_class(cls) == "cor":
            valid += [f"cov{cls[3:]}|{group}", f"cov{cls[3:]}"]
    valid = list(dict.fromkeys(valid))
    unknown = [k for k in user if k not in valid]
    if unknown:
        raise PriorError(f"no parameter matches the prior key(s) {', '.join(map(repr, unknown))}; "
                         f"valid keys are {', '.join(valid)}")
    location = None
    if isinstance(data, Design) and family is not None:
        if family.response_scale:
            data = replace(data, y=np.asarray(family.working_response(data.y, data.trials), dtype=float))
        else:
            location = intercept_location(family, data.y, data.trials, data.offset)
    defaults = default_priors(data if isinstance(data, DataSummary) else summarise(data), layout, family, location)
    covariance = _covariance_priors(layout, user)
    resolved: dict[str, ParamPrior] = {}
    for name, cls, group in entries:
        if cls == "zs":
            resolved[name] = ParamPrior(name, cls, group, defaults[name], group)
            continue
        term = f"cor{cls[len(base_class(cls)):]}|{group}" if group else None
        if term in covariance:
            resolved[name] = _from_covariance(name, cls, group, covariance[term], user)
            continue
        for key in (name, f"{cls}|{group}" if group else None, cls):
            if key is not None and key in user:
                prior, source = user[key], key
                break
        else:
            prior, source = defaults[name], "default"
        _check_support(name, cls, prior)
        resolved[name] = ParamPrior(name, cls, group, prior, source)
    for param in family.params if family is not None else ():
        if param.name in layout.aux:
            _check_param_support(param, resolved[param.name].prior)
    for g in layout.groups:
        if g.compound and resolved[g.cor_key].prior.eta < 1:
            raise PriorError(f"{resolved[g.cor_key].source}: the correlation of the compound-symmetric term on "
                             f"{g.name!r} takes LKJ(eta) with eta >= 1, got {resolved[g.cor_key].prior}")
    return PriorSet(
        fixed=tuple(resolved[n] for n in layout.fixed),
        aux=tuple(resolved[n] for n in layout.aux),
        sd=tuple(tuple(resolved[n] for n in g.sd_names) for g in layout.groups),
        cor=tuple(resolved[g.cor_key] if g.has_cor else None for g in layout.groups),
    )


def base_class(cls: str) -> str:
    """The prior class without its parameter's suffix: ``b`` of ``b_sigma``."""
    return cls.split("_")[0] if cls.split("_")[0] in ("Intercept", "b", "sd", "cor", "sds") else cls


def _covariance_priors(layout: Layout, user: dict) -> dict[str, tuple[InverseWishart, str]]:
    """``{cor key: (prior, key)}`` for the correlated terms whose covariance has an
    InverseWishart prior: the first of ``cov|g``, ``cor|g``, ``cov``, ``cor`` given decides
    (``cov_sigma|g`` ... for a term of ``sigma``'s formula)."""
    out = {}
    for g in layout.groups:
        if not g.has_cor:
            continue
        s = g.cor_key.split("|")[0][3:]
        key = next((k for k in (f"cov{s}|{g.name}", f"cor{s}|{g.name}", f"cov{s}", f"cor{s}") if k in user), None)
        if key is None or not key.startswith("cov"):
            continue
        if g.compound:
            raise PriorError(f"{key}: the term on {g.name!r} is compound-symmetric (cs()): give its sd a "
                             f"prior ('sd|{g.name}') and its correlation an LKJ(eta) prior ('cor|{g.name}'), "
                             "not a covariance")
        prior = user[key]
        if not isinstance(prior, InverseWishart):
            raise PriorError(f"{key}: the covariance of a correlated term takes an InverseWishart(df, scale) "
                             f"prior, got {prior}")
        prior.check_dimension(g.q, key)
        out[g.cor_key] = (prior, key)
    return out


def _from_covariance(name: str, cls: str, group: str, covariance: tuple[InverseWishart, str],
                     user: dict) -> ParamPrior:
    """The sds and correlations of a term whose covariance has an InverseWishart prior."""
    prior, key = covariance
    suffix = cls[len(base_class(cls)):]
    if base_class(cls) == "cor":
        return ParamPrior(f"cov{suffix}|{group}", f"cov{suffix}", group, prior, key)
    clash = next((k for k in (name, f"sd{suffix}|{group}") if k in user), None)
    if clash:
        raise PriorError(f"{clash}: the sds of the term on {group!r} are set by the InverseWishart "
                         f"prior on {key}; drop one of the two")
    return ParamPrior(name, cls, group, prior, key)


def _check_param_support(param: Param, prior: Prior) -> None:
    """A family parameter's prior must put its mass where the parameter lives."""
    name, lower = param.name, param.lower
    if param.support == "ordered":
        if prior.support != "real":
            raise PriorError(f"{name} is a threshold on the whole real line: give it a prior such as "
                             f"Normal or StudentT; got {prior}")
    elif param.support == "unit":
        if not (prior.support == "unit" or (prior.support == "interval" and prior.low >= 0 and prior.high <= 1)):
            raise PriorError(f"{name} is a probability, so its prior must lie within (0, 1), such as "
                             f"Beta(a, b) or Uniform(0, 1); got {prior}")
    elif prior.support == "unit":
        raise PriorError(f"{name} is positive, not a probability: {prior} does not apply; give a prior on "
                         "(0, ∞) such as HalfStudentT or Gamma")
    elif lower > 0 and prior.support == "interval" and prior.high <= lower:
        raise PriorError(f"{name} is at least {lower:g}, so its prior must put mass above {lower:g}; "
                         f"got {prior}")


def _check_support(name: str, cls: str, prior: Prior) -> None:
    cls = base_class(cls)
    if isinstance(prior, InverseWishart):
        raise PriorError(f"{name}: InverseWishart is a prior on the covariance of a correlated term "
                         f"(key 'cov' or 'cov|group'), not on {cls}")
    if cls == "cor":
        if not isinstance(prior, LKJ):
            raise PriorError(f"{name}: a correlation matrix takes an LKJ(eta) prior, got {prior}")
    elif isinstance(prior, LKJ):
        raise PriorError(f"{name}: LKJ is a prior for correlations (key 'cor'), not for {cls}")
    elif cls in ("Intercept", "b", "sd", "sds") and prior.support == "unit":
        raise PriorError(f"{name}: {prior} is a prior on a probability, not on {cls}")
    elif cls in ("Intercept", "b") and prior.support != "real":
        raise PriorError(f"{name}: a fixed effect takes a prior on the whole real line "
                         f"(Normal, StudentT, Cauchy), got {prior}")
    elif prior.support == "interval" and getattr(prior, "high", 1.0) <= 0:
        raise PriorError(f"{name} is positive, but {prior} puts no mass above 0")
