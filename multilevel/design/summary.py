"""Moments and cross-products of the data, enough for default priors and starting points.

Everything here is a sum over rows, so it can be computed where the data live
(per partition) and combined by addition; nothing needs the rows themselves.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .build import Design


class DataSummary(NamedTuple):
    """Row sums: of y, y², each column of X, Xᵀ X, Xᵀ y, and of each group term's z and z²."""

    n: float
    y_sum: float
    y_sumsq: float
    X_sum: np.ndarray
    XtX: np.ndarray
    Xty: np.ndarray
    z_sum: tuple[np.ndarray, ...]
    z_sumsq: tuple[np.ndarray, ...]

    def __add__(self, other: "DataSummary") -> "DataSummary":
        return DataSummary(self.n + other.n, self.y_sum + other.y_sum, self.y_sumsq + other.y_sumsq,
                           self.X_sum + other.X_sum, self.XtX + other.XtX, self.Xty + other.Xty,
                           tuple(a + b for a, b in zip(self.z_sum, other.z_sum)),
                           tuple(a + b for a, b in zip(self.z_sumsq, other.z_sumsq)))

    @property
    def y_mean(self) -> float:
        return self.y_sum / self.n

    @property
    def y_sd(self) -> float:
        return _sd(self.n, self.y_sum, self.y_sumsq)

    @property
    def X_mean(self) -> np.ndarray:
        return self.X_sum / self.n

    @property
    def X_sd(self) -> np.ndarray:
        return _sd(self.n, self.X_sum, np.diag(self.XtX))

    def z_sd(self, term: int) -> np.ndarray:
        return _sd(self.n, self.z_sum[term], self.z_sumsq[term])


def _sd(n: float, total, total_sq):
    """Sample sd from sums (0 for a single row or a constant column)."""
    if n < 2:
        return np.zeros_like(np.asarray(total, dtype=float))
    var = (np.asarray(total_sq, dtype=float) - np.asarray(total, dtype=float) ** 2 / n) / (n - 1)
    return np.sqrt(np.maximum(var, 0.0))


def summarise(design: Design) -> DataSummary:
    """The summary of an in-memory design with a response."""
    X, y = design.X, design.y
    return DataSummary(float(len(y)), float(y.sum()), float(y @ y), X.sum(axis=0), X.T @ X, X.T @ y,
                       tuple(g.z.sum(axis=0) for g in design.groups),
                       tuple((g.z ** 2).sum(axis=0) for g in design.groups))
