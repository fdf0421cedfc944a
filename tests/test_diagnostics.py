"""The vectorised diagnostics equal ArviZ's summary on the same draws.

ArviZ's ``summary(kind="diagnostics")`` is the reference implementation of
Vehtari et al. (2021); ours computes the same estimators for many parameters at
once, so the two must agree to rounding on any draws: independent, strongly
autocorrelated, drifting between chains, nearly constant, discrete.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

from multilevel.results.diagnostics import diagnostics
from multilevel.results.summary import column_quantiles

#: Pure unit and property tests: no sampler runs (``make test-unit``).
pytestmark = pytest.mark.unit


def draws(seed: int, chains: int, num_draws: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(chains, num_draws, 6))
    out = noise.copy()
    for t in range(1, num_draws):  # AR(1) with rho 0.9 in column 1, 0.99 in column 2
        out[:, t, 1] = 0.9 * out[:, t - 1, 1] + noise[:, t, 1]
        out[:, t, 2] = 0.99 * out[:, t - 1, 2] + noise[:, t, 2]
    out[:, :, 3] += np.arange(chains)[:, None]            # chains disagree
    out[:, :, 4] = np.round(out[:, :, 4])                  # ties in the ranks
    out[:, :, 5] = -np.abs(out[:, :, 5]) ** 3              # heavy, skewed
    return out


@pytest.mark.parametrize("seed, chains, num_draws", [(0, 4, 1000), (1, 2, 101), (2, 4, 7), (3, 1, 400)])
def test_diagnostics_equal_arviz(seed, chains, num_draws):
    values = draws(seed, chains, num_draws)
    ours = diagnostics(values)
    reference = az.summary(az.from_dict(posterior={"x": values}), kind="diagnostics", round_to="none")
    for name in ("mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat"):
        np.testing.assert_allclose(ours[name], reference[name].to_numpy(), rtol=1e-8, err_msg=name)


def test_constant_parameter_has_full_ess_and_too_few_draws_give_nan():
    values = np.zeros((2, 50, 1))
    assert diagnostics(values)["ess_bulk"][0] == 100
    assert np.isnan(diagnostics(np.ones((2, 3, 2)))["r_hat"]).all()


def test_normal_scores_of_sorted_rows_equal_those_of_scipy_ranks_with_ties_and_nan():
    from scipy.special import ndtri
    from scipy.stats import rankdata

    from multilevel.results.diagnostics import _normal_scores
    rows = np.sort(np.random.default_rng(3).integers(0, 6, size=(5, 40)).astype(float), axis=1)
    rows[1] = np.arange(40.0)
    rows[4, -1] = np.nan
    expected = ndtri((rankdata(rows, method="average", axis=1) - 3 / 8) / (40 + 1 / 4))
    expected[4] = np.nan
    np.testing.assert_array_equal(_normal_scores(rows, np.isnan(rows[:, -1])), expected)


@pytest.mark.parametrize("size", [4, 7, 1000, 4000])
def test_sorted_quantiles_equal_numpy_exactly(size):
    from multilevel.results.diagnostics import sorted_quantiles
    rows = np.random.default_rng(size).standard_cauchy(size=(6, size))
    rows[5, 1] = np.nan
    probs = (0.025, 0.05, 0.5, 0.95, 0.975)
    ours = sorted_quantiles(np.sort(rows, axis=1), probs)
    np.testing.assert_array_equal(np.array(ours), np.quantile(rows, probs, axis=1))


def test_column_quantiles_are_numpys_on_every_block():
    rng = np.random.default_rng(3)
    flat = rng.normal(size=(400, 2500))
    flat[:, 7] = 1.5                       # a constant column
    flat[::3, 1100] = flat[0, 1100]        # ties
    probs = [0.025, 0.5, 0.975]
    np.testing.assert_array_equal(column_quantiles(flat, probs), np.quantile(flat, probs, axis=0))
