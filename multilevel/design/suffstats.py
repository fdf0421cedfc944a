"""Per-level sufficient statistics of a Gaussian model with one grouping factor,
or with an inner factor nested in an outer one (``(1 | a/b)``).

For a factor with levels l, rows i with level l(i), fixed-effect row x_i (p),
group-effect row z_i (q: the columns of every group term of that factor side
by side) and response y_i:

.. math::
   G_l = \\sum_{i \\in l} z_i z_i^T, \\quad D_l = \\sum_{i \\in l} z_i x_i^T, \\quad
   c_l = \\sum_{i \\in l} z_i y_i,

and, for an inner factor, the cross-products with its parent's columns
``H_l = sum_{i in l} z_i (z^{parent}_i)^T`` and the parent level of each level;
plus the global X^T X, X^T y, y^T y and n. After this one pass, the Gaussian
marginal likelihood costs O(levels · q² · p) whatever the number of rows.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .build import Design


class LevelStats(NamedTuple):
    """Sums over the rows of each level of one grouping factor.

    ``H`` and ``parent`` are None for the outermost factor.
    """

    G: np.ndarray  # (levels, q, q)
    D: np.ndarray  # (levels, q, p)
    c: np.ndarray  # (levels, q)
    H: np.ndarray | None = None  # (levels, q, q_parent)
    parent: np.ndarray | None = None  # (levels,) index of the parent level


class SuffStats(NamedTuple):
    """Global sums and per-level sums for each factor, outermost first."""

    n: np.ndarray
    yty: np.ndarray
    Xty: np.ndarray
    XtX: np.ndarray
    levels: tuple[LevelStats, ...]


def factor_columns(design: Design, factor: str) -> tuple[np.ndarray, np.ndarray, int]:
    """``refs``, the side-by-side ``z`` of every term of ``factor``, and its number of levels."""
    terms = [g for g in design.groups if g.name == factor]
    return terms[0].refs, np.concatenate([g.z for g in terms], axis=1), terms[0].num_levels


def _per_level(refs: np.ndarray, num_levels: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``out[l, j, k] = sum_{i in l} a[i, j] b[i, k]`` by weighted bincounts."""
    out = np.empty((num_levels, a.shape[1], b.shape[1]))
    for j in range(a.shape[1]):
        for k in range(b.shape[1]):
            out[:, j, k] = np.bincount(refs, weights=a[:, j] * b[:, k], minlength=num_levels)
    return out


def sufficient_statistics(X: np.ndarray, y: np.ndarray, factors: list[tuple[np.ndarray, np.ndarray, int]],
                          weights: np.ndarray | None = None) -> SuffStats:
    """One vectorised pass over the rows: weighted bincounts, never a rows × levels matrix.

    ``factors`` holds ``(refs, z, num_levels)`` per factor, outermost first; each
    inner factor must be nested in the one before it. ``weights``: per-row
    likelihood weights ``w_i`` (each row's Gaussian log-likelihood times ``w_i``,
    MixedModels.jl's ``wtz``): every sum becomes ``sum_i w_i (...)`` and ``n`` is
    ``sum_i w_i``, so integer weights give the statistics of rows repeated that
    often, and Pólya-Gamma or IRLS weights reuse the same exact algebra.
    """
    if weights is not None:
        root = np.sqrt(np.asarray(weights, dtype=float))
        X, y = X * root[:, None], y * root
        factors = [(refs, z * root[:, None], num_levels) for refs, z, num_levels in factors]
    levels = []
    for k, (refs, z, num_levels) in enumerate(factors):
        G = _per_level(refs, num_levels, z, z)
        D = _per_level(refs, num_levels, z, X)
        c = _per_level(refs, num_levels, z, y[:, None])[:, :, 0]
        H = parent = None
        if k > 0:
            parent_refs, parent_z, _ = factors[k - 1]
            H = _per_level(refs, num_levels, z, parent_z)
            parent = np.full(num_levels, -1, dtype=np.int32)  # -1: no rows (in this partition)
            parent[refs] = parent_refs
        levels.append(LevelStats(G, D, c, H, parent))
    n = float(len(y)) if weights is None else float(np.sum(weights))
    return SuffStats(np.asarray(n), np.asarray(float(y @ y)), X.T @ y, X.T @ X, tuple(levels))


def design_statistics(design: Design, order: tuple[str, ...], weights: np.ndarray | None = None) -> SuffStats:
    """Sufficient statistics of an in-memory design, factors in nesting ``order``, weighted
    by ``weights`` (see :func:`sufficient_statistics`)."""
    return sufficient_statistics(design.X, design.y, [factor_columns(design, f) for f in order], weights)
