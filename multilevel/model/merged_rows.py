r"""Identical rows merged into one weighted row: an exact smaller likelihood.

Rows are exchangeable given the parameters, so ``k`` rows that agree in everything the
likelihood reads (response, fixed-effect columns, group levels and effect columns,
offset, trials, censoring and truncation) contribute ``k`` times the log-likelihood of
one of them; with row weights, ``Σ w_i`` times it:

.. math:: \sum_{i \in \text{pattern}} w_i \log p(y_i \mid \eta_i, \theta)
          = \Bigl(\sum_{i \in \text{pattern}} w_i\Bigr) \log p(y_p \mid \eta_p, \theta).

A logistic model with categorical predictors has at most twice as many distinct rows
as covariate patterns, so its gradient costs that many rows, not the data's. The
posterior is unchanged (the log density is equal, not approximately equal); the
pointwise log-likelihood, LOO and predictions still use the data's rows.

Rows with known standard errors (``se()``) are not merged: the centring rule reads
their median variance over rows.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..design.build import Design

#: Rows are merged only when this fraction of them or fewer remain.
MERGE_BELOW = 0.8


def merge_identical_rows(design: Design) -> Design:
    """``design`` with each set of identical rows replaced by its first row, weighted by
    the set's summed weights (1 per row without ``weights()``); ``design`` itself when
    merging keeps more than :data:`MERGE_BELOW` of the rows, or it has ``se()`` or no response.

    The merged rows keep the order of their first occurrences, so the result does not
    depend on how the rows were sorted beyond that.
    """
    if design.y is None or design.se is not None or design.num_rows < 2:
        return design
    n = design.num_rows
    parts = [design.X, design.y, design.offset, design.trials]
    parts += [a for g in design.groups for a in (g.refs, g.z)]
    if design.bounds is not None:
        parts += list(design.bounds)
    key = np.column_stack([np.asarray(a, dtype=np.float64).reshape(n, -1) for a in parts if a is not None])
    key = np.ascontiguousarray(key)
    rows_as_bytes = key.view(np.dtype((np.void, key.dtype.itemsize * key.shape[1]))).ravel()
    _, first, inverse = np.unique(rows_as_bytes, return_index=True, return_inverse=True)
    if len(first) > MERGE_BELOW * n:
        return design
    order = np.argsort(first, kind="stable")
    kept = first[order]
    pattern = np.empty(len(order), dtype=np.int64)
    pattern[order] = np.arange(len(order))
    weights = np.ones(n) if design.weights is None else np.asarray(design.weights, dtype=np.float64)
    merged = np.bincount(pattern[inverse.ravel()], weights, minlength=len(kept))
    take = lambda a: None if a is None else np.asarray(a)[kept]  # noqa: E731
    return replace(design, X=design.X[kept], y=take(design.y), offset=take(design.offset),
                   trials=take(design.trials), weights=merged,
                   groups=tuple(replace(g, refs=g.refs[kept], z=g.z[kept]) for g in design.groups),
                   bounds=None if design.bounds is None else type(design.bounds)(*map(take, design.bounds)),
                   row_index=None, kept_rows=None)
