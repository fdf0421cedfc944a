r"""Bayesian R² (Gelman, Goodrich, Gabry & Vehtari 2019) and LOO-R² (Vehtari et al.).

Both compare the variance of the expected responses :math:`\mu^{(s)}_i = E[y_i \mid \theta^{(s)}]`
at the fitted rows (the family's mean, group effects included, offsets and numbers of
trials as fitted) with the variance left over. Variances over the rows are R's ``var``
(divisor :math:`n - 1`), as brms and rstanarm compute them.

The expected responses are computed a block of draws at a time (at most
:data:`CHUNK_VALUES` draws × rows in memory), so a fit of many rows needs no
``draws × rows`` array.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import warnings
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import DataError
from ..model.families import Family
from .accessors import summarise
from .diagnostics import ess_mean
from .lazy import arviz

if TYPE_CHECKING:
    import arviz as az

#: Draws × rows of expected responses held in memory at once.
CHUNK_VALUES = 10_000_000

#: ``predict(index, dpar)``: the family's mean (or, with ``dpar``, that parameter's value)
#: at every fitted row for the stacked draws ``index``, shape ``(len(index), rows)``.
Predict = Callable[[np.ndarray, "str | None"], np.ndarray]


def draw_blocks(num_draws: int, num_rows: int) -> list[np.ndarray]:
    """Consecutive blocks of the draws ``0 .. num_draws - 1``, each of at most
    :data:`CHUNK_VALUES` values over ``num_rows`` rows (at least one draw)."""
    size = max(1, CHUNK_VALUES // max(num_rows, 1))
    return [np.arange(start, min(start + size, num_draws)) for start in range(0, num_draws, size)]


def bayes_r2(mu: np.ndarray, y: np.ndarray, residual_variance: np.ndarray | None = None) -> np.ndarray:
    r"""Bayesian R² of each draw from expected responses ``mu`` (draws, rows) and ``y`` (rows).

    Notes
    -----
    .. math:: R^2_s = \frac{V_i\, \mu^{(s)}_i}{V_i\, \mu^{(s)}_i + \sigma^2_{\mathrm{res}, s}}

    with :math:`V_i` the variance over rows and :math:`\sigma^2_{\mathrm{res}, s}` the
    ``residual_variance`` of the draw when given (for a Gaussian model, the expected
    residual variance :math:`\sigma_s^2`), else the variance of the residuals
    :math:`V_i (y_i - \mu^{(s)}_i)` (the "residual draws" version).
    """
    mu = np.asarray(mu, dtype=np.float64)
    explained = mu.var(axis=1, ddof=1)
    if residual_variance is None:
        residual_variance = (np.asarray(y, dtype=np.float64)[None, :] - mu).var(axis=1, ddof=1)
    return explained / (explained + residual_variance)


def fitted_bayes_r2(predict: Predict, y: np.ndarray, family: Family, num_draws: int,
                    se: np.ndarray | None = None, sigma: bool = True) -> np.ndarray:
    """Bayesian R² of every draw of a fit (see :meth:`~multilevel.results.fit.Fit.r2`): for a
    Gaussian family the residual variance of a draw is the mean of ``sigma²`` over the rows
    (``sigma²`` itself unless ``sigma`` has a formula), plus the mean of the known ``se²``
    (``y | se(s)``; with no ``sigma`` parameter, ``sigma=False``, that mean alone), for every
    other family the variance of the residuals ``y - mu``."""
    out = np.empty(num_draws)
    known = 0.0 if se is None else float(np.mean(np.square(se)))
    for index in draw_blocks(num_draws, len(y)):
        mu = predict(index, None)
        residual = None
        if family.name == "gaussian":
            residual = known + (np.mean(np.square(predict(index, "sigma")), axis=1) if sigma else 0.0)
        out[index] = bayes_r2(mu, y, residual)
    return out


def loo_r2(mu_loo: np.ndarray, y: np.ndarray, num_draws: int, seed: int = 0) -> np.ndarray:
    r"""LOO-R² from the leave-one-out expected responses ``mu_loo`` (rows): ``num_draws``
    Bayesian-bootstrap draws of :math:`1 - V(y - \mu_{\mathrm{loo}}) / V(y)`, clipped to [-1, 1].

    Notes
    -----
    Each draw weights the rows by Dirichlet(1, ..., 1) weights :math:`w` (normalised
    Exponential(1) draws, from ``seed``) and uses the weighted variance
    :math:`V_w(v) = \frac{n}{n-1} \left(\sum_i w_i v_i^2 - (\sum_i w_i v_i)^2\right)`,
    as brms's ``loo_R2`` (Vehtari's definition, from rstanarm).
    """
    y = np.asarray(y, dtype=np.float64)
    error = mu_loo - y
    n = len(y)
    rng = np.random.default_rng(seed)
    out = np.empty(num_draws)
    for index in draw_blocks(num_draws, n):
        weights = rng.exponential(1.0, (len(index), n))
        weights /= weights.sum(axis=1, keepdims=True)
        var_y = n / (n - 1) * (weights @ y ** 2 - (weights @ y) ** 2)
        var_error = n / (n - 1) * (weights @ error ** 2 - (weights @ error) ** 2)
        out[index] = 1 - var_error / var_y
    return np.clip(out, -1.0, 1.0)


def loo_expectation(predict: Predict, log_likelihood: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""The leave-one-out expectation of each row's expected response, and the Pareto k of
    each row, from the pointwise log-likelihood ``(chain, draw, rows)``.

    Notes
    -----
    :math:`\mu_{\mathrm{loo}, i} = \sum_s w_{i,s} \mu^{(s)}_i` with :math:`w_{i,\cdot}` the
    normalised Pareto-smoothed importance weights of the ratios :math:`1 / p(y_i \mid \theta^{(s)})`
    (ArviZ's ``psislw``, as loo's ``E_loo``). The relative efficiency passed to PSIS is the
    mean over rows of :math:`\mathrm{ESS}(p(y_i \mid \theta)) / S`, as loo's ``relative_eff``
    computes per row (ArviZ's PSIS takes one value).
    """
    num_chains, num_draws, num_rows = log_likelihood.shape
    stacked = log_likelihood.reshape(num_chains * num_draws, num_rows)
    log_weights, pareto_k = arviz().psislw(-stacked.T, relative_efficiency(log_likelihood))
    weights = np.exp(log_weights).T  # (draws, rows), each column sums to 1
    mu_loo = np.zeros(num_rows)
    for index in draw_blocks(len(stacked), num_rows):
        mu_loo += np.sum(weights[index] * predict(index, None), axis=0)
    return mu_loo, np.asarray(pareto_k)


