r"""K-fold cross-validation: refit without each fold, score its rows (brms's ``kfold``).

PSIS-LOO reweights one posterior to approximate leaving each row out; when a row
moves the posterior a lot (Pareto k above 0.7: influential rows, few rows per
group effect) the approximation fails, and when the question is how well the
model predicts a new group no reweighting answers it. K-fold cross-validation
refits instead. The fitted rows are split into folds D_1..D_K; for each k the
same model (formula, family, priors, sampler, its settings and seed) is fitted
to the other rows, giving draws θ_s^{(-k)}, s = 1..S, and each held-out row
i ∈ D_k is scored by its log predictive density

.. math::
   \mathrm{elpd}_i = \log \frac1S \sum_{s=1}^S p(y_i \mid θ_s^{(-k)})
                   = \operatorname{logsumexp}_s \log p(y_i \mid θ_s^{(-k)}) - \log S .

Then ``elpd_kfold = Σ_i elpd_i``, its standard error ``se = sqrt(n var(elpd_i))``
(variance with divisor n, as ArviZ's ``loo``), and ``p_kfold = lppd - elpd_kfold``
with ``lppd = Σ_i log (1/S) Σ_s p(y_i | θ_s)`` of the full fit (as brms): how much
better the model predicts the rows it saw than rows it did not.

A held-out row whose group level has no training row (every row, in
leave-one-group-out) gets, per draw, an effect drawn from the fitted population
``N(0, diag(sd_s) R_s diag(sd_s))`` (brms's ``sample_new_levels = "uncertainty"``,
and ``fit.predict(new_groups="population")``): it is scored as a new group.

Same model means the same priors, at full precision: the ``priors=`` recorded in
``fit.info.prior_arguments`` names every parameter's prior as the fit resolved it,
the data-scaled defaults included, so that a fold's refit does not rescale its
defaults to its own rows (brms's ``update(newdata=)`` keeps the fit's priors too).

Each refit is ``ml.fit`` itself (passed in as ``refit``: results do not import
the api). Compiled programs are cached by model structure and array shapes, so
folds of equal sizes and levels reuse them, and folds of other sizes compile
again (K random folds have at most two sizes).
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike
from scipy.special import logsumexp
from tqdm.auto import tqdm

from ..design import build_design
from ..errors import DataError, MultilevelError
from ..model.prior_table import base_class
from .lazy import arviz
from .posterior import stack_draws
from .predict import design_draws
from .summary import ConvergenceWarning

#: Rows of the full fit's log-likelihood computed at once when it was not stored (draws × rows values).
CHUNK_VALUES = 5_000_000


@dataclass(frozen=True)
class Folds:
    """Which fold each fitted row is held out in: ``index[i]`` in ``0..K-1``; ``labels[k]``
    names fold k (1..K, the group level, or the label given); ``how`` says how they were made."""

    index: np.ndarray
    labels: tuple
    how: str

    @property
    def num_folds(self) -> int:
        return len(self.labels)


class KFold(arviz().ELPDData):
    """The result of :meth:`Fit.kfold`: ArviZ's ELPDData (a pandas Series) with
    ``elpd_kfold``, ``se``, ``p_kfold``, ``n_samples`` (draws per refit),
    ``n_data_points``, ``warning`` (some refit had convergence problems), ``kfold_i``
    (the elpd of each row), ``folds`` (per row, the label of its fold), ``n_folds``,
    ``how`` and ``scale`` (``"log"``). ``ml.compare(..., ic="kfold")`` ranks them."""

    def __str__(self) -> str:
        kfoldic_se = 2 * self["se"]
        lines = [f"Based on {self['n_folds']}-fold cross-validation ({self['how']}): {self['n_data_points']} "
                 f"observations, {self['n_samples']} draws per refit.", "",
                 f"{'':10s} {'Estimate':>9s} {'SE':>7s}",
                 f"{'elpd_kfold':10s} {self['elpd_kfold']:9.2f} {self['se']:7.2f}",
                 f"{'p_kfold':10s} {self['p_kfold']:9.2f}",
                 f"{'kfoldic':10s} {-2 * self['elpd_kfold']:9.2f} {kfoldic_se:7.2f}"]
        if self["warning"]:
            lines += ["", "Some refits had convergence problems (see the warnings): their elpd is less reliable."]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.__str__()


def kfold(fit, data: pd.DataFrame, *, refit: Callable, K: int = 10, group: str | None = None,
          folds: ArrayLike | None = None, seed: int = 0, progress: bool | None = None) -> KFold:
    """K-fold cross-validation of ``fit`` (see :meth:`Fit.kfold` and the module notes).

    ``refit(spec, rows, **settings)`` fits the model to training rows: ``ml.fit``.
    """
    info = fit.info
    _check_seed(seed)
    settings = refit_settings(info.sampler_info)
    priors = refit_priors(info)
    rows, kept = fitted_rows(fit, data)
    plan = make_folds(rows, K=K, group=group, folds=folds, seed=seed, kept=kept, num_given=len(data))
    if progress is None:
        progress = sys.stderr.isatty()
    elpd_i = np.empty(len(rows))
    num_draws, troubled = None, []
    for k in tqdm(range(plan.num_folds), desc="kfold", disable=not progress):
        held = plan.index == k
        label = plan.labels[k]
        with warnings.catch_warnings(record=True) as caught:
            try:
                fold_fit = refit(info.spec, rows.iloc[~held], family=info.family, priors=priors, na_action="error",
                                 progress=False, **settings)
                loglik = log_likelihood_draws(fold_fit.idata.posterior, fold_fit.info, rows.iloc[held], seed=seed)
            except MultilevelError as exc:
                raise type(exc)(f"fold {label!r} ({int((~held).sum())} training rows, {int(held.sum())} held out): "
                                f"{exc}") from exc
        for w in caught:  # the refit's warnings, naming the fold
            warnings.warn(f"fold {label!r}: {w.message}", w.category, stacklevel=3)
        if fold_fit.diagnostics():
            troubled.append(label)
        num_draws = loglik.shape[0]
        elpd_i[held] = logsumexp(loglik, axis=0) - np.log(num_draws)
    if troubled:
        warnings.warn(f"the refits of fold(s) {', '.join(map(repr, troubled))} had convergence problems "
                      "(see fit.diagnostics()): their held-out elpd is less reliable; fit the model with more "
                      "draws= or warmup=",
                      ConvergenceWarning, stacklevel=3)
    elpd = float(elpd_i.sum())
    lppd = float(full_lppd(fit, rows).sum())
    return KFold(
        data=[elpd, _se(elpd_i), lppd - elpd, num_draws, len(rows), bool(troubled), elpd_i,
              np.asarray(plan.labels, dtype=object)[plan.index],
              plan.num_folds, plan.how, "log"],
        index=["elpd_kfold", "se", "p_kfold", "n_samples", "n_data_points", "warning", "kfold_i", "folds",
               "n_folds", "how", "scale"])


def _se(pointwise: np.ndarray) -> float:
    return float(np.sqrt(len(pointwise) * np.var(pointwise)))


def _check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed must be a non-negative whole number, got {seed!r}")


def refit_settings(report: Mapping) -> dict:
    """The sampler settings of the fit (``fit.sampler_info``) as ``ml.fit`` takes them."""
    if report.get("sampler") == "prior":
        raise DataError("this fit drew from the priors (prior_only=True): there is no posterior to "
                        "cross-validate; fit the model to the data first")
    return {"sampler": report["sampler"], "chains": report["chains"], "draws": report["draws"],
            "warmup": report["warmup"], "seed": report["seed"],
            "target_accept": report.get("target_accept", 0.8), "max_treedepth": report.get("max_treedepth", 10),
            "centered": report.get("centered")}


def refit_priors(info) -> dict[str, str]:
    """The ``priors=`` that gives each refit the fit's priors (see the module notes).

    A fit saved before fits recorded them has only the display table, whose numbers are
    rounded to 4 significant digits: those are used, with a warning.
    """
    if info.prior_arguments is not None:
        return dict(info.prior_arguments)
    warnings.warn("this fit was saved before fits recorded their priors at full precision: the refits use "
                  "the priors of fit.priors, whose numbers are rounded to 4 significant digits; refit and "
                  "save again for exactly the same priors", UserWarning, stacklevel=4)
    return {row["parameter"]: row["prior"] for row in info.priors.to_dict(orient="records")
            if not (str(row["prior"]).startswith("InverseWishart") and base_class(row["class"]) == "sd")}


def fitted_rows(fit, data: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows of ``data`` the fit used (those without missing values in the formula's
    columns) and their positions in ``data``, after checking that they are the fitted rows:
    as many, with the same response."""
    info = fit.info
    remedy = "pass the data frame the model was fitted to"
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"kfold refits the model to subsets of its rows: {remedy} (a pandas DataFrame), "
                        f"got {type(data).__module__}.{type(data).__name__}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            design = build_design(info.spec, data, na_action="drop", encoders=info.encoders, with_response=True)
    except DataError as exc:
        raise DataError(f"{exc}; kfold needs the data the model was fitted to: {remedy}") from None
    if design.num_rows != info.num_rows:
        raise DataError(f"data has {design.num_rows} rows without missing values in the formula's columns, but "
                        f"the fit used {info.num_rows}: {remedy}")
    if "observed_data" in fit.idata.groups():
        fitted = np.asarray(fit.idata.observed_data["y"].values, dtype=np.float64)
        differ = ~np.isclose(design.y, fitted, rtol=1e-12, atol=0.0)
        if differ.any():
            shown = ", ".join(map(repr, list(design.row_index[differ][:5])))
            raise DataError(f"the response of data differs from the fitted response in {int(differ.sum())} rows "
                            f"(index {shown}): {remedy}, in the same row order")
    return data.iloc[design.kept_rows], np.asarray(design.kept_rows)


