"""``ml.fit``: formula and data in, a converged posterior out.

The pipeline of DESIGN.md as a composition of its stages, with no logic of its
own: build the model (:func:`multilevel.model.build_model`), choose a sampler
(:func:`multilevel.inference.choose_sampler`), run it, assemble the Fit
(:func:`multilevel.results.assemble.assemble_fit`).
"""

from __future__ import annotations

import sys
import time
import warnings
from typing import Mapping, Sequence

import jax
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .compilation_cache import enable_compilation_cache
from .errors import SamplerError
from .formula import Formula
from .inference import Options, choose_sampler
from .inference.prior import PRIOR
from .model import Family, Prior, build_model
from .results.assemble import assemble_fit
from .results.calibration import Calibration, run_sbc
from .results.fit import Fit
from .results.summary import ConvergenceWarning


def fit(formula: str | Sequence[str] | Formula, data: pd.DataFrame, *, family: str | Family = "gaussian",
        priors: Mapping[str, Prior | str] | None = None, sampler: str = "auto", chains: int = 4,
        draws: int = 1000, warmup: int = 1000, seed: int = 0, target_accept: float = 0.8,
        max_treedepth: int = 10, centered: bool | Mapping[str, bool] | None = None,
        na_action: str = "drop", progress: bool | None = None, posterior_predictive: bool = False,
        prior_only: bool = False, weights: str | None = None) -> Fit:
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
        A name of :data:`multilevel.model.FAMILIES` (brms's: ``"gaussian"``, ``"student_t"``,
        ``"bernoulli"``, ``"binomial"``, ``"poisson"``, ``"negbinomial"``, ``"lognormal"``,
        ``"gamma"``, ``"exponential"``, ``"weibull"``, ``"beta"``, ``"beta_binomial"``,
        ``"cumulative"``, the ``"zero_inflated_..."`` and ``"hurdle_..."`` families),
        optionally with a link or a fixed ``nu``: ``"bernoulli(probit)"``,
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
    weights
        A column of weights, as glmer's ``weights =``: for a binomial family whose formula
        gives no trials, the trials of a proportion response (``"incidence/size ~ period"``
        with ``weights="size"``: ``incidence/size × size`` successes of ``size``, which must
        be whole numbers); for any other model, likelihood weights (each row's log-likelihood
        times its weight, as ``y | weights(w) ~ ...``).
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
    enable_compilation_cache()
    started = time.perf_counter()
    model = build_model(formula, data, family=family, priors=priors, na_action=na_action, weights=weights)
    built = time.perf_counter()
    if prior_only:
        if sampler != "auto":
            raise SamplerError(f"prior_only=True draws from the priors directly; it takes no sampler "
                               f"(got sampler={sampler!r})")
        chosen, reason = PRIOR, PRIOR.suits(model)
    else:
        chosen, reason = choose_sampler(sampler, model)
    with jax.enable_x64(True):
        result = chosen.run(model, seed, options)
    ran = time.perf_counter()
    return assemble_fit(model, result, sampler=chosen.name, reason=reason, seed=seed, options=options,
                        posterior_predictive=posterior_predictive,
                        stage_seconds={"model": built - started, "run": ran - built})


def default_priors(formula: str | Sequence[str] | Formula, data: pd.DataFrame, *,
                   family: str | Family = "gaussian", priors: Mapping[str, Prior | str] | None = None,
                   na_action: str = "drop") -> pd.DataFrame:
    """The priors a fit of this model would use, without fitting (brms's ``get_prior``):
    one row per parameter with its class, group, prior and source ("default" or the key
    of ``priors`` that set it). The keys in the ``parameter``, ``class`` and ``class|group``
    forms are what ``priors=`` takes."""
    return build_model(formula, data, family=family, priors=priors, na_action=na_action).priors.table()


def sbc(formula: str | Sequence[str] | Formula, data: pd.DataFrame, *, family: str | Family = "gaussian",
        priors: Mapping[str, Prior | str] | None = None, fit_priors: Mapping[str, Prior | str] | None = None,
        num_simulations: int = 100, chains: int = 2, draws: int = 500, warmup: int = 500, seed: int = 0,
        false_alarm: float = 1e-3, progress: bool | None = None, **options) -> Calibration:
    """Simulation-based calibration of the model on the rows of ``data``
    (:mod:`multilevel.results.calibration`): ``num_simulations`` times, draw the parameters
    from ``priors`` and a response from the model on those rows, fit it (with
    ``fit_priors`` if given, else ``priors``; ``chains``, ``draws``, ``warmup`` and the
    other options of :func:`fit`), and rank each true value among the posterior draws.

    Returns a :class:`~multilevel.results.calibration.Calibration`: ``ranks``, ``tests``
    (chi-square p-value per parameter), ``calibrated`` (every p-value above
    ``false_alarm / k``), ``figure`` (rank histograms), ``rejected`` and ``warned``.
    Each simulation is a fit: the cost is ``num_simulations`` fits (compiled once).
    """
    if isinstance(num_simulations, bool) or not isinstance(num_simulations, (int, np.integer)) \
            or num_simulations < 2:
        raise SamplerError(f"num_simulations must be a whole number >= 2, got {num_simulations!r}")
    if progress is None:
        progress = sys.stderr.isatty()
    model = build_model(formula, data, family=family, priors=priors)
    frame = pd.DataFrame(data).iloc[model.design.kept_rows].reset_index(drop=True)
    prior_fit = fit(model.spec, frame, family=family, priors=priors, prior_only=True, chains=1,
                    draws=num_simulations, seed=seed, posterior_predictive=True, progress=False)

    def fit_once(simulated: pd.DataFrame, s: int):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            fitted = fit(model.spec, simulated, family=family, priors=priors if fit_priors is None else fit_priors,
                         chains=chains, draws=draws, warmup=warmup, seed=seed + 1 + s, progress=False, **options)
        return fitted, any(issubclass(w.category, ConvergenceWarning) for w in caught)

    categories = getattr(model.family, "categories", None)
    return run_sbc(prior_fit, fit_once, frame, model.spec, categories, list(model.layout.scalar_names()),
                   num_simulations, false_alarm, (lambda it: tqdm(it, desc="sbc")) if progress else None)


def _check_options(chains, draws, warmup, seed, target_accept, max_treedepth) -> None:
    for name, value, low in (("chains", chains, 1), ("draws", draws, 1), ("warmup", warmup, 0),
                             ("max_treedepth", max_treedepth, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise SamplerError(f"{name} must be a whole number >= {low}, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SamplerError(f"seed must be a non-negative whole number, got {seed!r}")
    if not 0 < target_accept < 1:
        raise SamplerError(f"target_accept must be between 0 and 1, got {target_accept!r}")
