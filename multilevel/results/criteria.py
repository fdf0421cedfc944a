r"""Information criteria (DIC, WAIC, PSIS-LOO) and the comparison of fits.

DIC as JAGS and Spiegelhalter et al. (2002) define it, with the deviance
``D(θ) = -2 Σ_i log p(y_i | θ)`` conditional on the group effects:

.. math:: \mathrm{DIC} = D(\bar θ) + 2 p_D, \qquad p_D = \bar D - D(\bar θ),

``\bar D`` the posterior mean deviance and ``D(\bar θ)`` the deviance at the
posterior mean of every parameter (group effects included), computed when the
model is fitted. Lower is better. WAIC and LOO come from ArviZ, on the
pointwise log-likelihood stored in the fit, on ArviZ's log scale (``elpd``,
higher is better, with standard errors).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import warnings
from dataclasses import dataclass
from typing import Mapping

import pandas as pd

from ..errors import DataError
from .lazy import arviz

if TYPE_CHECKING:
    import arviz as az

CRITERIA = ("dic", "waic", "loo", "kfold")


@dataclass(frozen=True)
class DIC:
    """The deviance information criterion and its parts."""

    dic: float
    p_d: float
    d_bar: float
    d_hat: float

    def __str__(self) -> str:
        return (f"DIC {self.dic:.1f} (effective parameters p_D {self.p_d:.1f}; mean deviance "
                f"{self.d_bar:.1f}; deviance at the posterior mean {self.d_hat:.1f})")


def dic(idata: az.InferenceData, deviance_at_mean: float | None) -> DIC:
    """DIC from the per-draw deviances in ``sample_stats`` and the deviance at the posterior mean."""
    if "deviance" not in idata.sample_stats or deviance_at_mean is None:
        raise DataError("this fit has no deviances (a fit of a Dask DataFrame keeps no rows): "
                        "DIC needs the data; fit a pandas DataFrame")
    d_bar = float(idata.sample_stats["deviance"].mean())
    d_hat = float(deviance_at_mean)
    p_d = d_bar - d_hat
    return DIC(d_hat + 2 * p_d, p_d, d_bar, d_hat)


def _check_log_likelihood(idata: az.InferenceData, what: str) -> None:
    if "log_likelihood" not in idata.groups():
        raise DataError(f"{what} needs the pointwise log-likelihood, which this fit did not store "
                        "(draws × rows above multilevel.results.assemble.MAX_LOGLIK_VALUES, or a Dask "
                        "DataFrame); use fit.dic(), or refit with fewer draws")


def waic(idata: az.InferenceData) -> az.ELPDData:
    """WAIC by ArviZ (elpd_waic, p_waic, se and the pointwise values)."""
    _check_log_likelihood(idata, "WAIC")
    return arviz().waic(idata, pointwise=True)


def loo(idata: az.InferenceData) -> az.ELPDData:
    """PSIS-LOO by ArviZ; warns when Pareto k estimates exceed ArviZ's ``good_k`` (0.7 from
    2,200 draws on), then names the remedy: K-fold cross-validation."""
    _check_log_likelihood(idata, "LOO")
    result = arviz().loo(idata, pointwise=True)
    bad = int((result["pareto_k"] > result["good_k"]).sum())
    if bad:
        warnings.warn(f"PSIS-LOO is unreliable for {bad} of {result['n_data_points']} rows (Pareto k above "
                      f"{result['good_k']:.2f}): cross-validate by refitting instead, fit.kfold(data, K=10) "
                      "(or group='g' to leave out whole groups of a grouping column g)", UserWarning, stacklevel=3)
    return result


def compare(fits: Mapping[str, object], ic: str = "loo") -> pd.DataFrame:
    """Rank fits of the same data by an information criterion, best first.

    Parameters
    ----------
    fits
        ``{name: fit}``; at least two fits of the same response rows.
    ic
        ``"loo"`` or ``"waic"`` (ArviZ's table: ``rank``, ``elpd_<ic>``, ``p_<ic>``,
        ``elpd_diff`` to the best with its standard error ``dse``, ``se``,
        ``weight``, ``warning``), or ``"dic"`` (``rank``, ``dic``, ``p_d``,
        ``d_bar``, ``d_hat`` and ``dic_diff`` to the best; DIC has no standard error).
        ``"kfold"`` takes ``{name: fit.kfold(data)}`` instead of fits (``rank``,
        ``elpd_kfold``, ``p_kfold``, ``elpd_diff``, ``se``, ``dse``, ``warning``; see
        :func:`.kfold.compare_kfold`).
    """
    if ic not in CRITERIA:
        raise DataError(f"ic must be one of {', '.join(CRITERIA)}, got {ic!r}")
    if not isinstance(fits, Mapping) or len(fits) < 2:
        raise DataError("compare needs a dict of at least two fits, {name: fit}")
    from .kfold import KFold, compare_kfold
    if ic == "kfold":
        return compare_kfold(fits)
    kfolds = [name for name, fit in fits.items() if isinstance(fit, KFold)]
    if kfolds:
        raise DataError(f"{', '.join(map(repr, kfolds))} are K-fold results: compare them with ic='kfold'")
    rows = {fit.info.num_rows for fit in fits.values()}
    if len(rows) > 1:
        raise DataError(f"the fits are of different numbers of rows ({sorted(rows)}): criteria "
                        "compare models of the same data only")
    if ic == "dic":
        table = pd.DataFrame({name: vars(fit.dic()) for name, fit in fits.items()}).T
        table = table.sort_values("dic")
        table.insert(0, "rank", range(len(table)))
        table["dic_diff"] = table["dic"] - table["dic"].iloc[0]
        return table
    for name, fit in fits.items():
        _check_log_likelihood(fit.idata, f"{ic.upper()} of {name!r}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*scale is now log by default.*")
        return arviz().compare({name: fit.idata for name, fit in fits.items()}, ic=ic)