def make_folds(rows: pd.DataFrame, *, K: int = 10, group: str | None = None, folds: ArrayLike | None = None,
               seed: int = 0, kept: np.ndarray | None = None, num_given: int | None = None) -> Folds:
    """The folds of the fitted ``rows``: K random folds of sizes differing by at most one
    (a random permutation of ``0..n-1 mod K``, from ``seed``), one per level of the column
    ``group``, or one per distinct label of ``folds``, given per fitted row or per row of
    the data passed (``num_given`` rows, of which the fitted ones are at positions ``kept``)."""
    n = len(rows)
    if group is not None and folds is not None:
        raise DataError("give group= (leave one group out) or folds= (fold labels per row), not both")
    if group is not None:
        if not isinstance(group, str) or group not in rows.columns:
            raise DataError(f"group={group!r} is not a column of data; its columns are "
                            f"{', '.join(map(repr, map(str, rows.columns)))}")
        return _labelled(rows[group].to_numpy(), f"leave-one-group-out by {group}", f"group column {group!r}")
    if folds is not None:
        labels = np.asarray(folds)
        if labels.ndim != 1 or len(labels) not in (n, num_given):
            also = f" or per fitted row ({n})" if num_given not in (None, n) else ""
            raise DataError(f"folds= needs one fold label per row of data ({num_given or n}){also}, "
                            f"got shape {labels.shape}")
        if len(labels) != n:
            labels = labels[kept]
        return _labelled(labels, "folds given", "folds=")
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or not 2 <= K <= n:
        raise DataError(f"K must be a whole number from 2 to the number of fitted rows ({n}), got {K!r}: "
                        "K=10 is usual, K equal to the rows is leave-one-out; or pass group= to leave out "
                        "whole groups")
    index = np.random.default_rng(seed).permutation(np.arange(n) % K)
    return Folds(index, tuple(range(1, K + 1)), f"{K} random folds")


