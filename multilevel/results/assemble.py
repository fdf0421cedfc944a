"""The Fit built from a model and its draws: the only place a fit is assembled.

Adds what the draws alone do not say: the pointwise log-likelihood (when it
fits in :data:`MAX_LOGLIK_VALUES`), the deviance of every draw and at the
posterior mean (DIC), optional posterior-predictive replicates, and the
sampler's report, then warns of convergence problems.

The InferenceData (and with it ArviZ, and the pointwise log-likelihood when the
sampler gave the deviance of every draw) is built at the first use of
``fit.idata``: the summary, the diagnostics and the accessors read the posterior
without it, so a fit that is only summarised never pays for it.

The report's ``timings`` splits the fit's wall time (seconds): ``model`` (formula,
design and priors), ``compile`` (tracing and compiling the sampler's programs, and
initialising the chains), ``warmup`` and ``sampling`` (the chains, in parallel;
``warmup`` None when the sampler does not measure it, its time then in
``sampling``), ``draws`` (draws made after the chains: the collapsed sampler's exact
draws), ``sampler_other`` (the rest of the sampler's run: starting values, pilots,
transfers), ``log_likelihood`` (pointwise log-likelihood and deviances, when
computed before ``fit.idata`` is used), ``posterior`` (the named posterior arrays, as
``fit.idata.posterior`` will hold it), ``diagnostics`` (the convergence check),
``assembly`` (all of assembling the Fit) and ``total``.
"""

from __future__ import annotations

import time
from typing import Mapping

import jax

from ..inference.sampler import Draws, Options
from ..model import Model, deviance, model_data, pointwise_log_likelihood, structure
from .fit import Fit, FitInfo
from .posterior import make_idata, posterior_dataset, posterior_xarray
from .predict import posterior_predictive_draws
from .summary import warn_convergence

#: Above this many (draws × rows) the pointwise log-likelihood is not stored.
MAX_LOGLIK_VALUES = 50_000_000


def assemble_fit(model: Model, draws: Draws, *, sampler: str, reason: str, seed: int, options: Options,
                 posterior_predictive: bool = False, stage_seconds: Mapping[str, float] | None = None) -> Fit:
    """The Fit of ``model`` from ``draws`` of the named ``sampler`` (chosen for ``reason``).

    ``stage_seconds``: wall times of the stages before this one, ``model`` (building the
    model) and ``run`` (the sampler's run), for the report's ``timings``.
    """
    started = time.perf_counter()
    loglik, deviances, at_mean = None, draws.stats.get("deviance"), None
    stored = model.has_rows and options.chains * options.draws * model.num_rows <= MAX_LOGLIK_VALUES
    data = struct = None
    if model.has_rows:
        with jax.enable_x64(True):
            data = model_data(model.design, model.priors)
            struct = structure(model.layout, model.family)
            if stored and deviances is None:
                loglik = pointwise_log_likelihood(draws.b, draws.aux, draws.effects, data, struct)
                deviances = -2.0 * loglik.sum(axis=-1)
            elif deviances is None:
                deviances = deviance(draws.b, draws.aux, draws.effects, data, struct)
            mean = lambda a: a.mean(axis=(0, 1))[None, None]  # noqa: E731
            at_mean = float(deviance(mean(draws.b), mean(draws.aux), [mean(e) for e in draws.effects], data,
                                     struct)[0, 0])
    loglik_done = time.perf_counter()
    stats = dict(draws.stats)
    if deviances is not None:
        stats["deviance"] = deviances
    info = FitInfo(model.spec, model.encoders, model.layout, model.family, model.priors.table(),
                   sampler_report(sampler, reason, seed, options, draws, stored), model.num_rows,
                   at_mean, prior_arguments=model.priors.arguments())
    posterior = posterior_dataset(model.layout, draws.b, draws.aux, draws.sd, draws.chol, draws.effects)
    replicates = None
    if posterior_predictive:
        replicates = posterior_predictive_draws(posterior, model.layout, model.family, model.design, seed)
    attrs = {"inference_library": "multilevel", "sampling_time": draws.info.sampling_seconds}

    def build_idata():
        pointwise = loglik
        if stored and pointwise is None:
            with jax.enable_x64(True):
                pointwise = pointwise_log_likelihood(draws.b, draws.aux, draws.effects, data, struct)
        return make_idata(model.layout, posterior, stats, pointwise, None if model.design is None else model.design.y,
                          attrs, model.columns, replicates)

    fitted = Fit(build_idata, info, posterior_xarray(model.layout, posterior), stats)
    built = time.perf_counter()
    if not draws.info.details.get("independent_draws"):      # exact independent draws need no diagnosis
        warn_convergence(fitted.diagnostics())
    ended = time.perf_counter()
    info.sampler_info["timings"] = fit_timings(draws, stage_seconds or {}, loglik_done - started,
                                               built - loglik_done, ended - built, ended - started)
    return fitted


def fit_timings(draws: Draws, stage_seconds: Mapping[str, float], loglik: float, idata: float,
                diagnostics: float, assembly: float) -> dict[str, float | None]:
    """The report's ``timings`` (see the module's docstring), in seconds."""
    sampler = draws.info
    warmup = sampler.warmup_seconds
    chains = sampler.sampling_seconds - (warmup or 0.0)
    run = stage_seconds.get("run")
    other = None if run is None else max(run - sampler.compile_seconds - sampler.sampling_seconds
                                         - sampler.draws_seconds, 0.0)
    model = stage_seconds.get("model")
    total = None if model is None or run is None else model + run + assembly
    return {"model": model, "compile": sampler.compile_seconds, "warmup": warmup, "sampling": chains,
            "draws": sampler.draws_seconds, "sampler_other": other, "log_likelihood": loglik,
            "posterior": idata, "diagnostics": diagnostics, "assembly": assembly, "total": total}


def sampler_report(sampler: str, reason: str, seed: int, options: Options, draws: Draws,
                   loglik_stored: bool) -> dict:
    """What ``fit.sampler_info`` reports: which sampler, why, its settings, timings and choices."""
    return {"sampler": sampler, "reason": reason, "chains": options.chains, "draws": options.draws,
            "warmup": options.warmup, "seed": seed, "centered": _json_ready(options.centered),
            "log_likelihood_stored": loglik_stored,
            "exact_group_effects": draws.info.exact_effects, "compile_seconds": draws.info.compile_seconds,
            "sampling_seconds": draws.info.sampling_seconds, **draws.info.details}


def _json_ready(centered):
    """The ``centered`` option as given (None, a bool or a dict by grouping factor), JSON-ready."""
    return {str(k): bool(v) for k, v in centered.items()} if isinstance(centered, Mapping) else centered
