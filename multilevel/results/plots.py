"""Plots of a fit: traces, fitted lines, group effects, posterior predictive densities.

Every function draws on a new :class:`matplotlib.figure.Figure` with its own Agg
canvas and returns it. Nothing goes through ``pyplot`` and no global matplotlib
setting is changed, so figures can be written from scripts, servers and the CLI,
and Jupyter displays a returned figure as it is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patheffects import withStroke
from matplotlib.ticker import MaxNLocator

from ..design import build_design
from ..design.columns import is_numeric
from ..errors import MultilevelError
from ..formula.spec import FormulaSpec, Terms, Var
from ..model.layout import GroupLayout, Layout
from .files import write_atomic
from .posterior import stack_draws
from .predict import predict_draws

if TYPE_CHECKING:
    import arviz as az

    from .fit import FitInfo

#: Points of the x grid of each fitted line (enough for curved terms such as log(x)).
GRID_POINTS = 20
#: Most levels a colour column may have (one colour of the tab10 palette each).
MAX_COLOURS = 10
#: Levels of a caterpillar plot up to which every level is named on the axis.
MAX_LABELLED_LEVELS = 40
#: Draws × rows predicted at once by plot_ppc (larger data are done in chunks of rows).
PPC_CHUNK_VALUES = 5_000_000
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


# -- data and posterior pieces ----------------------------------------------------
def fitted_data(idata: "az.InferenceData", spec: FormulaSpec, what: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The fitted rows of the columns the formula reads, and the response as fitted."""
    if "constant_data" not in idata.groups() or "observed_data" not in idata.groups():
        raise MultilevelError(f"{what} needs the fitted data, and this fit has none (a fit of a Dask "
                              "DataFrame keeps only sufficient statistics); fit a pandas DataFrame to plot it")
    data = idata.constant_data
    frame = pd.DataFrame({name: data[name].values for name in spec.variables()})
    return frame, idata.observed_data["y"].values


def _one_draw(posterior: xr.Dataset, index: np.ndarray | None = None) -> xr.Dataset:
    """A posterior of the draws ``index`` (as one chain), or of the posterior means (None)."""
    out = {}
    for name, variable in posterior.data_vars.items():
        values = stack_draws(posterior, name)
        out[name] = (variable.dims, values.mean(axis=0)[None, None] if index is None else values[index][None])
    return xr.Dataset(out)


def _density(values: np.ndarray, grid: np.ndarray, bandwidth: float) -> np.ndarray:
    """Gaussian kernel density of ``values`` on an even ``grid`` (values binned to the grid)."""
    step = grid[1] - grid[0]
    edges = np.append(grid - step / 2, grid[-1] + step / 2)
    counts = np.histogram(values, edges)[0]
    return _smooth(counts, grid, bandwidth) / max(len(values), 1)


def _smooth(counts: np.ndarray, grid: np.ndarray, bandwidth: float) -> np.ndarray:
    width = max(bandwidth, grid[1] - grid[0])
    kernel = np.exp(-0.5 * ((grid[:, None] - grid[None, :]) / width) ** 2) / (width * np.sqrt(2 * np.pi))
    return kernel @ counts


def _bandwidth(values: np.ndarray) -> float:
    """Silverman's rule of thumb."""
    spread = np.std(values)
    iqr = np.subtract(*np.percentile(values, [75, 25])) / 1.34
    if iqr > 0:
        spread = min(spread, iqr)
    return 0.9 * spread * len(values) ** -0.2


def _grid(low: float, high: float) -> np.ndarray:
    if high <= low:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, DENSITY_POINTS)


def _pick_group(layout: Layout, group: str | None) -> GroupLayout:
    names = [g.name for g in layout.groups]
    if not names:
        raise MultilevelError("the model has no group terms, so there are no group effects to plot")
    if group is None:
        return layout.groups[0]
    if group not in names:
        raise MultilevelError(f"group={group!r} is not a grouping factor of the model; it has {', '.join(names)}")
    return layout.groups[names.index(group)]


