"""Plots of a fit: traces, fitted lines, group effects, posterior predictive densities.

Every function takes plain values (arrays of draws, names, the fitted data frame
and response, and where it needs predictions a callable that makes them) and
knows nothing of the Fit, the model or the design; :class:`~multilevel.results.Fit`
gathers those values in its ``plot_*`` methods. Every function draws on a new
:class:`matplotlib.figure.Figure` with its own Agg canvas and returns it. Nothing
goes through ``pyplot`` and no global matplotlib setting is changed, so figures
can be written from scripts, servers and the CLI, and Jupyter displays a returned
figure as it is. Densities are ArviZ's kernel density estimate (:func:`arviz.kde`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping, Sequence

import arviz as az
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patheffects import withStroke
from matplotlib.ticker import MaxNLocator
from numpy.typing import ArrayLike
from scipy.stats import norm

from ..design.columns import is_numeric
from ..errors import DataError
from .files import write_atomic

#: Points of the x grid of each fitted line (enough for curved terms such as log(x)).
GRID_POINTS = 20
#: Most levels a colour column may have (one colour of the tab10 palette each).
MAX_COLOURS = 10
#: Levels of a caterpillar plot up to which every level is named on the axis.
MAX_LABELLED_LEVELS = 40
#: Draws × rows predicted at once by plot_ppc (larger data are done in chunks of rows).
PPC_CHUNK_VALUES = 5_000_000
#: Points of the grid of each density.
DENSITY_POINTS = 256


# -- figures and files ------------------------------------------------------------
def new_figure(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas (no pyplot, no global state)."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write ``figure`` as PNG atomically (a temporary file, then a rename)."""
    return write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=dpi))


def write_plots(fit, directory: str | os.PathLike, lines_x: str | None = None,
                lines_color: str | None = None) -> list[Path]:
    """Write trace.png, effects.png (models with group terms), ppc.png and, with
    ``lines_x``, lines.png into ``directory``; returns the paths written."""
    directory = Path(directory)
    makers = {"trace": fit.plot_trace}
    if fit.info.layout.groups:
        makers["effects"] = fit.plot_effects
    makers["ppc"] = fit.plot_ppc
    if lines_x is not None:
        makers["lines"] = lambda: fit.plot_lines(lines_x, color=lines_color)
    return [save_figure(make(), directory / f"{name}.png") for name, make in makers.items()]


# -- densities ----------------------------------------------------------------------
def _limits(low: float, high: float) -> tuple[float, float]:
    """The range of a density grid: ``(low, high)``, widened to a unit when empty."""
    if high <= low:
        low, high = low - 0.5, high + 0.5
    return float(low), float(high)


def _grid(limits: tuple[float, float]) -> np.ndarray:
    """The points of a density over ``limits``: the centres of DENSITY_POINTS even bins."""
    edges = np.linspace(*limits, DENSITY_POINTS + 1)
    return (edges[1:] + edges[:-1]) / 2


def _bandwidth(values: np.ndarray, limits: tuple[float, float]) -> float:
    """Silverman's rule of thumb (the standard deviation when the IQR is zero), and at
    least one bin of the grid over ``limits``."""
    spread = np.std(values)
    iqr = np.subtract(*np.percentile(values, [75, 25])) / 1.34
    if iqr > 0:
        spread = min(spread, iqr)
    return float(max(0.9 * spread * len(values) ** -0.2, (limits[1] - limits[0]) / DENSITY_POINTS))


