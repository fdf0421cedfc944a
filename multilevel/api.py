"""``ml.fit``: formula and data in, a converged posterior out.

The pipeline of DESIGN.md as a composition of its stages, with no logic of its
own: build the model (:func:`multilevel.model.build_model`), choose a sampler
(:func:`multilevel.inference.choose_sampler`), run it, assemble the Fit
(:func:`multilevel.results.assemble.assemble_fit`).
"""

from __future__ import annotations

import sys
from typing import Mapping, Sequence

import jax
import numpy as np
import pandas as pd

from .errors import SamplerError
from .formula import Formula
from .inference import Options, choose_sampler
from .inference.prior import PRIOR
from .model import Family, Prior, build_model
from .results.assemble import assemble_fit
from .results.fit import Fit


def fit(formula: str | Sequence[str] | Formula, data: pd.DataFrame, *, family: str | Family = "gaussian",
        priors: Mapping[str, Prior | str] | None = None, sampler: str = "auto", chains: int = 4,
        draws: int = 1000, warmup: int = 1000, seed: int = 0, target_accept: float = 0.8,
        max_treedepth: int = 10, centered: bool | Mapping[str, bool] | None = None,
        na_action: str = "drop", progress: bool | None = None, posterior_predictive: bool = False,
        prior_only: bool = False) -> Fit:
    """Fit a Bayesian multilevel model.

    Parameters
    ----------
    formula
        lme4/brms syntax, e.g. ``"log(dnow) ~ diam*trt + (1 + diam || tree)"``. For a
        distributional model, ``ml.Formula("y ~ x + (1 | g)", "sigma ~ x + (1 | g)")`` or a
        list of formula strings: the response's first, then one per parameter of the family
        it predicts (``sigma``, ``shape``, ``phi``, ``zi``, ``hu``, ``nu``), on the parameter's
        link scale (log, or logit for ``zi`` and ``hu``); its coefficients are named
        ``sigma_Intercept``, ``sigma_x``, its group terms ``sd(sigma_Intercept|g)``.
    data
        A pandas DataFrame (never modified), or a Dask DataFrame: then the sufficient
        statistics of a Gaussian model are computed by Dask where the data live,
        partition by partition, and the collapsed sampler fits from them (no
        pointwise log-likelihood is stored).
    family
        ``"gaussian"``, ``"student_t"``, ``"bernoulli"``, ``"binomial"``, ``"poisson"``,
        ``"negbinomial"``, optionally with a link or a fixed ``nu``: ``"bernoulli(probit)"``,
        ``"student_t(nu=4)"``; or a family object such as ``ml.families.binomial(link="probit")``.
        A binomial response is written ``cbind(successes, failures) ~ ...`` or
        ``successes | trials(n) ~ ...``.
    priors
        Priors keyed by parameter name (``"sd(diam|tree)"``), class and group
        (``"sd|tree"``) or class (``"Intercept"``, ``"b"``, ``"sigma"``, ``"sd"``,
        ``"cor"``); values are priors such as ``ml.Normal(0, 10)`` or strings
        such as ``"normal(0, 10)"``. Unnamed parameters get the defaults of ``fit.priors``.
    sampler
        ``"auto"`` (the first sampler of :data:`multilevel.inference.REGISTRY` that can
        fit the model; ``fit.sampler_info["reason"]`` says why), ``"collapsed"``
        (Gaussian models with one grouping factor or two nested ones: variance parameters
        by NUTS on the exact marginal posterior, then exact draws of the effects),
        ``"gibbs"`` (Gaussian models with Normal priors on the fixed effects and
        InverseWishart priors on correlated blocks: blocked Gibbs sampling, as in JAGS;
        the default for crossed grouping factors) or ``"nuts"`` (the full model).
    chains, draws, warmup
        Number of chains, and of kept draws and warmup iterations per chain.
    seed
        Seed of every random choice: the same seed gives the same draws.
    target_accept, max_treedepth
        NUTS settings: target acceptance rate during warmup, maximum tree depth.
    centered
        Parameterisation of the group effects for NUTS: True (centred), False
        (non-centred), a dict by grouping-factor name (missing names: chosen), or None
        to choose per term: a pilot of the first warmup steps estimates each term's sd, and a
        term is centred when its sd² times the information its rows carry about a level's
        effect, with the other terms' effects integrated out (nested ones at their sd,
        crossed ones at their posterior variance), is at least 1 for most levels. A centred
        term sits on its parent term's total (nested factors) or on its fixed effect;
        ``fit.sampler_info["centering"]`` and ``["centering_reason"]`` say what was chosen
        and why.
    na_action
        ``"drop"`` (rows with missing values in used columns, with a warning) or ``"error"``.
    progress
        Show progress bars (default: when standard error is a terminal).
    posterior_predictive
        Also draw a replicate of the response at every fitted row for every draw,
        into ``fit.idata.posterior_predictive`` (variable ``y``, dims chain, draw, obs).
    prior_only
        Draw from the priors instead of the posterior (brms's ``sample_prior = "only"``):
        exact independent draws, no sampler and no data in the draws (the data still give
        the design and the default priors). With ``posterior_predictive=True`` the
        replicates are prior predictive draws; the Fit summarises, plots and predicts as
        for a posterior.

    Raises
    ------
    DataError
        For responses outside the family's support (negative or fractional counts,
        successes above the trials, Bernoulli responses other than 0/1), naming the rows,
        and a constant response of an identity-link family.
    FormulaError, PriorError, FamilyError, SamplerError
        For a formula, priors, family or sampler options that do not make a model.
    """
    _check_options(chains, draws, warmup, seed, target_accept, max_treedepth)
    if progress is None:
        progress = sys.stderr.isatty()
    options = Options(chains, draws, warmup, target_accept, max_treedepth, centered, progress)
    model = build_model(formula, data, family=family, priors=priors, na_action=na_action)
    if prior_only:
        if sampler != "auto":
            raise SamplerError(f"prior_only=True draws from the priors directly; it takes no sampler "
                               f"(got sampler={sampler!r})")
        chosen, reason = PRIOR, PRIOR.suits(model)
    else:
        chosen, reason = choose_sampler(sampler, model)
    with jax.enable_x64(True):
        result = chosen.run(model, seed, options)
    return assemble_fit(model, result, sampler=chosen.name, reason=reason, seed=seed, options=options,
                        posterior_predictive=posterior_predictive)


def default_priors(formula: str | Sequence[str] | Formula, data: pd.DataFrame, *,
                   family: str | Family = "gaussian", priors: Mapping[str, Prior | str] | None = None,
                   na_action: str = "drop") -> pd.DataFrame:
    """The priors a fit of this model would use, without fitting (brms's ``get_prior``):
    one row per parameter with its class, group, prior and source ("default" or the key
    of ``priors`` that set it). The keys in the ``parameter``, ``class`` and ``class|group``
    forms are what ``priors=`` takes."""
    return build_model(formula, data, family=family, priors=priors, na_action=na_action).priors.table()


def _check_options(chains, draws, warmup, seed, target_accept, max_treedepth) -> None:
    for name, value, low in (("chains", chains, 1), ("draws", draws, 1), ("warmup", warmup, 0),
                             ("max_treedepth", max_treedepth, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise SamplerError(f"{name} must be a whole number >= {low}, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SamplerError(f"seed must be a non-negative whole number, got {seed!r}")
    if not 0 < target_accept < 1:
        raise SamplerError(f"target_accept must be between 0 and 1, got {target_accept!r}")
