"""Sufficient statistics: per-row weights.

Integer likelihood weights give exactly the statistics of the rows repeated that
often (so weighted Gaussian models reuse the collapsed and Gibbs algebra), for
one factor and for an inner factor nested in an outer one.
"""

from __future__ import annotations

import numpy as np
import pytest

from multilevel.design.suffstats import sufficient_statistics

pytestmark = pytest.mark.unit


def test_integer_weights_equal_repeated_rows():
    rng = np.random.default_rng(0)
    n = 60
    outer = rng.integers(0, 4, n)
    inner = outer * 3 + rng.integers(0, 3, n)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = rng.normal(size=n)
    z_outer, z_inner = np.column_stack([np.ones(n), X[:, 1]]), np.ones((n, 1))
    weights = rng.integers(0, 4, n)
    weighted = sufficient_statistics(X, y, [(outer, z_outer, 4), (inner, z_inner, 12)], weights)
    rows = np.repeat(np.arange(n), weights)
    repeated = sufficient_statistics(X[rows], y[rows], [(outer[rows], z_outer[rows], 4),
                                                        (inner[rows], z_inner[rows], 12)])
    for a, b in zip((weighted.n, weighted.yty, weighted.Xty, weighted.XtX),
                    (repeated.n, repeated.yty, repeated.Xty, repeated.XtX)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    for a, b in zip(weighted.levels, repeated.levels):
        for name in ("G", "D", "c"):
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(weighted.levels[1].H, repeated.levels[1].H, rtol=1e-12, atol=1e-12)