def _density(values: ArrayLike, limits: tuple[float, float], bandwidth: float) -> np.ndarray:
    """Gaussian kernel density of ``values`` on ``_grid(limits)``, by :func:`arviz.kde`
    (binned to the grid) with a fixed ``bandwidth``.

    ArviZ's boundary correction is off: it reflects the mass beyond the limits back
    inside, which for a grid wider than the data (``plot_ppc``) bends the density up at
    the edges and shifts modes near them; without it the mass beyond the limits is lost.

    Values outside ``limits`` are left out, and the density is scaled by the fraction of
    the values within them, so densities of parts of a sample, weighted by their sizes,
    add up to the density of the whole sample.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    inside = values[(values >= limits[0]) & (values <= limits[1])]
    if inside.size == 0:
        return np.zeros(DENSITY_POINTS)
    if np.all(inside == inside[0]):  # arviz.kde gives no estimate for a single value: the kernel there
        return norm.pdf(_grid(limits), inside[0], bandwidth) * inside.size / values.size
    _, pdf = az.kde(inside, bw=bandwidth, custom_lims=limits, grid_len=DENSITY_POINTS, bound_correction=False)
    return pdf * inside.size / values.size


# -- trace ---------------------------------------------------------------------------
def plot_trace(draws: Mapping[str, ArrayLike]) -> Figure:
    """Density (left) and trace (right) of each parameter, one colour per chain.

    Parameters
    ----------
    draws
        Parameter name (the panel's title) to its draws, ``(chain, draw)``.

    Notes
    -----
    The chains of a parameter share one grid (the range of all its draws) and one
    bandwidth (Silverman's rule on all its draws).
    """
    series = [(name, np.asarray(values)) for name, values in draws.items()]
    if not series:
        raise DataError("no parameters to plot")
    figure = new_figure(10, 1.6 * len(series) + 0.6)
    axes = figure.subplots(len(series), 2, squeeze=False, gridspec_kw={"width_ratios": [1, 2]})
    for (name, values), (left, right) in zip(series, axes):
        limits = _limits(values.min(), values.max())
        grid, width = _grid(limits), _bandwidth(values.ravel(), limits)
        for chain, chain_values in enumerate(values):
            colour = f"C{chain % 10}"
            left.plot(grid, _density(chain_values, limits, width), color=colour, lw=1.2)
            right.plot(chain_values, color=colour, lw=0.6, alpha=0.8, label=f"chain {chain + 1}")
        left.set_title(name, fontsize=10, loc="left")
        left.set_yticks([])
        left.xaxis.set_major_locator(MaxNLocator(4))
        right.set_xlim(0, values.shape[1] - 1)
    axes[-1, 0].set_xlabel("value")
    axes[-1, 1].set_xlabel("draw (after warmup)")
    handles, labels = axes[0, 1].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside upper right", fontsize=8, ncols=min(len(labels), 4))
    figure.suptitle("Posterior density and trace by chain")
    return figure


# -- fitted lines --------------------------------------------------------------------
def plot_lines(data: pd.DataFrame, y: ArrayLike, x: str, predict: Callable[[pd.DataFrame], np.ndarray], *,
               response: str, groups: ArrayLike | None = None, group_name: str | None = None,
               grouping_columns: Sequence[str] = (), color: str | None = None) -> Figure:
    """The data, each group's fitted line over its own range of ``x``, and population lines.

    Parameters
    ----------
    data, y
        The fitted rows and their response (on the scale fitted, ``log(dnow)``).
    x
        The numeric column of the x axis.
    predict
        ``predict(frame)`` gives draws ``(draws, rows)`` of the fitted value of each row
        of ``frame``; a line is their mean over the draws. (The Fit passes the family
        mean at the posterior means of the parameters, new levels with no effect.)
    response
        The y axis label.
    groups
        Per row of ``data``, the code of its level of the grouping factor whose lines
        are drawn (one line per code, in sorted order); None for no group lines.
    group_name
        Name of that grouping factor, for the legend and title.
    grouping_columns
        The columns that only identify groups: a population line sets them to a new
        level, ``"(new level)"``.
    color
        A column of at most MAX_COLOURS levels: points, group lines and a population
        line per level in its colour.

    Notes
    -----
    A group's line takes its other covariates from the group's first row; a population
    line (one per level of ``color``, over that level's range of ``x``) from the level's
    first row.
    """
    _check_column(data, x, "x", numeric=True)
    if color is not None:
        _check_column(data, color, "color", numeric=False)
    colours = data[color].to_numpy() if color is not None else np.zeros(len(data), dtype=int)
    levels, codes = np.unique(colours, return_inverse=True)
    if len(levels) > MAX_COLOURS:
        raise DataError(f"color={color!r} has {len(levels)} levels; give a column with at most "
                              f"{MAX_COLOURS} (such as a treatment)")
    palette = [f"C{k}" for k in range(len(levels))]
    xs = data[x].to_numpy(dtype=float)
    y = np.asarray(y)

    figure = new_figure(9, 6)
    ax = figure.add_subplot()
    ax.scatter(xs, y, s=5, c=[palette[c] for c in codes], alpha=0.25, linewidths=0, rasterized=True)
    if groups is not None:
        groups = np.asarray(groups)
        present, first = np.unique(groups, return_index=True)
        ranges = pd.Series(xs).groupby(groups).agg(["min", "max"]).loc[present].to_numpy()
        grid_x, fitted = _lines(predict, data.iloc[first], x, ranges)
        lines = LineCollection(np.stack([grid_x, fitted], axis=-1), colors=[palette[c] for c in codes[first]],
                               linewidths=0.7, alpha=0.4, gid="group lines")
        ax.add_collection(lines)
    population = _population_rows(data, codes, len(levels), grouping_columns)
    ranges = np.array([[xs[codes == c].min(), xs[codes == c].max()] for c in range(len(levels))])
    grid_x, fitted = _lines(predict, population, x, ranges)
    for c, level in enumerate(levels):
        label = f"{color} = {_level_text(level)}" if color is not None else "population"
        ax.plot(grid_x[c], fitted[c], color=palette[c], lw=3.5, label=label, gid="population line",
                path_effects=[withStroke(linewidth=6, foreground="white")])
    handles, _ = ax.get_legend_handles_labels()
    if groups is not None:
        handles.append(Line2D([], [], color="0.4", lw=0.8, label=f"each {group_name} (posterior mean)"))
    ax.legend(handles=handles, loc="best", framealpha=0.9)
    ax.set_xlabel(x)
    ax.set_ylabel(response)
    what = f"fitted line of each {group_name} and population lines" if groups is not None else "population lines"
    ax.set_title(f"{response} against {x}: {what}")
    ax.autoscale_view()
    return figure


def _level_text(level) -> str:
    """``1`` rather than ``1.0`` for a whole-number level."""
    if isinstance(level, (float, np.floating)) and float(level).is_integer():
        return str(int(level))
    return str(level)


def _check_column(data: pd.DataFrame, name: str, argument: str, numeric: bool) -> None:
    if name not in data.columns:
        raise DataError(f"{argument}={name!r} is not a column the formula uses; "
                              f"the fit keeps {', '.join(data.columns)}")
    if numeric and not is_numeric(data[name]):
        raise DataError(f"{argument}={name!r} is not numeric: give a numeric column for the x axis")


def _lines(predict: Callable[[pd.DataFrame], np.ndarray], rows: pd.DataFrame, x: str,
           ranges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x grids ``(lines, GRID_POINTS)`` over ``ranges`` and the predictions there, one line per row."""
    steps = np.linspace(0.0, 1.0, GRID_POINTS)
    grid_x = ranges[:, :1] + (ranges[:, 1:] - ranges[:, :1]) * steps
    frame = rows.iloc[np.repeat(np.arange(len(rows)), GRID_POINTS)].reset_index(drop=True)
    frame[x] = grid_x.ravel()
    fitted = np.asarray(predict(frame), dtype=np.float64).reshape(-1, len(frame)).mean(axis=0)
    return grid_x, fitted.reshape(grid_x.shape)


def _population_rows(data: pd.DataFrame, codes: np.ndarray, num_levels: int,
                     grouping_columns: Sequence[str]) -> pd.DataFrame:
    """The first row of each colour level with every grouping-only column set to a new level."""
    rows = data.iloc[[int(np.argmax(codes == c)) for c in range(num_levels)]].copy()
    for name in grouping_columns:
        rows[name] = "(new level)"
    return rows


# -- group effects --------------------------------------------------------------------
def plot_effects(effects: Mapping[str, ArrayLike], levels: Sequence[str], group: str,
                 prob: float = 0.95) -> Figure:
    """Caterpillar plot: each level's effect (posterior mean and central interval),
    levels sorted by posterior mean, one panel per effect column of the group term.

    Parameters
    ----------
    effects
        Effect column (``Intercept``, ``x``) to its draws ``(draws, levels)``; the
        panel of column ``x`` of group ``g`` is titled ``x|g``.
    levels
        The level names, in the order of the draws' last axis.
    group
        The grouping factor's name.
    prob
        Probability of the central interval.
    """
    columns = list(effects)
    num_levels = len(levels)
    labelled = num_levels <= MAX_LABELLED_LEVELS
    figure = new_figure(max(4.5 * len(columns), 6), float(np.clip(0.25 * num_levels + 1.5, 3.5, 9)))
    axes = figure.subplots(1, len(columns), squeeze=False)[0]
    tail = (1 - prob) / 2
    for ax, name in zip(axes, columns):
        draws = np.asarray(effects[name])
        means = draws.mean(axis=0)
        low, high = np.quantile(draws, [tail, 1 - tail], axis=0)
        order = np.argsort(means)
        rank = np.arange(num_levels)
        excludes_zero = ((low > 0) | (high < 0))[order]
        colours = np.where(excludes_zero, "C3", "C0")
        ax.hlines(rank, low[order], high[order], colors=colours, lw=0.6 if num_levels > 100 else 1.2, alpha=0.7)
        ax.scatter(means[order], rank, s=4 if num_levels > 100 else 14, c=colours, zorder=3)
        ax.axvline(0.0, color="black", lw=0.8, ls="--")
        ax.set_ylim(-1, num_levels)
        if labelled:
            ax.set_yticks(rank, [levels[i] for i in order], fontsize=8)
        else:
            ax.set_yticks([])
            ax.set_ylabel(f"{num_levels} levels of {group}, sorted by posterior mean")
        ax.set_title(f"{name}|{group}", fontsize=10)
        ax.set_xlabel(f"deviation from the population ({100 * prob:g}% interval)")
    figure.suptitle(f"Group effects of {group} (red: interval excludes 0)")
    return figure


# -- posterior predictive check -----------------------------------------------------------
def plot_ppc(y: ArrayLike, data: pd.DataFrame, replicate: Callable[[pd.DataFrame, int], np.ndarray], *,
             num_draws: int, response: str, seed: int = 0) -> Figure:
    """Densities of ``num_draws`` posterior predictive replicates of y over that of y.

    Parameters
    ----------
    y, data
        The fitted response and rows.
    replicate
        ``replicate(rows, seed)`` gives replicates ``(num_draws, len(rows))`` of the
        response at ``rows`` (a slice of ``data``), one per posterior draw, the same
        draws at every call. It is called on slices of at most ``PPC_CHUNK_VALUES /
        num_draws`` rows, with seeds ``seed``, ``seed + 1``, ...
    num_draws
        The number of replicates ``replicate`` gives per row.
    response
        The x axis label.

    Notes
    -----
    All densities share the observed y's bandwidth and a grid over y's range widened
    by a quarter of it on each side; replicates outside it are left out of the density.
    """
    y = np.asarray(y, dtype=np.float64)
    low, high = float(y.min()), float(y.max())
    limits = _limits(low - (high - low) / 4, high + (high - low) / 4)
    grid, width = _grid(limits), _bandwidth(y, limits)
    densities = np.zeros((num_draws, DENSITY_POINTS))
    reached = [np.inf, -np.inf]
    chunk = max(1, PPC_CHUNK_VALUES // num_draws)
    for number, start in enumerate(range(0, len(data), chunk)):
        rows = data.iloc[start:start + chunk]
        draws = np.asarray(replicate(rows, seed + number), dtype=np.float64).reshape(num_draws, len(rows))
        densities += np.stack([_density(row, limits, width) for row in draws]) * (len(rows) / len(data))
        reached = [min(reached[0], draws.min()), max(reached[1], draws.max())]
    figure = new_figure(8, 5)
    ax = figure.add_subplot()
    for k, density in enumerate(densities):
        ax.plot(grid, density, color="C0", lw=0.7, alpha=0.35,
                label=f"replicated y ({num_draws} posterior draws)" if k == 0 else None)
    observed = _density(y, limits, width)
    ax.plot(grid, observed, color="black", lw=2.5, label="observed y")
    reached = np.clip(reached, *limits)
    ax.set_xlim(min(low, reached[0]) - 2 * width, max(high, reached[1]) + 2 * width)
    ax.set_xlabel(response)
    ax.set_ylabel("density")
    ax.set_yticks([])
    ax.set_title("Posterior predictive check")
    ax.set_ylim(0, 1.15 * max(observed.max(), ax.get_ylim()[1] / 1.05))
    ax.legend(loc="best")
    return figure


#: Most distinct response values a bar plot of the posterior predictive check shows.
MAX_BARS = 50
#: Test statistics ``plot_ppc(kind="stat")`` takes by name.
STATISTICS = {"mean": np.mean, "sd": lambda v: np.std(v, ddof=1), "min": np.min, "max": np.max,
              "median": np.median, "zeros": lambda v: np.mean(v == 0)}


def plot_ppc_bars(y: ArrayLike, replicates: np.ndarray, *, response: str) -> Figure:
    """Bars of the observed count of each response value, with the median and the 90%
    interval over the replicates (``(draws, rows)``) of the same count: the check for
    counts, binary and ordinal responses, as bayesplot's ``ppc_bars``."""
    figure = new_figure(8, 5)
    ax = figure.add_subplot()
    draw_ppc_bars(ax, y, replicates, bar_values(y, replicates))
    ax.set_xlabel(response)
    ax.set_ylabel("rows")
    ax.set_title("Posterior predictive check")
    ax.legend(loc="best")
    return figure


def bar_values(y: ArrayLike, replicates: np.ndarray) -> np.ndarray:
    """The distinct values of the response and its replicates (a DataError past MAX_BARS)."""
    values = np.unique(np.concatenate([np.unique(np.asarray(y)), np.unique(replicates)]))
    if len(values) > MAX_BARS:
        raise DataError(f"the response and its replicates take {len(values)} values, too many for bars "
                        f"(at most {MAX_BARS}): use kind='density'")
    return values


def draw_ppc_bars(ax, y: ArrayLike, replicates: np.ndarray, values: np.ndarray) -> None:
    """On ``ax``: a bar per value of ``values`` (the rows of ``y`` with that value) and the
    median and 90% interval of the same count over the replicates (``(draws, rows)``)."""
    y = np.asarray(y)
    observed = np.array([np.sum(y == v) for v in values])
    counts = np.stack([np.sum(replicates == v, axis=1) for v in values], axis=-1)    # (draws, values)
    low, median, high = np.quantile(counts, [0.05, 0.5, 0.95], axis=0)
    positions = np.arange(len(values))
    ax.bar(positions, observed, color="0.75", label="observed y")
    ax.errorbar(positions, median, yerr=[median - low, high - median], fmt="o", color="C0", capsize=3,
                label=f"replicated y: median, 90% interval ({len(replicates)} posterior draws)")
    ax.set_xticks(positions, [_level_text(v) for v in values])


def statistic(stat: str | Callable[[np.ndarray], float]) -> tuple[str, Callable[[np.ndarray], float]]:
    """The name and function of a test statistic: one of STATISTICS, or a function."""
    if isinstance(stat, str):
        if stat not in STATISTICS:
            raise DataError(f"stat must be one of {', '.join(STATISTICS)} or a function of the response, "
                            f"got {stat!r}")
        return stat, STATISTICS[stat]
    if callable(stat):
        return getattr(stat, "__name__", "T"), stat
    raise DataError(f"stat must be one of {', '.join(STATISTICS)} or a function of the response, got {stat!r}")


def draw_ppc_stat(ax, y: ArrayLike, replicates: np.ndarray, name: str,
                  function: Callable[[np.ndarray], float]) -> float:
    """On ``ax``: the histogram of ``function`` over the replicates (``(draws, rows)``) and its
    observed value; returns the posterior predictive p-value ``P(T(y_rep) >= T(y))``."""
    observed = float(function(np.asarray(y, dtype=np.float64)))
    values = np.array([float(function(row)) for row in np.asarray(replicates, dtype=np.float64)])
    ax.hist(values, bins=min(30, max(5, len(values) // 5)), color="C0", alpha=0.6,
            label=f"{name}(replicated y) ({len(values)} posterior draws)")
    ax.axvline(observed, color="black", lw=2.5, label=f"{name}(observed y)")
    ax.set_yticks([])
    return float(np.mean(values >= observed))


def plot_ppc_stat(y: ArrayLike, replicates: np.ndarray, stat: str | Callable[[np.ndarray], float], *,
                  response: str) -> Figure:
    """The histogram of a test statistic over the replicates (``(draws, rows)``) and its
    observed value, with the posterior predictive p-value ``P(T(y_rep) >= T(y))``, as
    bayesplot's ``ppc_stat``."""
    name, function = statistic(stat)
    figure = new_figure(8, 5)
    ax = figure.add_subplot()
    p_value = draw_ppc_stat(ax, y, replicates, name, function)
    ax.set_xlabel(f"{name}({response})")
    ax.set_title(f"Posterior predictive check: P({name}(y_rep) >= {name}(y)) = {p_value:.2f}")
    ax.legend(loc="best")
    return figure
