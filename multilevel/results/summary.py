"""The summary table and the convergence check that follows every fit.

Columns: ``mean, sd, q{lo}, q50, q{hi}, mcse_mean, mcse_sd, ess_bulk, ess_tail,
r_hat, ess_per_sec``. Diagnostics are ArviZ's definitions (rank-normalised split
R-hat, bulk and tail ESS, Vehtari et al. 2021), computed for all parameters at
once by :mod:`.diagnostics`; ``ess_per_sec`` divides bulk ESS by the wall time
of all warmup and sampling iterations (compilation excluded).
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from numbers import Real

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import DataError
from ..model.layout import Layout
from .diagnostics import COLUMNS, diagnostics

#: Parameters per block of :func:`column_quantiles`.
QUANTILE_BLOCK = 1024

#: Thresholds of the convergence warning (Vehtari et al. 2021).
RHAT_MAX = 1.01
ESS_MIN = 400


class ConvergenceWarning(UserWarning):
    """The chains have not converged, or NUTS reported divergent transitions."""


def quantile_label(q: float) -> str:
    """The column name of the ``q`` quantile: ``q2.5`` for 0.025."""
    return f"q{100 * q:g}"


def check_prob(prob: object) -> float:
    """``prob`` as a float, or a DataError naming it when it is not a number in (0, 1)."""
    if isinstance(prob, bool) or not isinstance(prob, Real) or not 0 < prob < 1:
        raise DataError(f"prob must be between 0 and 1, exclusive (the probability of the central "
                        f"interval, e.g. 0.95), got {prob!r}")
    return float(prob)


def stacked_draws(posterior: xr.Dataset, layout: Layout, group_effects: bool) -> tuple[np.ndarray, list[str]]:
    """All parameters as one ``(chain, draw, K)`` array, with a row label for each of the K."""
    names = [n for n in layout.scalar_names() if n in posterior]
    if group_effects:
        names += [n for g in layout.groups for n in g.effect_names]
    columns, labels = [], []
    for name in names:
        values = posterior[name].values
        columns.append(values.reshape(values.shape[0], values.shape[1], -1))
        if values.ndim == 2:
            labels.append(name)
        else:
            dim = posterior[name].dims[2]
            labels.extend(f"{name}[{level}]" for level in posterior[name].coords[dim].values)
    return np.concatenate(columns, axis=2), labels


def column_quantiles(flat: np.ndarray, probs: list[float]) -> np.ndarray:
    """``np.quantile(flat, probs, axis=0)``, the same numbers: blocks of columns made
    contiguous and partitioned on every core (NumPy's partition releases the GIL; along
    axis 0 of a C-ordered array it is strided and runs on one core)."""
    num = flat.shape[1]
    out = np.empty((len(probs), num))

    def block(start: int) -> None:
        out[:, start:start + QUANTILE_BLOCK] = np.quantile(
            np.ascontiguousarray(flat[:, start:start + QUANTILE_BLOCK].T), probs, axis=1)

    starts = range(0, num, QUANTILE_BLOCK)
    with ThreadPoolExecutor(max_workers=max(1, min(len(starts), os.cpu_count() or 1))) as pool:
        list(pool.map(block, starts))
    return out


def remembered_diagnostics(values: np.ndarray, columns: tuple[str, ...], memo: dict | None = None,
                           wider: dict | None = None) -> dict[str, np.ndarray]:
    """The diagnostic ``columns`` of ``values`` (chain, draw, K), each computed once: read from
    ``memo`` (column -> array of K), else from the first K of ``wider`` (the memo of a
    stack that begins with these K parameters), else computed and kept in ``memo``."""
    memo = {} if memo is None else memo
    for name in columns:
        if name not in memo and wider is not None and name in wider:
            memo[name] = wider[name][:values.shape[2]]
    missing = tuple(name for name in columns if name not in memo)
    if missing:
        memo.update(diagnostics(values, missing))
    return {name: memo[name] for name in columns}


def summary_table(posterior: xr.Dataset, layout: Layout, seconds: float, prob: float = 0.95,
                  group_effects: bool = True, memo: dict | None = None, wider: dict | None = None) -> pd.DataFrame:
    """One row per parameter (per level for group effects), in layout order; the diagnostics
    as :func:`remembered_diagnostics` keeps them in ``memo`` (or finds them in ``wider``)."""
    prob = check_prob(prob)
    values, labels = stacked_draws(posterior, layout, group_effects)
    flat = values.reshape(-1, values.shape[2])
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    quantiles = column_quantiles(flat, [lo, 0.5, hi])
    table = pd.DataFrame({"mean": flat.mean(axis=0), "sd": flat.std(axis=0, ddof=1),
                          quantile_label(lo): quantiles[0], "q50": quantiles[1], quantile_label(hi): quantiles[2],
                          **remembered_diagnostics(values, COLUMNS, memo, wider)}, index=labels)
    table["ess_per_sec"] = table["ess_bulk"] / seconds if seconds > 0 else np.nan
    return table


def coda_table(posterior: xr.Dataset, layout: Layout, group_effects: bool = False, memo: dict | None = None,
               wider: dict | None = None) -> pd.DataFrame:
    """coda's ``summary.mcmc``: Mean, SD, Naive SE, Time-series SE and five quantiles.

    Time-series SE is the MCSE of the mean from the effective sample size (kept in ``memo``
    as :func:`remembered_diagnostics` keeps it).
    """
    values, labels = stacked_draws(posterior, layout, group_effects)
    flat = values.reshape(-1, values.shape[2])
    sd = flat.std(axis=0, ddof=1)
    table = pd.DataFrame({"Mean": flat.mean(axis=0), "SD": sd, "Naive SE": sd / np.sqrt(len(flat)),
                          "Time-series SE": remembered_diagnostics(values, ("mcse_mean",), memo, wider)["mcse_mean"]}, index=labels)
    probs = (0.025, 0.25, 0.5, 0.75, 0.975)
    for p, q in zip(probs, column_quantiles(flat, list(probs))):
        table[f"{100 * p:g}%"] = q
    return table


def check_table(posterior: xr.Dataset, layout: Layout, group_effects: bool, memo: dict | None = None,
                wider: dict | None = None) -> pd.DataFrame:
    """``r_hat`` and ``ess_bulk`` of every parameter, what :func:`convergence_messages` reads."""
    values, labels = stacked_draws(posterior, layout, group_effects)
    return pd.DataFrame(remembered_diagnostics(values, ("r_hat", "ess_bulk"), memo, wider), index=labels)


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