def _labelled(labels: np.ndarray, how: str, what: str) -> Folds:
    """One fold per distinct label, in sorted order."""
    missing = pd.isna(labels)
    if missing.any():
        raise DataError(f"{what} has missing values in {int(missing.sum())} fitted rows: every row needs a fold")
    codes, uniques = pd.factorize(labels, sort=True)
    if len(uniques) < 2:
        raise DataError(f"{what} has a single value ({uniques[0]!r}) in the fitted rows: cross-validation "
                        "needs at least two folds")
    return Folds(codes.astype(np.int64), tuple(uniques.tolist()), how)


def log_likelihood_draws(posterior: xr.Dataset, info, rows: pd.DataFrame, *, new_groups: str = "population",
                         seed: int = 0) -> np.ndarray:
    """``log p(y_i | θ_s)`` for every draw s and row i of ``rows`` (which have the response):
    shape ``(chain * draw, rows)``.

    The design is built with the fit's encoders (``info``: a :class:`FitInfo`), the linear
    predictors and the family's parameters come from :func:`design_draws` as for
    predictions, and group levels not seen in fitting are handled as ``new_groups`` says
    (``"population"``: an effect drawn from the fitted population per draw, from ``seed``).
    """
    design = build_design(info.spec, rows, na_action="error", encoders=info.encoders, with_response=True)
    problem = info.family.support_problem(design.y, design.trials)
    if problem is not None and np.any(problem[0]):
        shown = ", ".join(map(repr, list(design.row_index[np.asarray(problem[0])][:5])))
        raise DataError(f"the response {design.response} must be {problem[1]} for the {info.family.name} family; "
                        f"rows {shown} are not")
    return design_draws(posterior, info.layout, info.family, design, kind="log_likelihood", new_groups=new_groups,
                        seed=seed)