def stored_log_likelihood(idata: az.InferenceData) -> np.ndarray:
    """The pointwise log-likelihood ``(chain, draw, rows)`` of a fit, or DataError when it has none."""
    if "log_likelihood" not in idata.groups():
        raise DataError("LOO-R² needs the pointwise log-likelihood, which this fit did not store (draws × rows "
                        "above multilevel.results.assemble.MAX_LOGLIK_VALUES): use fit.r2(), or refit with "
                        "fewer draws")
    return np.asarray(idata.log_likelihood["y"].values, dtype=np.float64)


def relative_efficiency(log_likelihood: np.ndarray) -> float:
    """The mean over rows of ESS / draws of the likelihood ``exp(log_likelihood)``, or 1
    for one chain (as ArviZ's ``loo``)."""
    num_chains, num_draws = log_likelihood.shape[:2]
    if num_chains == 1:
        return 1.0
    likelihood = np.exp(log_likelihood - log_likelihood.max(axis=(0, 1), keepdims=True))
    ess = ess_mean(likelihood)
    ess = np.where(np.isfinite(ess), ess, num_chains * num_draws)  # a constant likelihood
    return float(np.mean(ess) / (num_chains * num_draws))


def warn_pareto_k(pareto_k: np.ndarray, num_draws: int) -> None:
    """Warn, as ArviZ's ``loo``, when some rows' Pareto k make the LOO weights unreliable."""
    good_k = min(1 - 1 / np.log10(num_draws), 0.7)
    bad = int(np.sum(pareto_k > good_k))
    if bad:
        warnings.warn(f"LOO-R²: the Pareto k of {bad} of {len(pareto_k)} rows exceeds {good_k:.2f}: their "
                      "leave-one-out expectations are unreliable (see fit.loo())", UserWarning, stacklevel=3)


def summarise_r2(draws: np.ndarray, label: str, prob: float) -> pd.DataFrame:
    """One row ``label``: ``estimate``, ``error`` and the central ``prob`` interval (as brms)."""
    table = summarise(draws[:, None], prob).rename(columns={"mean": "estimate", "sd": "error"})
    return table.set_axis(pd.Index([label]))
