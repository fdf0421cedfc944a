"""Conditional effects, as brms's ``conditional_effects()``: the expected response over a
grid of one predictor (or two, ``"x:z"``), the others held fixed.

The grid, from the fitted rows of the formula's columns:

* the effect: a numeric column at ``resolution`` evenly spaced values over its fitted
  range, a categorical one at each of its levels;
* the second variable of ``"x:z"``: its levels, or for a numeric one its mean and
  the mean ± one sd (brms's choice);
* every other column at its mean (numeric) or its reference level (the first level,
  categorical), or at the value given in ``conditions``;
* the number of trials of a binomial response at 1 (the mean is then the probability).

``conditions`` with several values per column (``{"g": ["a", "b"]}``: every
combination of the values given), or a DataFrame (one condition per row, brms's
``conditions = data.frame(...)``), gives one grid, and one panel, per condition; its
rows carry the condition's label in the column ``condition`` (``"g = a"``). With
``re_formula=None`` and a grouping column among the conditions, each panel is the
effect within one level: brms's ``conditional_effects(fit, "x", re_formula = NULL,
conditions = data.frame(g = levels))``.

Predictions leave the group effects out by default (``re_formula="~ 0"``, brms's
``NA``): the effect of a population-level predictor for a typical group. Each grid
row gets the posterior mean, sd and the central interval of its prediction; for an
ordinal model with ``categorical=True``, of each category's probability (one panel
per category; with several conditions, one panel per condition and a colour per
category).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, NamedTuple

import numpy as np
import pandas as pd

from ..design.columns import Encoders
from ..errors import DataError
from ..formula.spec import BinOp, FormulaSpec, Var

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Values of a numeric effect's grid, as brms's default ``resolution``.
RESOLUTION = 100
#: Most conditions (panels) of one call.
MAX_CONDITIONS = 16
#: The column of a grid that labels its condition, when there are several.
CONDITION = "condition"


class ConditionalEffects(NamedTuple):
    """The summarised grid (one row per grid point, or per point and category) and its plot."""

    data: pd.DataFrame
    figure: Figure


def condition_rows(conditions: Mapping[str, object] | pd.DataFrame | None) -> list[dict[str, object]]:
    """The conditions as a list of ``{column: value}``: one per row of a DataFrame, one per
    combination of the values of a dict (a scalar counts as one value); ``[{}]`` for none."""
    if conditions is None:
        return [{}]
    if isinstance(conditions, pd.DataFrame):
        rows = conditions.to_dict(orient="records")
    elif isinstance(conditions, Mapping):
        axes = {name: list(value) if isinstance(value, (list, tuple, np.ndarray, pd.Series, pd.Index))
                else [value] for name, value in conditions.items()}
        rows = [dict(zip(axes, values)) for values in pd.MultiIndex.from_product(list(axes.values()))] \
            if axes else [{}]
    else:
        raise DataError("conditions must be a dict column -> value (or list of values, one panel each) or a "
                        f"DataFrame (one panel per row), got {type(conditions).__name__}")
    if not rows:
        raise DataError("conditions has no rows: give at least one value per column")
    if len(rows) > MAX_CONDITIONS:
        raise DataError(f"conditions give {len(rows)} panels, more than can be read (at most {MAX_CONDITIONS}): "
                        "give fewer values")
    return rows


def effect_grid(columns: pd.DataFrame, spec: FormulaSpec, encoders: Encoders, effect: str, *,
                resolution: int = RESOLUTION,
                conditions: Mapping[str, object] | pd.DataFrame | None = None) -> pd.DataFrame:
    """The grid of predictor values for ``effect`` (``"x"`` or ``"x:z"``; see the module notes).

    ``columns``: the formula's columns at the fitted rows. With several conditions, the
    grids of all of them, one after the other, labelled in the column ``condition``.

    Raises
    ------
    DataError
        For an effect that names no predictor of the formula, more than two, or a
        condition that names no column (or the effect itself).
    """
    names = effect.split(":") if isinstance(effect, str) else []
    predictors = [c for c in spec.variables(response=False) if c in columns]
    if not 1 <= len(names) <= 2 or any(n not in predictors for n in names):
        raise DataError(f"effect {effect!r}: name one predictor of the formula, or two as 'x:z'; the "
                        f"predictors are {', '.join(map(repr, predictors))}")
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise DataError(f"resolution must be a whole number >= 2, got {resolution!r}")
    rows = condition_rows(conditions)
    unknown = [c for c in rows[0] if c not in predictors]
    if unknown:
        raise DataError(f"conditions name {', '.join(map(repr, unknown))}, not a predictor of the formula; "
                        f"the predictors are {', '.join(map(repr, predictors))}")
    varied = [c for c in rows[0] if c in names]
    if varied:
        raise DataError(f"conditions name {', '.join(map(repr, varied))}, which the effect {effect!r} varies; "
                        "condition on the other predictors")
    if len(rows) == 1:
        return _one_grid(columns, spec, encoders, names, predictors, resolution, rows[0])
    grids = [_one_grid(columns, spec, encoders, names, predictors, resolution, row)
             .assign(**{CONDITION: ", ".join(f"{k} = {v}" for k, v in row.items())}) for row in rows]
    return pd.concat(grids, ignore_index=True)


def _one_grid(columns: pd.DataFrame, spec: FormulaSpec, encoders: Encoders, names: list[str],
              predictors: list[str], resolution: int, conditions: Mapping[str, object]) -> pd.DataFrame:
    axes = [_values(columns[names[0]], encoders, names[0], resolution)]
    if len(names) == 2:
        second = columns[names[1]]
        axes.append(levels_of(second, encoders, names[1]) if is_categorical(second, encoders, names[1]) else
                    list(np.mean(second) + np.array([-1.0, 0.0, 1.0]) * np.std(second, ddof=1)))
    grid = pd.MultiIndex.from_product(axes, names=names).to_frame(index=False)
    for name in predictors:
        if name not in names:
            grid[name] = conditions.get(name, typical_value(columns[name], encoders, name))
    for name, value in _unit_trials(spec).items():
        grid[name] = value
    return grid


def conditional_effects(grid: pd.DataFrame, draws: np.ndarray, effect: str, prob: float,
                        categories: tuple[str, ...] | None = None, response: str = "y") -> ConditionalEffects:
    """Summaries of ``draws`` (``(S, rows)``, or ``(S, rows, K)`` category probabilities with
    ``categories``) over ``grid``, and their plot."""
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    names = effect.split(":")
    if categories is not None:
        rows, k = draws.shape[1], draws.shape[2]
        data = grid.loc[grid.index.repeat(k)].reset_index(drop=True)
        data["category"] = pd.Categorical(np.tile(categories, rows), categories=list(categories), ordered=True)
        draws = draws.reshape(draws.shape[0], rows * k)
    else:
        data = grid.copy()
    quantiles = np.quantile(draws, [lo, hi], axis=0)
    data["mean"] = draws.mean(axis=0)
    data["sd"] = draws.std(axis=0, ddof=1)
    low, high = f"q{100 * lo:g}", f"q{100 * hi:g}"
    data[low], data[high] = quantiles[0], quantiles[1]
    second = names[1] if len(names) == 2 else None
    panel = CONDITION if CONDITION in data else ("category" if categories is not None else None)
    colour = "category" if categories is not None and panel == CONDITION else second
    ylabel = "probability" if categories is not None else f"E[{response}]"
    return ConditionalEffects(data, _plot(data, names[0], panel, colour, low, high, ylabel))


def _plot(data: pd.DataFrame, x: str, panel: str | None, colour: str | None, low: str, high: str,
          ylabel: str) -> Figure:
    """One panel per value of the column ``panel`` (a condition, or an ordinal model's
    category), or one panel, sharing the y axis."""
    from .plots import new_figure  # matplotlib, imported at first use
    panels = [(f"{panel} = {value}" if panel == "category" else value, part)
              for value, part in data.groupby(panel, sort=False, observed=True)] if panel else [(None, data)]
    columns = min(len(panels), 3)
    rows = -(-len(panels) // columns)
    figure = new_figure(6.0 if columns == 1 else 4.2 * columns, 4.0 if rows == 1 else 3.3 * rows + 0.4)
    axes = figure.subplots(rows, columns, squeeze=False, sharey=True).ravel()
    for ax, (label, part) in zip(axes, panels):
        _draw(ax, part, x, colour, low, high, ylabel)
        if label is not None:
            ax.set_title(label, fontsize=10)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return figure


def _draw(axes, data: pd.DataFrame, x: str, colour: str | None, low: str, high: str, ylabel: str) -> None:
    """A line with its band over a numeric x, points with error bars over a categorical one,
    one colour per value of ``colour``."""
    numeric = _numeric(data[x])
    groups = [(None, data)] if colour is None else list(data.groupby(colour, sort=False, observed=True))
    width = 0.6 / max(len(groups), 1)
    for i, (value, part) in enumerate(groups):
        label = None if value is None else f"{colour} = {value}"
        if numeric:
            line, = axes.plot(part[x], part["mean"], label=label)
            axes.fill_between(part[x], part[low], part[high], alpha=0.25, color=line.get_color(), linewidth=0)
        else:
            position = np.arange(len(part)) + (i - (len(groups) - 1) / 2) * width
            axes.errorbar(position, part["mean"], yerr=[part["mean"] - part[low], part[high] - part["mean"]],
                          fmt="o", capsize=3, label=label)
            axes.set_xticks(np.arange(len(part)), [str(v) for v in part[x]])
    axes.set_xlabel(x)
    axes.set_ylabel(ylabel)
    if colour is not None:
        axes.legend(frameon=False, fontsize="small")


def _numeric(values) -> bool:
    return pd.api.types.is_numeric_dtype(pd.Series(values)) and not pd.api.types.is_bool_dtype(pd.Series(values))


def is_categorical(values, encoders: Encoders, name: str) -> bool:
    """Strings, ``C(x)`` and grouping factors take levels; other numbers take values."""
    return not _numeric(values) or name in encoders.levels or f"C({name})" in encoders.levels


def levels_of(values, encoders: Encoders, name: str) -> list:
    """A categorical column's levels, in the fit's order where it learned one."""
    for key in (f"C({name})", name):
        if key in encoders.levels:
            learned = list(encoders.levels[key])
            return sorted(float(v) for v in learned) if _numeric(values) else learned
    return sorted(pd.unique(np.asarray(values)), key=str)


def _values(values, encoders: Encoders, name: str, resolution: int) -> list:
    if is_categorical(values, encoders, name):
        return levels_of(values, encoders, name)
    return list(np.linspace(np.min(values), np.max(values), resolution))


def typical_value(values, encoders: Encoders, name: str):
    """The mean of a numeric column, the reference level of a categorical one."""
    return levels_of(values, encoders, name)[0] if is_categorical(values, encoders, name) else float(np.mean(values))


def _unit_trials(spec: FormulaSpec) -> dict[str, float]:
    """Columns that set a binomial response's number of trials to 1 (so its mean is the
    probability): ``n`` of ``trials(n)`` or ``cbind(s, n - s)``, ``s`` and ``f`` of ``cbind(s, f)``."""
    expr = spec.trials_expr
    if expr is None:
        return {}
    if isinstance(expr, Var):
        return {expr.name: 1.0}
    if isinstance(expr, BinOp) and expr.op == "+" and isinstance(expr.left, Var) and isinstance(expr.right, Var):
        return {expr.left.name: 1.0, expr.right.name: 0.0}
    raise DataError(f"conditional effects of a binomial model set the number of trials to 1, which the "
                    f"trials {expr} of this formula cannot be set to; use fit.predict on a grid of your own")

