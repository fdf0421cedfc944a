"""Predictions, comparisons and slopes as marginaleffects defines them, from the draws.

With ``p_s(X)`` the prediction (``kind``, by default the expected response) of draw s
at the rows of a data frame X:

* ``predictions``: ``p_s(X)``;
* ``comparisons`` of a numeric variable x: ``p_s(X with x + h) - p_s(X)`` (``h = 1`` by
  default; ``comparison="ratio"`` for ``p_s(X with x + h) / p_s(X)``); of a categorical
  one: ``p_s(X with x = level) - p_s(X with x = reference)`` for every other level, or
  between every pair of levels (``"pairwise"``, the emmeans use case);
* ``slopes`` of a numeric x: the centred difference ``(p_s(x + e/2) - p_s(x - e/2)) / e``
  with ``e`` a ten-thousandth of x's fitted range (marginaleffects' step).

Each is per row (``by=False``), averaged over all rows (``by=True``) or within the
groups of ``by`` (column names), the average taken draw by draw, then summarised over
draws: posterior mean, sd and the central interval. Rows are predicted in chunks of
at most ``CHUNK_VALUES`` draws × rows, so averages never hold a draws × rows array of
the whole data at once.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from .summary import quantile_label

#: Most draws × rows predicted at once.
CHUNK_VALUES = 20_000_000
#: marginaleffects' step of a numeric derivative, as a share of the variable's range.
SLOPE_STEP = 1e-4

Predict = Callable[[pd.DataFrame], np.ndarray]


def _groups(frame: pd.DataFrame, by) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct values of the ``by`` columns and each row's group index."""
    if by is True:
        return pd.DataFrame(index=[0]), np.zeros(len(frame), dtype=int)
    names = [by] if isinstance(by, str) else list(by)
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise DataError(f"by names {', '.join(map(repr, missing))}, not a column of the data; "
                        f"the columns are {', '.join(map(repr, frame.columns))}")
    grouped = frame.groupby(names, sort=True, observed=True, dropna=False)
    return grouped.size().reset_index()[names], grouped.ngroup().to_numpy()


def averaged(predict: Predict, frame: pd.DataFrame, by, num_draws: int) -> tuple[pd.DataFrame, np.ndarray]:
    """``(groups, draws)``: the draws ``(S, groups)`` of the average of ``predict`` over
    each group's rows of ``frame``, in chunks of rows."""
    keys, codes = _groups(frame, by)
    sums = np.zeros((num_draws, len(keys)))
    chunk = max(1, CHUNK_VALUES // max(num_draws, 1))
    for start in range(0, len(frame), chunk):
        draws = np.asarray(predict(frame.iloc[start:start + chunk]), dtype=np.float64)
        part = codes[start:start + chunk]
        for k in np.unique(part):
            sums[:, k] += draws[:, part == k].sum(axis=1)
    return keys, sums / np.bincount(codes, minlength=len(keys))


def summarise(draws: np.ndarray, prob: float) -> pd.DataFrame:
    """``estimate`` (posterior mean), ``sd`` and the central ``prob`` interval per column."""
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    quantiles = np.quantile(draws, [lo, hi], axis=0)
    return pd.DataFrame({"estimate": draws.mean(axis=0), "sd": draws.std(axis=0, ddof=1),
                         quantile_label(lo): quantiles[0], quantile_label(hi): quantiles[1]})


def table(predict: Predict, frame: pd.DataFrame, by, prob: float, num_draws: int) -> pd.DataFrame:
    """Per row (``by`` False or None) or averaged: the rows (or groups) with the summary."""
    if by is None or by is False:
        draws = np.asarray(predict(frame), dtype=np.float64)
        return pd.concat([frame.reset_index(drop=True), summarise(draws, prob)], axis=1)
    keys, draws = averaged(predict, frame, by, num_draws)
    return pd.concat([keys.reset_index(drop=True), summarise(draws, prob)], axis=1)


def contrasts(variable: str, values, frame: pd.DataFrame, levels: Sequence | None) -> list[tuple[str, Mapping, Mapping]]:
    """``(label, high, low)`` settings of ``variable`` whose predictions are compared:
    ``values`` is a number (numeric: +h), ``"reference"`` or ``"pairwise"`` (categorical)."""
    if levels is None:
        step = 1.0 if values is None else values
        if isinstance(step, bool) or not isinstance(step, (int, float)):
            raise DataError(f"{variable} is numeric: compare by a number, e.g. {{{variable!r}: 1}}, got {values!r}")
        column = frame[variable].to_numpy(dtype=np.float64)
        return [(f"+{step:g}", {variable: column + step}, {variable: column})]
    kind = "reference" if values is None else values
    if kind == "reference":
        pairs = [(level, levels[0]) for level in levels[1:]]
    elif kind == "pairwise":
        pairs = [(b, a) for i, a in enumerate(levels) for b in levels[i + 1:]]
    else:
        raise DataError(f"{variable} is categorical: compare its levels with 'reference' (each against the "
                        f"first, {levels[0]!r}) or 'pairwise', got {values!r}")
    return [(f"{_text(b)} - {_text(a)}", {variable: b}, {variable: a}) for b, a in pairs]


def _text(level) -> str:
    """A level as written: ``2`` for the level 2.0 of a numeric column."""
    return f"{level:g}" if isinstance(level, float) else str(level)


def comparison_function(comparison: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    if comparison == "difference":
        return lambda high, low: high - low
    if comparison == "ratio":
        return lambda high, low: high / low
    raise DataError(f"comparison must be 'difference' or 'ratio', got {comparison!r}")