# -- trace ---------------------------------------------------------------------------
def plot_trace(posterior: xr.Dataset, names: Sequence[str]) -> Figure:
    """Density (left) and trace (right) of each parameter in ``names``, one colour per chain.

    A name is a scalar parameter (``sigma``) or one level of a group effect as in the
    summary (``Intercept|tree[3]``).
    """
    series = [(name, _parameter_draws(posterior, name)) for name in names]
    if not series:
        raise MultilevelError("no parameters to plot")
    figure = new_figure(10, 1.6 * len(series) + 0.6)
    axes = figure.subplots(len(series), 2, squeeze=False, gridspec_kw={"width_ratios": [1, 2]})
    for (name, draws), (left, right) in zip(series, axes):
        grid = _grid(draws.min(), draws.max())
        width = _bandwidth(draws.ravel())
        for chain, values in enumerate(draws):
            colour = f"C{chain % 10}"
            left.plot(grid, _density(values, grid, width), color=colour, lw=1.2)
            right.plot(values, color=colour, lw=0.6, alpha=0.8, label=f"chain {chain + 1}")
        left.set_title(name, fontsize=10, loc="left")
        left.set_yticks([])
        left.xaxis.set_major_locator(MaxNLocator(4))
        right.set_xlim(0, draws.shape[1] - 1)
    axes[-1, 0].set_xlabel("value")
    axes[-1, 1].set_xlabel("draw (after warmup)")
    handles, labels = axes[0, 1].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside upper right", fontsize=8, ncols=min(len(labels), 4))
    figure.suptitle("Posterior density and trace by chain")
    return figure


def _parameter_draws(posterior: xr.Dataset, name: str) -> np.ndarray:
    """Draws ``(chain, draw)`` of a scalar parameter or of ``effect[level]``."""
    base, _, level = name.partition("[")
    if base in posterior and level.endswith("]"):
        variable = posterior[base]
        dim = variable.dims[-1]
        levels = [str(v) for v in variable.coords[dim].values]
        if level[:-1] not in levels:
            raise MultilevelError(f"{base} has no level {level[:-1]!r}")
        return variable.values[..., levels.index(level[:-1])]
    if name not in posterior:
        raise MultilevelError(f"no parameter named {name!r}; the parameters are {', '.join(posterior.data_vars)}")
    if posterior[name].ndim != 2:
        raise MultilevelError(f"{name} has one value per level: name levels as in the summary, "
                              f"e.g. '{name}[{posterior[name].coords[posterior[name].dims[-1]].values[0]}]'")
    return posterior[name].values


