"""Model-matrix columns for a sum of terms (R's coding rules).

A numeric factor contributes its values; a categorical factor contributes
indicator columns. Within a term, a categorical factor is coded against its
first level (treatment contrasts, ``x[level]`` for the other levels) when the
term without that factor is already in the model (the intercept counts as the
empty term); otherwise it gets one indicator per level. So ``y ~ cheese`` has
``Intercept, cheese[B], cheese[C], cheese[D]`` and ``y ~ 0 + cheese`` has
``cheese[A], ..., cheese[D]``: both full rank.
"""

from __future__ import annotations

from itertools import product

import numpy as np
import pandas as pd

from ..formula.spec import Term, Terms
from .columns import Evaluator


def model_columns(terms: Terms, evaluator: Evaluator) -> tuple[np.ndarray, tuple[str, ...]]:
    """The ``n × p`` matrix and column names of ``terms`` on the evaluator's data."""
    n = len(evaluator.data)
    present = set(terms.terms) | ({()} if terms.intercept else set())
    blocks, names = [], []
    if terms.intercept:
        blocks.append(np.ones((n, 1)))
        names.append("Intercept")
    for term in terms.terms:
        block, block_names = _term_columns(term, present, evaluator)
        blocks.append(block)
        names.extend(block_names)
    matrix = np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0))
    return matrix, tuple(names)


def _term_columns(term: Term, present: set[Term], evaluator: Evaluator):
    """Columns of one term: the product of its factors' codings."""
    parts: list[list[tuple[str, np.ndarray]]] = []
    for factor in term:
        value = evaluator.evaluate(factor)
        if isinstance(value, pd.Categorical):
            reduced = tuple(f for f in term if f != factor) in present
            levels = list(value.categories)[1:] if reduced else list(value.categories)
            codes = value.codes
            parts.append([(f"{factor}[{level}]", (codes == value.categories.get_loc(level)).astype(float))
                          for level in levels])
        else:
            parts.append([(str(factor), np.asarray(value, dtype=np.float64))])
    columns, names = [], []
    for combo in product(*parts):
        names.append(":".join(name for name, _ in combo))
        col = combo[0][1]
        for _, values in combo[1:]:
            col = col * values
        columns.append(col)
    return np.stack(columns, axis=1), names
