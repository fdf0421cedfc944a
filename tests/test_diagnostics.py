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


def test_average_ranks_equal_scipy_with_ties_and_nan():
    from scipy.stats import rankdata

    from multilevel.results.diagnostics import _average_ranks
    rows = np.random.default_rng(3).integers(0, 6, size=(5, 40)).astype(float)
    rows[4, 7] = np.nan
    expected = rankdata(rows, method="average", axis=1)
    np.testing.assert_array_equal(_average_ranks(rows), expected)