# -- fitted lines --------------------------------------------------------------------
def plot_lines(posterior: xr.Dataset, info: "FitInfo", data: pd.DataFrame, y: np.ndarray, x: str,
               color: str | None = None, group: str | None = None) -> Figure:
    """The data, each group's fitted line over its own range of ``x``, and population lines.

    Lines are predictions (the family mean) at the posterior means of the parameters.
    A group's line takes its other covariates from the group's first row; a population
    line (one per level of ``color``, over that level's range of ``x``) sets every
    grouping factor to a new level with no effect. The response is on the scale fitted
    (``log(dnow)``, not ``dnow``).
    """
    spec, layout = info.spec, info.layout
    _check_column(data, x, "x", numeric=True)
    if color is not None:
        _check_column(data, color, "color", numeric=False)
    term = _pick_group(layout, group) if (group is not None or layout.groups) else None
    colours = data[color].to_numpy() if color is not None else np.zeros(len(data), dtype=int)
    levels, codes = np.unique(colours, return_inverse=True)
    if len(levels) > MAX_COLOURS:
        raise MultilevelError(f"color={color!r} has {len(levels)} levels; give a column with at most "
                              f"{MAX_COLOURS} (such as a treatment)")
    palette = [f"C{k}" for k in range(len(levels))]
    xs = data[x].to_numpy(dtype=float)
    mean = _one_draw(posterior)

    figure = new_figure(9, 6)
    ax = figure.add_subplot()
    ax.scatter(xs, y, s=5, c=[palette[c] for c in codes], alpha=0.25, linewidths=0, rasterized=True)
    if term is not None:
        refs = build_design(spec, data, na_action="error", encoders=info.encoders,
                            with_response=False).groups[[g.name for g in layout.groups].index(term.name)].refs
        present, first = np.unique(refs, return_index=True)
        ranges = pd.Series(xs).groupby(refs).agg(["min", "max"]).loc[present].to_numpy()
        grid_x, fitted = _lines(mean, info, data.iloc[first], x, ranges)
        lines = LineCollection(np.stack([grid_x, fitted], axis=-1), colors=[palette[c] for c in codes[first]],
                               linewidths=0.7, alpha=0.4, gid="group lines")
        ax.add_collection(lines)
    population = _population_rows(spec, data, codes, len(levels))
    ranges = np.array([[xs[codes == c].min(), xs[codes == c].max()] for c in range(len(levels))])
    grid_x, fitted = _lines(mean, info, population, x, ranges)
    for c, level in enumerate(levels):
        label = f"{color} = {_level_text(level)}" if color is not None else "population"
        ax.plot(grid_x[c], fitted[c], color=palette[c], lw=3.5, label=label, gid="population line",
                path_effects=[withStroke(linewidth=6, foreground="white")])
    handles, _ = ax.get_legend_handles_labels()
    if term is not None:
        handles.append(Line2D([], [], color="0.4", lw=0.8, label=f"each {term.name} (posterior mean)"))
    ax.legend(handles=handles, loc="best", framealpha=0.9)
    ax.set_xlabel(x)
    ax.set_ylabel(str(spec.response))
    what = f"fitted line of each {term.name} and population lines" if term is not None else "population lines"
    ax.set_title(f"{spec.response} against {x}: {what}")
    ax.autoscale_view()
    return figure


def _level_text(level) -> str:
    """``1`` rather than ``1.0`` for a whole-number level."""
    if isinstance(level, (float, np.floating)) and float(level).is_integer():
        return str(int(level))
    return str(level)


def _check_column(data: pd.DataFrame, name: str, argument: str, numeric: bool) -> None:
    if name not in data.columns:
        raise MultilevelError(f"{argument}={name!r} is not a column the formula uses; "
                              f"the fit keeps {', '.join(data.columns)}")
    if numeric and not is_numeric(data[name]):
        raise MultilevelError(f"{argument}={name!r} is not numeric: give a numeric column for the x axis")


