"""Model-matrix columns for a sum of terms (R's coding rules).

A numeric factor contributes its values; a categorical factor contributes
indicator columns, or, when ordered (``ordered(x)``, or an ordered pandas Categorical
column) and coded against a baseline, R's polynomial contrasts ``x.L``, ``x.Q``, ``x.C``,
``x^4``, ... (``contr.poly``). Within a term, a categorical factor is coded against its
first level (treatment contrasts, ``x[level]`` for the other levels) when the
rest of the term is empty or part of an earlier term; otherwise it gets one
indicator per level. Without an intercept, the first categorical factor of the
first term that has one gets one indicator per level instead. These are R's
rules (``model.matrix``), so ``y ~ cheese`` has ``Intercept, cheese[B],
cheese[C], cheese[D]``, ``y ~ 0 + cheese`` has ``cheese[A], ..., cheese[D]``
and ``y ~ 0 + a + b`` has ``a[...]`` for every level of ``a`` but not of ``b``:
all full rank.
"""

from __future__ import annotations

from itertools import product

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError
from ..formula.spec import Call, Smooth, Term, Terms, Var
from .columns import Evaluator
from .logical import is_logical, logical_levels
from .smooths import fit_smooth, smooth_columns, smooth_names
from .transforms import polynomial_contrasts


def model_columns(terms: Terms, evaluator: Evaluator) -> tuple[np.ndarray, tuple[str, ...]]:
    """The ``n × p`` matrix and column names of ``terms`` on the evaluator's data."""
    n = len(evaluator.data)
    blocks, names = [], []
    if terms.intercept:
        blocks.append(np.ones((n, 1)))
        names.append("Intercept")
    full_first = not terms.intercept
    for k, term in enumerate(terms.terms):
        if isinstance(term[0], Smooth):
            twin = next((t[0] for t in terms.terms[:k] if isinstance(t[0], Smooth)
                         and (t[0].label, t[0].by) == (term[0].label, term[0].by)), None)
            if twin is not None:
                raise FormulaError(f"{twin} and {term[0]} smooth the same columns; keep one of them")
            block, block_names = _smooth_columns(term[0], evaluator)
            blocks.append(block)
            names.extend(block_names)
            continue
        block, block_names, full_first = _term_columns(term, terms.terms[:k], full_first, evaluator)
        blocks.append(block)
        names.extend(block_names)
    matrix = np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0))
    return matrix, tuple(names)


def _smooth_columns(term: Smooth, evaluator: Evaluator) -> tuple[np.ndarray, tuple[str, ...]]:
    """A smooth's columns (:mod:`multilevel.design.smooths`), its basis learned when fitting."""
    key = str(term)
    if key not in evaluator.smooths:
        if not evaluator.learn:
            raise DataError(f"{key} was not part of the fitted model")
        evaluator.smooths[key] = fit_smooth(term, evaluator.data)
    state = evaluator.smooths[key]
    return smooth_columns(term, state, evaluator.data), smooth_names(term, state).names


def _term_columns(term: Term, earlier: tuple[Term, ...], full_first: bool, evaluator: Evaluator):
    """Columns of one term (the product of its factors' codings), and whether the
    next categorical factor still has to be coded in full (``full_first``)."""
    parts: list[list[tuple[str, np.ndarray]]] = []
    for factor in term:
        value = evaluator.evaluate(factor)
        logical = is_logical(factor)
        if logical:
            value = logical_levels(evaluator, factor, value)
        if isinstance(value, pd.Categorical):
            if len(value.categories) < 2:
                raise DataError(f"{factor} has a single level ({value.categories[0]!r}) in the data, "
                                "so it has no effect to estimate; drop it from the formula")
            rest = set(term) - {factor}
            contrasts = not full_first and (not rest or any(rest <= set(t) for t in earlier))
            full_first = False
            codes = value.codes
            if contrasts and _ordered(factor, evaluator):
                poly, suffixes = polynomial_contrasts(len(value.categories))
                parts.append([(f"{factor}{suffix}", poly[codes, j]) for j, suffix in enumerate(suffixes)])
                continue
            levels = list(value.categories)[1:] if contrasts else list(value.categories)
            label = "{}{}" if logical else "{}[{}]"    # R's x > 1TRUE for a logical term
            parts.append([(label.format(factor, level), (codes == value.categories.get_loc(level)).astype(float))
                          for level in levels])
        elif np.ndim(value) == 2:                 # a basis (poly(x, 2)): R's names poly(x, 2)1, poly(x, 2)2
            parts.append([(f"{factor}{j + 1}", value[:, j]) for j in range(value.shape[1])])
        else:
            parts.append([(str(factor), np.asarray(value, dtype=np.float64))])
    columns, names = [], []
    for reverse_combo in product(*reversed(parts)):   # R's order: the first factor varies fastest
        combo = reverse_combo[::-1]
        names.append(":".join(name for name, _ in combo))
        col = combo[0][1]
        with np.errstate(all="ignore"):  # non-finite products are reported by build_design
            for _, values in combo[1:]:
                col = col * values
        columns.append(col)
    return np.stack(columns, axis=1), names, full_first


def _ordered(factor, evaluator: Evaluator) -> bool:
    """Whether R would take ``factor`` as an ordered factor: ``ordered(x)``, or a column that
    is an ordered pandas Categorical when fitting (remembered for new data)."""
    if not evaluator.learn:
        return str(factor) in evaluator.ordered
    ordered = isinstance(factor, Call) and factor.func == "ordered"
    if isinstance(factor, Var) and factor.name in evaluator.data.columns:
        dtype = evaluator.data[factor.name].dtype
        ordered = isinstance(dtype, pd.CategoricalDtype) and bool(dtype.ordered)
    if ordered:
        evaluator.ordered.add(str(factor))
    return ordered
