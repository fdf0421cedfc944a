"""``ml.fit``: formula and data in, a converged posterior out.

The pipeline of DESIGN.md in one function: parse the formula, build the
design, resolve the priors, pick and run a sampler, assemble the Fit.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Mapping

import jax
import numpy as np
import pandas as pd

from .design import Design, build_design
from .design.distributed import distributed_statistics, is_dask_frame
from .design.summary import summarise
from .design.suffstats import design_statistics, grouping_factors, nesting_order
from .errors import SamplerError
from .formula import parse_formula
from .inference import (SamplerOutput, choose_sampler, gibbs_problem, sample_collapsed,
                        sample_gibbs, sample_nuts)
from .model import (Family, GroupLayout, Layout, Prior, check_response, deviance, get_family, model_data,
                    pointwise_log_likelihood, resolve_priors)
from .results.fit import Fit, FitInfo
from .results.posterior import fitted_columns, make_idata, posterior_dataset
from .results.predict import add_posterior_predictive
from .results.summary import warn_convergence

#: Above this many (draws × rows) the pointwise log-likelihood is not stored.
MAX_LOGLIK_VALUES = 50_000_000


def fit(formula: str, data: pd.DataFrame, *, family: str | Family = "gaussian",
        priors: Mapping[str, Prior | str] | None = None, sampler: str = "auto", chains: int = 4,
        draws: int = 1000, warmup: int = 1000, seed: int = 0, target_accept: float = 0.8,
        max_treedepth: int = 10, centered: bool | Mapping[str, bool] | None = None,
        na_action: str = "drop", progress: bool | None = None, posterior_predictive: bool = False) -> Fit:
    """Fit a Bayesian multilevel model.

    Parameters
    ----------
    formula
        lme4/brms syntax, e.g. ``"log(dnow) ~ diam*trt + (1 + diam || tree)"``.
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
        ``"auto"`` (the best sampler for the model, see ``fit.sampler_info``), ``"collapsed"``
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

    Raises
    ------
    DataError
        For responses outside the family's support (negative or fractional counts,
        successes above the trials, Bernoulli responses other than 0/1), naming the rows.
    """
    _check_options(chains, draws, warmup, seed, target_accept, max_treedepth)
    spec = parse_formula(formula)
    family = get_family(family)
    if progress is None:
        progress = sys.stderr.isatty()
    options = dict(chains=chains, draws=draws, warmup=warmup, seed=seed, target_accept=target_accept,
                   max_treedepth=max_treedepth, progress=progress)
    if is_dask_frame(data):
        return _fit_distributed(spec, data, family, priors, sampler, na_action, options)
    design = build_design(spec, data, na_action=na_action)
    check_response(family, design.y, design.trials, design.row_index, design.response, spec.has_trials)
    layout = Layout.of(design, family)
    prior_set = resolve_priors(design, layout, priors, family)
    order = nesting_order(design)
    name, reason = choose_sampler(sampler, family, grouping_factors(design), order,
                                  gibbs_problem(layout, prior_set))

    with jax.enable_x64(True):
        if name == "collapsed":
            fast = _less_offset(design)
            output = sample_collapsed(design_statistics(fast, order), summarise(fast), order, layout,
                                      prior_set, **options)
        elif name == "gibbs":
            output = sample_gibbs(_less_offset(design), layout, prior_set, **options)
        else:
            output = sample_nuts(design, layout, family, prior_set,
                                 centered=_centering(centered, design), **options)
        data_arrays = model_data(design, prior_set)
        loglik = None
        if chains * draws * design.num_rows <= MAX_LOGLIK_VALUES:
            loglik = pointwise_log_likelihood(output.b, output.aux, output.effects, data_arrays, family)
        deviances = _deviances(output, loglik, data_arrays, family)

    info = FitInfo(spec, design.encoders, layout, family, prior_set.table(),
                   {**_sampler_info(name, reason, options, output, loglik is not None),
                    "deviance_at_posterior_mean": deviances[1]}, design.num_rows)
    fitted = _assemble(info, output.with_stats(deviance=deviances[0]), loglik, design.y,
                       fitted_columns(spec, data))
    if posterior_predictive:
        add_posterior_predictive(fitted.idata, layout, family, design, seed)
    return fitted


def _less_offset(design: Design) -> Design:
    """A Gaussian design with its offset moved into the response (``y - o = Xb + Zr + e``),
    as the fast paths take it."""
    if design.offset is None:
        return design
    return replace(design, y=design.y - design.offset, offset=None)


def _deviances(output: SamplerOutput, loglik, data, family) -> tuple[np.ndarray, float]:
    """The deviance of every draw, and at the posterior mean of all parameters (for DIC)."""
    if loglik is not None:
        per_draw = -2.0 * loglik.sum(axis=-1)
    elif "deviance" in output.stats:
        per_draw = output.stats["deviance"]
    else:
        per_draw = deviance(output.b, output.aux, output.effects, data, family)
    mean = lambda a: a.mean(axis=(0, 1))[None, None]  # noqa: E731
    at_mean = deviance(mean(output.b), mean(output.aux), [mean(e) for e in output.effects], data, family)
    return per_draw, float(at_mean[0, 0])


def _fit_distributed(spec, frame, family, priors, sampler, na_action, options) -> Fit:
    """Fit a Dask DataFrame: sufficient statistics by Dask, then the collapsed sampler."""
    if spec.offsets or spec.has_trials:
        raise SamplerError("a Dask DataFrame is fitted from sufficient statistics, which do not take offsets "
                           "or trials yet: compute a pandas DataFrame")
    if family.name != "gaussian" or sampler not in ("auto", "collapsed"):
        raise SamplerError("a Dask DataFrame is fitted by the collapsed sampler, from sufficient statistics "
                           "computed where the data live: use a Gaussian family and sampler='auto'")
    distributed = distributed_statistics(spec, frame, na_action)
    if len(distributed.order) > 2:
        raise SamplerError(f"more than two grouping factors ({', '.join(distributed.order)}) cannot be "
                           "collapsed yet; compute a pandas DataFrame and use sampler='nuts'")
    layout = Layout(distributed.columns, family.aux, tuple(
        GroupLayout(name, columns, distributed.encoders.levels[name], correlated)
        for name, columns, correlated in distributed.group_terms))
    prior_set = resolve_priors(distributed.summary, layout, priors)
    with jax.enable_x64(True):
        output = sample_collapsed(distributed.stats, distributed.summary, distributed.order, layout,
                                  prior_set, **options)
    reason = (f"Dask DataFrame ({distributed.num_partitions} partitions): sufficient statistics computed "
              "by Dask, effects integrated out exactly")
    info = FitInfo(spec, distributed.encoders, layout, family, prior_set.table(),
                   _sampler_info("collapsed", reason, options, output, False), int(distributed.summary.n))
    return _assemble(info, output, None, None)


def _sampler_info(name: str, reason: str, options: dict, output: SamplerOutput, loglik_stored: bool) -> dict:
    """What ``fit.sampler_info`` reports: which sampler, why, its settings and timings."""
    settings = {k: options[k] for k in ("chains", "draws", "warmup", "seed")}
    return {"sampler": name, "reason": reason, **settings, "log_likelihood_stored": loglik_stored, **output.info}


def _assemble(info: FitInfo, output: SamplerOutput, loglik, y, constant_data=None) -> Fit:
    posterior = posterior_dataset(info.layout, output.b, output.aux, output.sd, output.chol, output.effects)
    attrs = {"inference_library": "multilevel", "sampling_time": info.sampler_info["sampling_seconds"]}
    fitted = Fit(make_idata(info.layout, posterior, output.stats, loglik, y, attrs, constant_data), info)
    warn_convergence(fitted.diagnostics())
    return fitted


def _centering(centered, design) -> tuple[bool | None, ...]:
    """Per group term True/False as the user set it, None where the sampler chooses."""
    if centered is None:
        return (None,) * len(design.groups)
    if isinstance(centered, bool):
        return (centered,) * len(design.groups)
    names = [g.name for g in design.groups]
    unknown = [k for k in centered if k not in names]
    if unknown:
        raise SamplerError(f"centered names unknown grouping factors {unknown}; the model has {names}")
    return tuple(None if centered.get(n) is None else bool(centered[n]) for n in names)


def _check_options(chains, draws, warmup, seed, target_accept, max_treedepth) -> None:
    for name, value, low in (("chains", chains, 1), ("draws", draws, 1), ("warmup", warmup, 0),
                             ("max_treedepth", max_treedepth, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise SamplerError(f"{name} must be a whole number >= {low}, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SamplerError(f"seed must be a non-negative whole number, got {seed!r}")
    if not 0 < target_accept < 1:
        raise SamplerError(f"target_accept must be between 0 and 1, got {target_accept!r}")