def _lines(mean: xr.Dataset, info: "FitInfo", rows: pd.DataFrame, x: str,
           ranges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x grids ``(lines, GRID_POINTS)`` over ``ranges`` and the predictions there, one line per row."""
    steps = np.linspace(0.0, 1.0, GRID_POINTS)
    grid_x = ranges[:, :1] + (ranges[:, 1:] - ranges[:, :1]) * steps
    frame = rows.iloc[np.repeat(np.arange(len(rows)), GRID_POINTS)].reset_index(drop=True)
    frame[x] = grid_x.ravel()
    fitted = predict_draws(mean, info.spec, info.encoders, info.layout, info.family, frame,
                           kind="mean", new_groups="zero")[0]
    return grid_x, fitted.reshape(grid_x.shape)


def _population_rows(spec: FormulaSpec, data: pd.DataFrame, codes: np.ndarray, num_levels: int) -> pd.DataFrame:
    """The first row of each colour level with every grouping-only column set to a new level."""
    rows = data.iloc[[int(np.argmax(codes == c)) for c in range(num_levels)]].copy()
    effects = Terms(False, spec.fixed.terms + tuple(t for g in spec.groups for t in g.effects.terms))
    predictors = set(FormulaSpec(spec.formula, spec.response, effects, ()).variables(response=False))
    for term in spec.groups:
        for factor in term.group:
            name = factor.name if isinstance(factor, Var) else factor.args[0].name
            if name not in predictors:
                rows[name] = "(new level)"
    return rows


# -- group effects --------------------------------------------------------------------
def plot_effects(posterior: xr.Dataset, layout: Layout, group: str | None = None,
                 column: str | None = None, prob: float = 0.95) -> Figure:
    """Caterpillar plot: each level's effect (posterior mean and central interval),
    levels sorted by posterior mean, one panel per effect column of the group term."""
    term = _pick_group(layout, group)
    columns = term.columns if column is None else (column,)
    if column is not None and column not in term.columns:
        raise MultilevelError(f"column={column!r} is not an effect of {term.name}; it has {', '.join(term.columns)}")
    num_levels = len(term.levels)
    labelled = num_levels <= MAX_LABELLED_LEVELS
    figure = new_figure(max(4.5 * len(columns), 6), float(np.clip(0.25 * num_levels + 1.5, 3.5, 9)))
    axes = figure.subplots(1, len(columns), squeeze=False)[0]
    tail = (1 - prob) / 2
    for ax, name in zip(axes, columns):
        draws = stack_draws(posterior, f"{name}|{term.name}")
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
            ax.set_yticks(rank, [term.levels[i] for i in order], fontsize=8)
        else:
            ax.set_yticks([])
            ax.set_ylabel(f"{num_levels} levels of {term.name}, sorted by posterior mean")
        ax.set_title(f"{name}|{term.name}", fontsize=10)
        ax.set_xlabel(f"deviation from the population ({100 * prob:g}% interval)")
    figure.suptitle(f"Group effects of {term.name} (red: interval excludes 0)")
    return figure


# -- posterior predictive check -----------------------------------------------------------
def plot_ppc(posterior: xr.Dataset, info: "FitInfo", data: pd.DataFrame, y: np.ndarray,
             num_draws: int = 50, seed: int = 0) -> Figure:
    """Densities of ``num_draws`` posterior predictive replicates of y over that of y.

    Replicates are drawn at the fitted rows, for draws chosen at random (``seed``);
    all densities share the observed y's bandwidth and a grid over y's range widened
    by a quarter of it on each side.
    """
    total = posterior.sizes["chain"] * posterior.sizes["draw"]
    if isinstance(num_draws, bool) or not isinstance(num_draws, (int, np.integer)) or num_draws < 1:
        raise MultilevelError(f"num_draws must be a whole number >= 1, got {num_draws!r}")
    chosen = np.sort(np.random.default_rng(seed).choice(total, size=min(num_draws, total), replace=False))
    subset = _one_draw(posterior, chosen)
    low, high = float(y.min()), float(y.max())
    grid = _grid(low - (high - low) / 4, high + (high - low) / 4)
    width = _bandwidth(y)
    step = grid[1] - grid[0]
    edges = np.append(grid - step / 2, grid[-1] + step / 2)
    counts = np.zeros((len(chosen), len(grid)))
    chunk = max(1, PPC_CHUNK_VALUES // len(chosen))
    for number, start in enumerate(range(0, len(data), chunk)):
        draws = predict_draws(subset, info.spec, info.encoders, info.layout, info.family,
                              data.iloc[start:start + chunk], kind="posterior_predictive",
                              new_groups="error", seed=seed + number)
        counts += np.stack([np.histogram(row, edges)[0] for row in draws])
    figure = new_figure(8, 5)
    ax = figure.add_subplot()
    for k, row in enumerate(counts):
        ax.plot(grid, _smooth(row, grid, width) / len(data), color="C0", lw=0.7, alpha=0.35,
                label=f"replicated y ({len(chosen)} posterior draws)" if k == 0 else None)
    observed = _density(y, grid, width)
    ax.plot(grid, observed, color="black", lw=2.5, label="observed y")
    reached = grid[counts.sum(axis=0) > 0]
    ax.set_xlim(min(low, reached.min()) - 2 * width, max(high, reached.max()) + 2 * width)
    ax.set_xlabel(str(info.spec.response))
    ax.set_ylabel("density")
    ax.set_yticks([])
    ax.set_title("Posterior predictive check")
    ax.set_ylim(0, 1.15 * max(observed.max(), ax.get_ylim()[1] / 1.05))
    ax.legend(loc="best")
    return figure
