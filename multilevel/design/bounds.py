"""Censored and truncated responses: the rows' censoring codes and truncation bounds.

``y | cens(c) ~ ...`` says, per row, what y is (brms's codes):

===========  ====  =========================================================
``c``        code  the true value
===========  ====  =========================================================
"none"       0     is y
"left"       -1    is at most y (below a detection limit y)
"right"      1     is above y (a survival time still running at y)
"interval"   2     lies in ``(y, y2]``, ``y2`` from ``cens(c, y2)``
===========  ====  =========================================================

``c`` may hold the words, brms's numeric codes, or a logical column (True:
right-censored, as brms and the ``survival`` package take an event's absence).
``y | trunc(lb = a, ub = b) ~ ...`` says that only values in ``[a, b]`` were ever
recorded; each bound is a number or a column, either may be left out.

All of it is checked here, at the boundary, so that the log densities never see
an unknown code, an empty interval or a response outside its window.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import DataError
from ..formula.spec import FormulaSpec, Var
from .columns import Evaluator, is_numeric

NONE, LEFT, RIGHT, INTERVAL = 0, -1, 1, 2
#: The censoring words and brms's codes for them.
CODES = {"none": NONE, "left": LEFT, "right": RIGHT, "interval": INTERVAL}


class ResponseBounds(NamedTuple):
    """Per-row censoring and truncation of the response (a pytree of float arrays).

    ``censoring`` holds the codes (module notes; None without ``cens()``), ``y2`` the
    upper ends of interval-censored rows (y itself in the other rows; None without
    ``cens(c, y2)``); ``lb`` and ``ub`` the truncation bounds, ``-inf`` and ``+inf``
    where a side is open (None without ``trunc()``).
    """

    censoring: np.ndarray | None = None
    y2: np.ndarray | None = None
    lb: np.ndarray | None = None
    ub: np.ndarray | None = None

    @property
    def truncated(self) -> bool:
        return self.lb is not None


def _rows(mask: np.ndarray, index: pd.Index) -> str:
    shown = ", ".join(map(str, index[mask][:5]))
    return f"rows {shown}{', ...' if mask.sum() > 5 else ''} ({int(mask.sum())} in all)"


def censoring_codes(spec: FormulaSpec, evaluator: Evaluator) -> np.ndarray:
    """The codes of ``cens(c)`` at the rows of ``evaluator`` (module notes)."""
    expr = spec.cens.values
    index = evaluator.data.index
    if isinstance(expr, Var):
        series = evaluator.data[expr.name]
    else:
        series = pd.Series(evaluator.numeric(expr, "cens()"), index=index)
    if series.dtype == bool:
        return np.where(series.to_numpy(), RIGHT, NONE).astype(np.float64)
    if is_numeric(series):
        values = series.to_numpy(dtype=np.float64)
        bad = ~np.isin(values, list(CODES.values()))
        shown = sorted(set(values[bad].tolist()))[:5]
    else:
        words = series.astype(str).str.strip().str.lower()
        values = words.map(CODES).to_numpy(dtype=np.float64)
        bad = np.isnan(values)
        shown = sorted(set(series[bad].astype(str)))[:5]
    if bad.any():
        raise DataError(f"the censoring column {expr} of {spec.cens} has unknown codes "
                        f"{', '.join(map(repr, shown))} in {_rows(bad, index)}; give 'none', 'left', 'right' or "
                        "'interval' (or brms's 0, -1, 1, 2, or True/False for right-censored)")
    return values


def interval_ends(spec: FormulaSpec, evaluator: Evaluator, y: np.ndarray, codes: np.ndarray) -> np.ndarray | None:
    """``y2`` of ``cens(c, y2)``: the upper end of each interval-censored row, ``> y``
    (y itself in the other rows, where brms lets it be missing)."""
    interval = codes == INTERVAL
    index = evaluator.data.index
    if spec.cens.y2 is None:
        if interval.any():
            raise DataError(f"{spec.cens} codes {_rows(interval, index)} as interval-censored, which needs the "
                            f"upper end of each interval: write cens({spec.cens.values}, y2) with y2 a column")
        return None
    y2 = np.asarray(evaluator.numeric(spec.cens.y2, "the y2 of cens()"), dtype=np.float64)
    missing = interval & ~np.isfinite(y2)
    if missing.any():
        raise DataError(f"the upper ends {spec.cens.y2} of {spec.cens} are missing or not finite in the "
                        f"interval-censored {_rows(missing, index)}; give each interval its upper end, or code "
                        "the row 'right' for an interval without one")
    empty = interval & ~(y2 > y)
    if empty.any():
        raise DataError(f"the interval (y, y2] of {spec.cens} is empty in {_rows(empty, index)}: the upper end "
                        f"{spec.cens.y2} must be above the response; fix those rows, or code an exact value "
                        "'none'")
    return np.where(interval, y2, y)


def truncation_bounds(spec: FormulaSpec, evaluator: Evaluator) -> tuple[np.ndarray, np.ndarray]:
    """``(lb, ub)`` of ``trunc()`` per row (``-inf``/``+inf`` for an open side), checked
    to leave a window: finite where given, ``lb < ub``."""
    index = evaluator.data.index
    n = len(index)
    out = []
    for name, expr, open_value in (("lb", spec.trunc.lb, -np.inf), ("ub", spec.trunc.ub, np.inf)):
        if expr is None:
            out.append(np.full(n, open_value))
            continue
        value = np.broadcast_to(np.asarray(evaluator.numeric(expr, f"trunc({name} = )"), dtype=np.float64), (n,))
        bad = ~np.isfinite(value)
        if bad.any():
            raise DataError(f"the bound {name} = {expr} of {spec.trunc} is not finite in {_rows(bad, index)}; "
                            f"leave {name} out for an open side")
        out.append(np.array(value))
    lb, ub = out
    empty = ~(lb < ub)
    if empty.any():
        raise DataError(f"{spec.trunc} has lb >= ub in {_rows(empty, index)}: the window [lb, ub] is empty; "
                        "fix the bounds")
    return lb, ub


def check_within_window(spec: FormulaSpec, y: np.ndarray, bounds: ResponseBounds, index: pd.Index) -> None:
    """Every response (and interval end) lies in its truncation window ``[lb, ub]``."""
    if not bounds.truncated:
        return
    outside = (y < bounds.lb) | (y > bounds.ub)
    if bounds.y2 is not None:
        outside |= bounds.y2 > bounds.ub
    if outside.any():
        shown = ", ".join(f"{index[i]} ({y[i]:g} not in [{bounds.lb[i]:g}, {bounds.ub[i]:g}])"
                          for i in np.flatnonzero(outside)[:5])
        more = f", ... ({int(outside.sum())} rows in all)" if outside.sum() > 5 else ""
        raise DataError(f"the response {spec.response} lies outside its truncation window {spec.trunc} in rows "
                        f"{shown}{more}: a truncated response is only ever observed inside it; fix the bounds "
                        "or drop those rows")


def response_bounds(spec: FormulaSpec, evaluator: Evaluator, y: np.ndarray | None,
                    with_trunc: bool) -> ResponseBounds | None:
    """The :class:`ResponseBounds` of a formula's ``cens()`` and ``trunc()`` at the evaluator's
    rows (censoring only with the response ``y``; truncation when ``with_trunc``), or None
    without either."""
    codes = y2 = lb = ub = None
    if spec.cens is not None and y is not None:
        codes = censoring_codes(spec, evaluator)
        y2 = interval_ends(spec, evaluator, y, codes)
    if with_trunc:
        lb, ub = truncation_bounds(spec, evaluator)
    if codes is None and lb is None:
        return None
    bounds = ResponseBounds(codes, y2, lb, ub)
    if y is not None:
        check_within_window(spec, y, bounds, evaluator.data.index)
    return bounds
