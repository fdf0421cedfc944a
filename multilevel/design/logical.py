"""R's logical values in formulas: comparisons, ``&``, ``|``, ``!`` and ``as.logical``.

A logical value is held as a float64 array of 0 (FALSE) and 1 (TRUE), so arithmetic
takes it as R does (``I((x > 1) * 2)``). As a term or a response it is a factor with
the levels ``FALSE`` and ``TRUE`` (those present, in that order), as R's ``model.matrix``
codes it: with an intercept, ``y ~ (x > 250)`` has the column ``x > 250TRUE`` (R's name:
the expression, then the level), 1 where the comparison holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import DataError
from ..formula.spec import BinOp, Call, Expr, Not, Str, Var

if TYPE_CHECKING:
    from .columns import Evaluator

#: R's comparison operators, numpy's functions for them.
COMPARISONS = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal,
               "==": np.equal, "!=": np.not_equal}
#: The operators whose value is logical.
LOGICAL_OPS = (*COMPARISONS, "&", "|")
#: R's spellings of TRUE and FALSE in a text column, for ``as.logical``.
_TRUE = {"TRUE", "true", "True", "T"}
_FALSE = {"FALSE", "false", "False", "F"}


def is_logical(expr: Expr) -> bool:
    """Whether ``expr``'s value is logical: a comparison, ``&``, ``|``, ``!``, ``as.logical()``,
    or ``I()`` of one of these."""
    if isinstance(expr, Not) or (isinstance(expr, BinOp) and expr.op in LOGICAL_OPS):
        return True
    if isinstance(expr, Call):
        return expr.func == "as.logical" or (expr.func == "I" and is_logical(expr.args[0]))
    return False


def evaluate_logical(evaluator: "Evaluator", expr: Expr) -> np.ndarray:
    """The 0/1 value of a comparison, ``&``, ``|`` or ``!`` on the evaluator's data."""
    if isinstance(expr, Str):
        raise DataError(f'the string {expr} is a value to compare a factor with, as in (sex == {expr})')
    if isinstance(expr, Not):
        return 1.0 - truth(evaluator, expr.operand)
    if expr.op in ("&", "|"):
        left, right = truth(evaluator, expr.left), truth(evaluator, expr.right)
        return np.maximum(left, right) if expr.op == "|" else left * right
    if isinstance(expr.left, Str) or isinstance(expr.right, Str):
        return _compare_labels(evaluator, expr)
    left, right = evaluator.evaluate(expr.left), evaluator.evaluate(expr.right)
    if isinstance(left, pd.Categorical) or isinstance(right, pd.Categorical):
        if expr.op not in ("==", "!="):
            raise DataError(f"{expr}: {expr.op!r} compares numbers, but a side is categorical; "
                            "compare a factor with == or != and a quoted level, as in (sex == \"F\")")
        left, right = _labels(left), _labels(right)
    return COMPARISONS[expr.op](left, right).astype(np.float64)


def truth(evaluator: "Evaluator", expr: Expr) -> np.ndarray:
    """``expr`` as R's ``as.logical`` reads it, 0/1: numbers are TRUE unless 0; a column of
    booleans or of TRUE/FALSE labels is itself."""
    if is_logical(expr):
        return evaluator.evaluate(expr)
    if isinstance(expr, Var):
        series = evaluator.data[expr.name] if expr.name in evaluator.data.columns else None
        if series is not None and pd.api.types.is_bool_dtype(series):
            return series.to_numpy(dtype=np.float64)
    value = evaluator.evaluate(expr)
    if not isinstance(value, pd.Categorical):
        return (value != 0).astype(np.float64)
    labels = np.asarray(value.astype(str))
    bad = sorted(set(labels) - _TRUE - _FALSE)
    if bad:
        raise DataError(f"{expr} is categorical with the levels {', '.join(map(repr, bad[:5]))}, which are not "
                        "TRUE or FALSE; compare it with a level instead, as in (x == \"yes\")")
    return np.isin(labels, list(_TRUE)).astype(np.float64)


def logical_levels(evaluator: "Evaluator", expr: Expr, value: np.ndarray) -> pd.Categorical:
    """A logical value as R's factor of it: levels ``FALSE``, ``TRUE`` (learned when fitting)."""
    labels = pd.Series(np.where(value > 0.5, "TRUE", "FALSE"), index=evaluator.data.index)
    return evaluator.categorical(str(expr), labels)


def _compare_labels(evaluator: "Evaluator", expr: BinOp) -> np.ndarray:
    """``factor == "level"`` (or ``!=``): a factor's labels compared with a string."""
    if expr.op not in ("==", "!="):
        raise DataError(f"{expr}: a string is compared with == or !=, as in (sex == \"F\")")
    sides = []
    for side in (expr.left, expr.right):
        if isinstance(side, Str):
            sides.append(side.value)
            continue
        value = evaluator.evaluate(side)
        if not isinstance(value, pd.Categorical):
            raise DataError(f"{expr}: {side} is numeric, so it never equals a string; compare it with a number")
        sides.append(_labels(value))
    equal = np.equal(sides[0], sides[1])
    return (equal if expr.op == "==" else ~equal).astype(np.float64)


def _labels(value: np.ndarray | pd.Categorical) -> np.ndarray:
    """A categorical's labels as strings, or numbers as R prints them for a comparison."""
    from .columns import level_labels  # columns imports this module

    if isinstance(value, pd.Categorical):
        return np.asarray(value.astype(str), dtype=object)
    return level_labels(pd.Series(value)).to_numpy(dtype=object)
