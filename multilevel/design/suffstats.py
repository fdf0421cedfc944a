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

from .build import Design, GroupData


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


def grouping_factors(design: Design) -> tuple[str, ...]:
    """The distinct grouping factors of the design, in order."""
    return tuple(dict.fromkeys(g.name for g in design.groups))


def factor_columns(design: Design, factor: str) -> tuple[np.ndarray, np.ndarray, int]:
    """``refs``, the side-by-side ``z`` of every term of ``factor``, and its number of levels."""
    terms = [g for g in design.groups if g.name == factor]
    return terms[0].refs, np.concatenate([g.z for g in terms], axis=1), terms[0].num_levels


def nesting_order(design: Design) -> tuple[str, ...] | None:
    """The grouping factors from outermost to innermost if they form a nested chain
    (every level of each inner factor lies within one level of the factor outside it),
    else None. One factor is a chain of one; none is the empty chain."""
    first_term = {}
    for g in design.groups:
        first_term.setdefault(g.name, g)
    factors = sorted(first_term.values(), key=lambda g: g.num_levels)
    if not all(nested_in(inner, outer) for outer, inner in zip(factors, factors[1:])):
        return None
    return tuple(g.name for g in factors)


def nested_in(inner: GroupData, outer: GroupData) -> bool:
    """Whether every level of ``inner`` lies within one level of ``outer`` (O(rows))."""
    parent = np.empty(inner.num_levels, dtype=outer.refs.dtype)
    parent[inner.refs] = outer.refs
    return bool(np.array_equal(parent[inner.refs], outer.refs))


def nested_blocks(design: Design) -> tuple[tuple[str, ...], ...]:
    """The grouping factors in blocks: an inner factor paired with a factor it is nested
    in (outer first), every other factor alone. Blocks are what the Gibbs sampler
    draws jointly; for lecturers nested in departments, crossed with students,
    ``((dept, lecturer), (student,))``."""
    first_term = {}
    for g in design.groups:
        first_term.setdefault(g.name, g)
    factors = sorted(first_term.values(), key=lambda g: -g.num_levels)
    blocks, taken = [], set()
    for inner in factors:
        if inner.name in taken:
            continue
        taken.add(inner.name)
        outer = next((g for g in reversed(factors) if g.name not in taken and g.num_levels < inner.num_levels
                      and nested_in(inner, g)), None)
        if outer is None:
            blocks.append((inner.name,))
        else:
            taken.add(outer.name)
            blocks.append((outer.name, inner.name))
    return tuple(blocks)


def _per_level(refs: np.ndarray, num_levels: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``out[l, j, k] = sum_{i in l} a[i, j] b[i, k]`` by weighted bincounts."""
    out = np.empty((num_levels, a.shape[1], b.shape[1]))
    for j in range(a.shape[1]):
        for k in range(b.shape[1]):
            out[:, j, k] = np.bincount(refs, weights=a[:, j] * b[:, k], minlength=num_levels)
    return out


def sufficient_statistics(X: np.ndarray, y: np.ndarray,
                          factors: list[tuple[np.ndarray, np.ndarray, int]]) -> SuffStats:
    """One vectorised pass over the rows: weighted bincounts, never a rows × levels matrix.

    ``factors`` holds ``(refs, z, num_levels)`` per factor, outermost first; each
    inner factor must be nested in the one before it.
    """
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
    return SuffStats(np.asarray(float(len(y))), np.asarray(float(y @ y)), X.T @ y, X.T @ X, tuple(levels))


def design_statistics(design: Design, order: tuple[str, ...]) -> SuffStats:
    """Sufficient statistics of an in-memory design, factors in nesting ``order``."""
    return sufficient_statistics(design.X, design.y, [factor_columns(design, f) for f in order])
