"""Posterior predictive checks by group and LOO-PIT: bayesplot's ``ppc_bars_grouped``,
``ppc_stat_grouped``, ``ppc_dens_overlay_grouped`` and ``ppc_loo_pit_overlay``.

As in :mod:`.plots`, every function takes plain values (the response, replicates,
the group of each row) and returns a new Figure on its own Agg canvas.

A grouped check draws one panel per level of a column, each comparing the rows of
that level with the same rows of every replicate; the levels are capped at
:data:`MAX_PANELS` (past it the panels are too small to read). LOO-PIT is the
probability integral transform of each observation under its leave-one-out
predictive distribution, :math:`\\mathrm{PIT}_i = \\sum_s w_{is}\\, 1[y^{rep}_{is} \\le y_i]`
with the Pareto-smoothed importance weights :math:`w_{is}` of the pointwise
log-likelihood; for a well-calibrated continuous model the PITs are uniform. ArviZ
computes and draws it (:func:`arviz.plot_loo_pit`: the PITs' density against those
of uniform samples of the same size).
"""

from __future__ import annotations

from typing import Callable

import arviz as az
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ..errors import DataError
from .plots import (_bandwidth, _density, _grid, _limits, _level_text, bar_values, draw_ppc_bars,
                    draw_ppc_stat, new_figure, statistic)

#: Most levels a grouped check draws, one panel each.
MAX_PANELS = 16
#: The kinds of check that take a group.
GROUPED_KINDS = ("density", "bars", "stat")


def group_levels(groups: np.ndarray, group: str) -> np.ndarray:
    """The sorted levels of ``groups`` (a column's value per fitted row); a DataError past MAX_PANELS."""
    levels = np.unique(groups)
    if len(levels) > MAX_PANELS:
        raise DataError(f"group={group!r} has {len(levels)} levels, more panels than can be read (at most "
                        f"{MAX_PANELS}): group by a column with fewer levels, or check without group=")
    return levels


def plot_ppc_grouped(y: np.ndarray, replicates: np.ndarray, groups: np.ndarray, *, kind: str, group: str,
                     response: str, stat: str | Callable[[np.ndarray], float] = "mean") -> Figure:
    """One panel per level of ``groups`` (the level of each row of ``y``): the check ``kind``
    (``"density"``, ``"bars"`` or ``"stat"``) of that level's rows against the same rows of
    the replicates (``(draws, rows)``).

    Bars share the values of the whole response (so panels compare); densities share the
    grid over y's range widened by a quarter on each side, and each panel's bandwidth is
    Silverman's rule on its observed rows.
    """
    if kind not in GROUPED_KINDS:
        raise DataError(f"group= takes kind {', '.join(map(repr, GROUPED_KINDS))}, not {kind!r}")
    y, replicates, groups = np.asarray(y), np.asarray(replicates), np.asarray(groups)
    levels = group_levels(groups, group)
    name, function = statistic(stat) if kind == "stat" else (None, None)
    values = bar_values(y, replicates) if kind == "bars" else None
    columns = min(4, len(levels))
    rows = -(-len(levels) // columns)
    figure = new_figure(3.2 * columns + 0.8, 2.6 * rows + 0.9)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    p_values = []
    for ax, level in zip(axes, levels):
        mine = groups == level
        if kind == "bars":
            draw_ppc_bars(ax, y[mine], replicates[:, mine], values)
        elif kind == "stat":
            p_values.append(draw_ppc_stat(ax, y[mine], replicates[:, mine], name, function))
        else:
            _draw_densities(ax, y[mine].astype(np.float64), replicates[:, mine].astype(np.float64),
                            _limits(*_widened(y)))
        title = f"{group} = {_level_text(level)}"
        ax.set_title(title if kind != "stat" else f"{title}: p = {p_values[-1]:.2f}", fontsize=9)
    for ax in axes[len(levels):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", fontsize=8, ncols=2)
    what = {"bars": "counts of each value", "density": "densities",
            "stat": f"{name}; p = P({name}(y_rep) >= {name}(y))"}[kind]
    figure.suptitle(f"Posterior predictive check of {response} by {group}: {what}")
    return figure


def _widened(y: np.ndarray) -> tuple[float, float]:
    low, high = float(np.min(y)), float(np.max(y))
    return low - (high - low) / 4, high + (high - low) / 4


def _draw_densities(ax, y: np.ndarray, replicates: np.ndarray, limits: tuple[float, float]) -> None:
    grid, width = _grid(limits), _bandwidth(y, limits)
    for k, row in enumerate(replicates):
        ax.plot(grid, _density(row, limits, width), color="C0", lw=0.7, alpha=0.35,
                label=f"replicated y ({len(replicates)} posterior draws)" if k == 0 else None)
    ax.plot(grid, _density(y, limits, width), color="black", lw=2, label="observed y")
    ax.set_yticks([])


def plot_loo_pit(y: np.ndarray, replicates: np.ndarray, log_likelihood: xr.DataArray, posterior: xr.Dataset, *,
                 response: str) -> Figure:
    """ArviZ's LOO-PIT plot of ``y`` from replicates ``(chain, draw, rows)`` and the pointwise
    log-likelihood (``(chain, draw, rows)``) of the draws ``posterior`` (ArviZ reads its
    chains for the relative efficiency of the importance weights), on a new figure.

    The InferenceData ArviZ reads is built here from these; nothing given is changed.
    """
    replicates = np.asarray(replicates)
    dims = ("chain", "draw", "obs")
    idata = az.InferenceData(
        posterior=posterior,
        posterior_predictive=xr.Dataset({"y": (dims, replicates)}),
        log_likelihood=xr.Dataset({"y": (dims, np.asarray(log_likelihood))}),
        observed_data=xr.Dataset({"y": (("obs",), np.asarray(y))}))
    figure = new_figure(8, 5)
    ax = figure.add_subplot()
    az.plot_loo_pit(idata, y="y", ax=ax)
    ax.set_xlabel(f"LOO-PIT of {response}")
    ax.set_title("Posterior predictive check: LOO-PIT (uniform for a calibrated model)")
    return figure
