"""Evaluate R's functions on columns (``multilevel.formula.rcalls.R_FUNCTIONS``) as R does.

Numbers in, numbers out, except the factor makers: ``factor(x)``, ``as.factor(x)`` and
``ordered(x)`` make ``x`` categorical (levels in R's order, learned when fitting).
``as.numeric`` and ``as.integer`` of a factor give its level numbers 1..K, as in R, and of a
text column the numbers it holds; ``as.logical`` gives 0/1 (see :mod:`.logical`).
``round(x, digits)`` rounds half to even as R (>= 4.0.0) does; ``log(x, base)`` is
``log(x) / log(base)``; ``pmin``/``pmax`` are row-wise minima and maxima.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import DataError
from ..formula.spec import Call, Var
from .logical import is_logical, truth

if TYPE_CHECKING:
    from .columns import Evaluator

_ELEMENTWISE = {"floor": np.floor, "ceiling": np.ceil, "trunc": np.trunc, "sign": np.sign,
                "sin": np.sin, "cos": np.cos}


def r_round(x: np.ndarray, digits: int = 0) -> np.ndarray:
    """R's ``round(x, digits)``.

    Notes
    -----
    With ``digits = 0`` it is IEC 60559 rounding, half to even (``round(2.5) = 2``).
    Otherwise R (since 4.0.0) takes the two candidates ``xd = floor(x 10^d) / 10^d`` and
    ``xu = ceil(x 10^d) / 10^d`` and returns the one nearer to ``x`` as doubles, the
    even last digit on a tie; so ``round(0.15, 1) = 0.1``, as 0.15 is stored a little
    below it. Negative ``x`` are rounded as ``-round(-x)``.
    """
    x = np.asarray(x, dtype=np.float64)
    if digits == 0:
        return np.rint(x)
    sign, ax = np.sign(x), np.abs(x)
    scale = 10.0 ** digits
    with np.errstate(all="ignore"):
        low = np.floor(ax * scale)
        down, up = low / scale, np.ceil(ax * scale) / scale
        below, above = ax - down, up - ax
    odd = np.mod(low, 2) == 1
    out = np.where((above < below) | ((above == below) & odd), up, down)
    return np.where(np.isfinite(ax), sign * out, x)


def evaluate_r_call(evaluator: "Evaluator", expr: Call) -> np.ndarray | pd.Categorical:
    """The value of a call of one of R's functions on the evaluator's data."""
    func, args = expr.func, expr.args
    if func in ("factor", "as.factor", "ordered"):
        return evaluator.categorical(str(expr), _as_series(evaluator, args[0]))
    if func == "as.logical":
        return truth(evaluator, args[0])
    if func in ("as.numeric", "as.integer"):
        value = _as_number(evaluator, args[0], expr)
        return np.trunc(value) if func == "as.integer" else value
    values = [evaluator.numeric(a, f"{func}()") for a in args]
    with np.errstate(all="ignore"):
        if func == "round":
            return r_round(values[0], _whole_constant(values[1], expr) if len(values) > 1 else 0)
        if func == "log":
            return np.log(values[0]) / np.log(values[1]) if len(values) > 1 else np.log(values[0])
        if func in ("pmin", "pmax"):
            return (np.minimum if func == "pmin" else np.maximum).reduce(values)
        return _ELEMENTWISE[func](values[0])


def _as_series(evaluator: "Evaluator", arg) -> pd.Series:
    """The argument of a factor maker as a series: the column itself (keeping a pandas
    Categorical's order), else its value (a logical one labelled FALSE/TRUE, as R does)."""
    if isinstance(arg, Var):
        from .columns import column  # columns imports this module

        return column(evaluator.data, arg.name)
    value = evaluator.evaluate(arg)
    if is_logical(arg):
        value = np.where(value > 0.5, "TRUE", "FALSE")
    return pd.Series(value, index=evaluator.data.index)


def _as_number(evaluator: "Evaluator", arg, expr: Call) -> np.ndarray:
    """R's ``as.numeric``: a factor's level numbers, a text column's numbers, booleans as 0/1."""
    if isinstance(arg, Var) and arg.name in evaluator.data.columns:
        series = evaluator.data[arg.name]
        if pd.api.types.is_bool_dtype(series):
            return series.to_numpy(dtype=np.float64)
        if not isinstance(series.dtype, pd.CategoricalDtype) and not pd.api.types.is_numeric_dtype(series):
            numbers = pd.to_numeric(series, errors="coerce")
            bad = numbers.isna() & series.notna()
            if bad.any():
                shown = ", ".join(map(repr, series[bad].unique()[:5]))
                raise DataError(f"{expr}: column {arg.name!r} holds text that is not a number ({shown}); "
                                "fix those rows, or use factor() to treat the column as categorical")
            return numbers.to_numpy(dtype=np.float64)
    value = evaluator.evaluate(arg)
    if isinstance(value, pd.Categorical):
        return value.codes.astype(np.float64) + 1.0
    return value


def _whole_constant(values: np.ndarray, expr: Call) -> int:
    """The one whole number an argument such as ``round()``'s digits must be."""
    first = float(values[0]) if len(values) else 0.0
    if not np.all(values == first) or first != np.floor(first):
        raise DataError(f"{expr}: the digits of round() are one whole number, as in round(x, 1)")
    return int(first)
