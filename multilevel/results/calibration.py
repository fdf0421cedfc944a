"""Simulation-based calibration on the user's own design (Talts, Betancourt, Simpson,
Vehtari & Gelman 2018): does the fit recover what the model says it should?

For s = 1..S: draw parameters θ_s from the priors and a response y_s from the model on
the user's rows (one draw of a prior-only fit with posterior predictive replicates),
fit the model to y_s, and rank each θ_s among ``L`` evenly thinned posterior draws.
If the priors, the likelihood and the sampler agree, every rank is uniform on
0..L; a sampler that misses part of the posterior, a wrong Jacobian, or priors that
differ between simulation and fit (``fit_priors=``) bend the histograms.

Uniformity is tested per parameter by a chi-square test on ``bins`` equal bins of the
ranks; ``p_value`` is reported per parameter, and the smallest, against the
Bonferroni threshold ``false_alarm / k`` over the k parameters, decides ``calibrated``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping, NamedTuple

import numpy as np
import pandas as pd

from ..errors import DataError
from ..formula.spec import Var

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Posterior draws each truth is ranked among (ranks 0..KEPT_DRAWS).
KEPT_DRAWS = 99
#: Bins of the ranks' chi-square test.
BINS = 10


class Calibration(NamedTuple):
    """What :func:`multilevel.sbc` returns.

    ``ranks``: one row per simulation fitted, one column per parameter; ``tests``: per
    parameter the chi-square statistic and its p-value; ``calibrated``: whether every
    p-value exceeds ``false_alarm / k``; ``figure``: the rank histograms with the band
    that 99% of a uniform bin's counts fall in; ``rejected``: simulations whose data the
    library refused (a constant response, say), left out; ``warned``: fits that raised
    a ConvergenceWarning."""

    ranks: pd.DataFrame
    tests: pd.DataFrame
    calibrated: bool
    figure: Figure
    rejected: int
    warned: int


def simulated_response(frame: pd.DataFrame, spec, replicate: np.ndarray, categories) -> pd.DataFrame:
    """``frame`` (a copy) with its response replaced by ``replicate`` (the successes of a
    binomial response, category numbers of an ordinal one)."""
    successes = spec.successes
    if not isinstance(successes, Var):
        raise DataError(f"sbc replaces the response with simulated values, so the response must be a column "
                        f"(or cbind(s, f), s | trials(n) of columns), not {spec.response}: compute it as a column")
    out = frame.copy()
    if spec.is_cbind:
        failures = spec.response.args[1]
        if isinstance(failures, Var):
            out[failures.name] = frame[successes.name] + frame[failures.name] - replicate
    if categories is not None:
        column = frame[successes.name]
        labels = list(column.cat.categories) if isinstance(column.dtype, pd.CategoricalDtype) else None
        out[successes.name] = (pd.Categorical.from_codes(replicate.astype(int) - 1, categories=labels,
                                                         ordered=column.cat.ordered)
                               if labels is not None else replicate.astype(int))
    else:
        out[successes.name] = replicate
    return out


def rank_draws(truth: Mapping[str, float], posterior, names: list[str]) -> dict[str, int]:
    """The rank of each true value among ``KEPT_DRAWS`` evenly spaced posterior draws."""
    out = {}
    for name in names:
        values = np.asarray(posterior[name]).reshape(-1)
        keep = np.round(np.linspace(0, len(values) - 1, KEPT_DRAWS)).astype(int)
        out[name] = int(np.sum(values[keep] < truth[name]))
    return out


def uniformity(ranks: pd.DataFrame, false_alarm: float) -> tuple[pd.DataFrame, bool]:
    """Chi-square tests of the ranks' uniformity over ``BINS`` bins, per parameter."""
    from scipy.stats import chisquare  # scipy.stats, imported at first use
    rows = []
    for name in ranks.columns:
        counts = np.bincount(np.minimum(ranks[name].to_numpy() * BINS // (KEPT_DRAWS + 1), BINS - 1),
                             minlength=BINS)
        statistic, p_value = chisquare(counts)
        rows.append({"parameter": name, "chi2": float(statistic), "p_value": float(p_value)})
    tests = pd.DataFrame(rows).set_index("parameter")
    return tests, bool((tests["p_value"] > false_alarm / max(len(tests), 1)).all())


def rank_figure(ranks: pd.DataFrame) -> Figure:
    """One rank histogram per parameter, with the 99% band of a uniform bin's count."""
    from scipy import stats  # scipy.stats and matplotlib, imported at first use

    from .plots import new_figure
    columns = list(ranks.columns)
    cols = min(3, len(columns))
    rows = -(-len(columns) // cols)
    figure = new_figure(4 * cols, 2.6 * rows)
    low, high = stats.binom.ppf([0.005, 0.995], len(ranks), 1 / BINS)
    for k, name in enumerate(columns):
        ax = figure.add_subplot(rows, cols, k + 1)
        ax.axhspan(low, high, color="0.85")
        ax.hist(ranks[name], bins=np.linspace(0, KEPT_DRAWS + 1, BINS + 1), color="C0", edgecolor="white")
        ax.set_title(name, fontsize="small")
        ax.set_yticks([])
    return figure


def run_sbc(prior_fit, fit_once: Callable[[pd.DataFrame, int], object], frame: pd.DataFrame, spec,
            categories, names: list[str], num_simulations: int, false_alarm: float,
            progress: Callable | None = None) -> Calibration:
    """The loop of the module notes: ``prior_fit`` holds one chain of ``num_simulations``
    prior draws with replicates; ``fit_once(data, s)`` fits simulation s and returns the
    fit and whether it warned, or raises DataError for data the library refuses."""
    posterior = prior_fit.idata.posterior
    replicates = np.asarray(prior_fit.idata.posterior_predictive["y"]).reshape(num_simulations, -1)
    simulations = range(num_simulations) if progress is None else progress(range(num_simulations))
    ranks, rejected, warned = [], 0, 0
    for s in simulations:
        truth = {name: float(np.asarray(posterior[name]).reshape(-1)[s]) for name in names}
        try:
            fitted, warning = fit_once(simulated_response(frame, spec, replicates[s], categories), s)
        except DataError:
            rejected += 1
            continue
        warned += warning
        ranks.append(rank_draws(truth, fitted.idata.posterior, names))
    if not ranks:
        raise DataError("the library refused the data of every simulation (see ml.fit's errors on one of them): "
                        "check that the priors give responses the family takes")
    ranks = pd.DataFrame(ranks, columns=names)
    tests, calibrated = uniformity(ranks, false_alarm)
    return Calibration(ranks, tests, calibrated, rank_figure(ranks), rejected, warned)
