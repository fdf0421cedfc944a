"""The summary table and the convergence check that follows every fit.

Columns: ``mean, sd, q{lo}, q50, q{hi}, mcse_mean, mcse_sd, ess_bulk, ess_tail,
r_hat, ess_per_sec``. Diagnostics are ArviZ's (rank-normalised split R-hat,
bulk and tail ESS, Vehtari et al. 2021); ``ess_per_sec`` divides bulk ESS by the
wall time of all warmup and sampling iterations (compilation excluded).
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from ..model.layout import Layout

#: Thresholds of the convergence warning (Vehtari et al. 2021).
RHAT_MAX = 1.01
ESS_MIN = 400


class ConvergenceWarning(UserWarning):
    """The chains have not converged, or NUTS reported divergent transitions."""


def _label(q: float) -> str:
    return f"q{100 * q:g}"


def summary_table(posterior: xr.Dataset, layout: Layout, seconds: float, prob: float = 0.95,
                  group_effects: bool = True) -> pd.DataFrame:
    """One row per parameter (per level for group effects), in layout order."""
    if not 0 < prob < 1:
        raise ValueError(f"prob must be between 0 and 1, got {prob}")
    names = [n for n in layout.scalar_names() if n in posterior]
    if group_effects:
        names += [n for g in layout.groups for n in g.effect_names]
    if not names:
        return pd.DataFrame()
    subset = posterior[names]
    diag = az.summary(subset, kind="diagnostics", round_to="none")
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    rows = []
    for name in names:
        values = subset[name].values
        flat = values.reshape(-1, *values.shape[2:])
        quantiles = np.quantile(flat, [lo, 0.5, hi], axis=0)
        means, sds = flat.mean(axis=0), flat.std(axis=0, ddof=1)
        if flat.ndim == 1:
            rows.append((name, means, sds, *quantiles))
        else:
            levels = subset[name].coords[subset[name].dims[2]].values
            for i, level in enumerate(levels):
                rows.append((f"{name}[{level}]", means[i], sds[i], *quantiles[:, i]))
    table = pd.DataFrame(rows, columns=["name", "mean", "sd", _label(lo), "q50", _label(hi)]).set_index("name")
    table.index.name = None
    table = table.join(diag[["mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat"]])
    table["ess_per_sec"] = table["ess_bulk"] / seconds if seconds > 0 else np.nan
    return table


def coda_table(posterior: xr.Dataset, layout: Layout, group_effects: bool = False) -> pd.DataFrame:
    """coda's ``summary.mcmc``: Mean, SD, Naive SE, Time-series SE and five quantiles.

    Time-series SE is the MCSE of the mean from the effective sample size.
    """
    table = summary_table(posterior, layout, 1.0, 0.95, group_effects)
    names = [n for n in layout.scalar_names() if n in posterior]
    if group_effects:
        names += [n for g in layout.groups for n in g.effect_names]
    n = posterior.sizes["chain"] * posterior.sizes["draw"]
    quant = []
    for name in names:
        flat = posterior[name].values.reshape(n, -1)
        quant.extend(np.quantile(flat, [0.025, 0.25, 0.5, 0.75, 0.975], axis=0).T)
    out = pd.DataFrame({
        "Mean": table["mean"], "SD": table["sd"], "Naive SE": table["sd"] / np.sqrt(n),
        "Time-series SE": table["mcse_mean"],
    }, index=table.index)
    out[["2.5%", "25%", "50%", "75%", "97.5%"]] = np.array(quant)
    return out


def convergence_messages(table: pd.DataFrame, divergences: int, num_draws: int) -> list[str]:
    """Human-readable problems with a fit, each with the remedy to try."""
    messages = []
    bad = table[(table["r_hat"] > RHAT_MAX) | (table["ess_bulk"] < ESS_MIN)]
    if len(bad):
        shown = ", ".join(f"{name} (R-hat {row.r_hat:.3f}, bulk ESS {row.ess_bulk:.0f})"
                          for name, row in bad.head(10).iterrows())
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        messages.append(f"{len(bad)} parameters have R-hat > {RHAT_MAX} or bulk ESS < {ESS_MIN}: "
                        f"{shown}{more}. Run longer chains (draws=, warmup=), or try another sampler.")
    if divergences:
        messages.append(f"{divergences} divergent transitions after warmup (of {num_draws} draws): "
                        "the posterior may be biased. Raise target_accept (e.g. 0.95), "
                        "try centered= for the group terms, or sampler='collapsed' for a Gaussian model.")
    return messages


def warn_convergence(messages: list[str]) -> None:
    for message in messages:
        warnings.warn(message, ConvergenceWarning, stacklevel=3)
