"""Per-level sufficient statistics of a Gaussian model with one grouping factor.

For rows i with level l(i), fixed-effect row x_i (p), group-effect row z_i (Q:
the columns of every group term of that factor side by side) and response y_i:

.. math::
   G_l = \\sum_{i \\in l} z_i z_i^T, \\quad D_l = \\sum_{i \\in l} z_i x_i^T, \\quad
   c_l = \\sum_{i \\in l} z_i y_i,

and the global X^T X, X^T y, y^T y and n. After this one pass, the Gaussian
marginal likelihood costs O(levels · Q² · p) whatever the number of rows, and
the statistics take O(levels · Q · (Q + p)) memory.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .build import Design


class SuffStats(NamedTuple):
    """Sums over rows: global (``n, yty, Xty, XtX``) and per level (``G, D, c``)."""

    n: np.ndarray
    yty: np.ndarray
    Xty: np.ndarray
    XtX: np.ndarray
    G: np.ndarray  # (levels, Q, Q)
    D: np.ndarray  # (levels, Q, p)
    c: np.ndarray  # (levels, Q)

    def __add__(self, other: "SuffStats") -> "SuffStats":  # partial sums combine by addition
        return SuffStats(*(a + b for a, b in zip(self, other)))


def grouping_factors(design: Design) -> tuple[str, ...]:
    """The distinct grouping factors of the design, in order."""
    return tuple(dict.fromkeys(g.name for g in design.groups))


def stacked_z(design: Design) -> tuple[np.ndarray, np.ndarray]:
    """``refs`` and the side-by-side ``z`` of a design whose group terms share one factor."""
    if len(grouping_factors(design)) != 1:
        raise ValueError("sufficient statistics need exactly one grouping factor")
    return design.groups[0].refs, np.concatenate([g.z for g in design.groups], axis=1)


def sufficient_statistics(X: np.ndarray, y: np.ndarray, refs: np.ndarray, z: np.ndarray,
                          num_levels: int) -> SuffStats:
    """One vectorised pass: weighted bincounts, never a dense rows × levels matrix."""
    p, q = X.shape[1], z.shape[1]

    def per_level(weights: np.ndarray) -> np.ndarray:
        return np.bincount(refs, weights=weights, minlength=num_levels)

    G = np.empty((num_levels, q, q))
    for j in range(q):
        for k in range(j + 1):
            G[:, j, k] = G[:, k, j] = per_level(z[:, j] * z[:, k])
    D = np.stack([np.stack([per_level(z[:, j] * X[:, k]) for k in range(p)], axis=-1)
                  for j in range(q)], axis=1) if p else np.zeros((num_levels, q, 0))
    c = np.stack([per_level(z[:, j] * y) for j in range(q)], axis=-1)
    return SuffStats(np.asarray(float(len(y))), np.asarray(float(y @ y)), X.T @ y, X.T @ X, G, D, c)


def design_statistics(design: Design) -> SuffStats:
    """Sufficient statistics of an in-memory design with one grouping factor."""
    refs, z = stacked_z(design)
    return sufficient_statistics(design.X, design.y, refs, z, design.groups[0].num_levels)