def full_lppd(fit, rows: pd.DataFrame) -> np.ndarray:
    """``log (1/S) Σ_s p(y_i | θ_s)`` of every fitted row under the full fit: from the stored
    log-likelihood, or computed from ``rows`` in chunks when the fit did not store it."""
    if "log_likelihood" in fit.idata.groups():
        loglik = stack_draws(fit.idata.log_likelihood, "y")
        return logsumexp(loglik, axis=0) - np.log(loglik.shape[0])
    posterior = fit.idata.posterior
    num_draws = posterior.sizes["chain"] * posterior.sizes["draw"]
    step = max(1, CHUNK_VALUES // num_draws)
    out = []
    for start in range(0, len(rows), step):
        loglik = log_likelihood_draws(posterior, fit.info, rows.iloc[start:start + step], new_groups="error")
        out.append(logsumexp(loglik, axis=0) - np.log(num_draws))
    return np.concatenate(out)


def compare_kfold(results: Mapping[str, KFold]) -> pd.DataFrame:
    """Rank K-fold results of the same rows, best first (as brms's ``loo_compare``).

    Columns ``rank``, ``elpd_kfold``, ``p_kfold``, ``elpd_diff`` (the best's elpd minus
    this one's: 0 for the best, as ArviZ's table), ``se``, ``dse`` (the standard error of
    the difference, ``sqrt(n var(kfold_i(best) - kfold_i(this)))``) and ``warning``.
    The difference is paired row by row, so the fits should share their folds (same
    ``K`` and ``seed``, the same ``group``, or the same ``folds``); a warning says when not.
    """
    bad = [name for name, r in results.items() if not isinstance(r, KFold)]
    if bad:
        raise DataError(f"ic='kfold' compares the results of fit.kfold(data): {', '.join(map(repr, bad))} "
                        "are not; pass {name: fit.kfold(data, K=10)}")
    sizes = {int(r["n_data_points"]) for r in results.values()}
    if len(sizes) > 1:
        raise DataError(f"the K-fold results are of different numbers of rows ({sorted(sizes)}): they compare "
                        "models of the same data only")
    first = next(iter(results.values()))
    if any(not np.array_equal(r["folds"], first["folds"]) for r in results.values()):
        warnings.warn("the K-fold results used different folds: their differences then include the noise of the "
                      "fold split; use the same K and seed (or group=, or folds=) for every model", UserWarning,
                      stacklevel=3)
    order = sorted(results, key=lambda name: -results[name]["elpd_kfold"])
    best = np.asarray(results[order[0]]["kfold_i"], dtype=np.float64)
    rows = {}
    for rank, name in enumerate(order):
        r = results[name]
        diff = best - np.asarray(r["kfold_i"], dtype=np.float64)
        rows[name] = {"rank": rank, "elpd_kfold": float(r["elpd_kfold"]), "p_kfold": float(r["p_kfold"]),
                      "elpd_diff": float(diff.sum()), "se": float(r["se"]), "dse": _se(diff),
                      "warning": bool(r["warning"])}
    return pd.DataFrame.from_dict(rows, orient="index")
