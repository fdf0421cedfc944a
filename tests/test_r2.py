"""``fit.r2``: the Bayesian R² of Gelman, Goodrich, Gabry & Vehtari (2019), and LOO-R².

Unit tests build fits from draws the test chose (``known_fits``: no sampler runs),
compute the expected response of every row and draw with numpy from those draws,
and check that ``fit.r2`` is the R² of the paper draw by draw (to 1e-10):
``var(mu) / (var(mu) + sigma²)`` for a Gaussian model, ``var(mu) / (var(mu) +
var(y - mu))`` for the others, variances over rows with divisor n - 1.

One statistical test fits a regression of 5,000 rows (true R² 0.5) and compares the
posterior mean R² with the classical R² of least squares, and LOO-R² with the
classical leave-one-out R² (from the PRESS residuals). The tolerances are stated
with the test.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special

import multilevel as ml
from agreement import z_limit
from known_fits import known_fit, stacked
from multilevel.cli import main
from multilevel.results import assemble, r2
from multilevel.results.diagnostics import diagnostics, ess_mean


def grouped(seed: int = 0, rows: int = 90) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    trials = rng.integers(1, 12, rows)
    return pd.DataFrame({"y": 1 + x + rng.normal(size=rows), "x": x, "g": rng.choice(["a", "b", "c", "d"], rows),
                         "count": rng.poisson(np.exp(0.5 + 0.3 * x)), "n": trials,
                         "s": rng.binomial(trials, special.expit(0.2 + 0.5 * x)), "hit": rng.integers(0, 2, rows)})


def direct_eta(fit: ml.Fit, data: pd.DataFrame, prefix: str = "") -> np.ndarray:
    """``Intercept + x b + r_g[level]`` of every draw and row, from the draws, as ``(draws, rows)``."""
    levels = list(fit.idata.posterior[f"{prefix}Intercept|g"].coords["g"].values)
    codes = np.array([levels.index(level) for level in data["g"]])
    return (stacked(fit, f"{prefix}Intercept")[:, None] + stacked(fit, f"{prefix}x")[:, None] * data["x"].to_numpy()
            + stacked(fit, f"{prefix}Intercept|g")[:, codes])


def paper_r2(mu: np.ndarray, residual_variance: np.ndarray) -> np.ndarray:
    explained = mu.var(axis=1, ddof=1)
    return explained / (explained + residual_variance)


# -- R² draw by draw ------------------------------------------------------------------------------
@pytest.mark.unit
def test_gaussian_r2_is_the_variance_of_the_means_over_itself_plus_sigma_squared(tmp_path):
    data = grouped()
    fit = ml.load(known_fit("y ~ x + (1 | g)", data, means={"Intercept": 1.0, "x": 1.0}).save(tmp_path / "g.nc"))
    expected = paper_r2(direct_eta(fit, data), stacked(fit, "sigma") ** 2)
    draws = fit.r2(summary=False)
    assert list(draws.columns) == ["R2"] and len(draws) == 800
    np.testing.assert_allclose(draws["R2"], expected, rtol=1e-10)
    table = fit.r2()
    assert list(table.index) == ["R2"] and list(table.columns) == ["estimate", "error", "q2.5", "q97.5"]
    np.testing.assert_allclose(table.iloc[0], [expected.mean(), expected.std(ddof=1),
                                               *np.quantile(expected, [0.025, 0.975])], rtol=1e-10)
    assert list(fit.r2(prob=0.5).columns) == ["estimate", "error", "q25", "q75"]


@pytest.mark.unit
def test_a_predicted_sigma_gives_the_mean_of_sigma_squared_over_rows():
    data = grouped()
    fit = known_fit(["y ~ x + (1 | g)", "sigma ~ x"], data, means={"x": 1.0})
    sigma = np.exp(stacked(fit, "sigma_Intercept")[:, None] + stacked(fit, "sigma_x")[:, None] * data["x"].to_numpy())
    expected = paper_r2(direct_eta(fit, data), np.mean(sigma ** 2, axis=1))
    np.testing.assert_allclose(fit.r2(summary=False)["R2"], expected, rtol=1e-10)


@pytest.mark.unit
@pytest.mark.parametrize("formula, family, mean", [
    ("count ~ x + (1 | g)", "poisson", lambda eta, data: np.exp(eta)),
    ("hit ~ x + (1 | g)", "bernoulli", lambda eta, data: special.expit(eta)),
    ("s | trials(n) ~ x + (1 | g)", "binomial", lambda eta, data: data["n"].to_numpy() * special.expit(eta)),
])
def test_other_families_use_the_variance_of_the_residuals(formula, family, mean):
    data = grouped()
    fit = known_fit(formula, data, family=family, means={"x": 0.5})
    mu = mean(direct_eta(fit, data), data)
    y = data[formula.split()[0]].to_numpy()  # binomial: counts of successes, as the mean
    expected = paper_r2(mu, (y - mu).var(axis=1, ddof=1))
    draws = fit.r2(summary=False)["R2"].to_numpy()
    np.testing.assert_allclose(draws, expected, rtol=1e-10)
    assert np.all((draws > 0) & (draws < 1))


@pytest.mark.unit
def test_r2_blocks_of_draws_give_the_r2_of_all_draws_at_once(monkeypatch):
    data = grouped()
    fit = known_fit("count ~ x + (1 | g)", data, family="poisson")
    whole = fit.r2(summary=False)
    monkeypatch.setattr(r2, "CHUNK_VALUES", 7 * len(data))  # blocks of 7 draws
    assert len(r2.draw_blocks(800, len(data))) == 115
    pd.testing.assert_frame_equal(fit.r2(summary=False), whole)


# -- what r2 needs --------------------------------------------------------------------------------
@pytest.mark.unit
def test_a_fit_without_its_rows_has_no_r2():
    dd = pytest.importorskip("dask.dataframe")
    data = grouped()[["y", "x", "g"]]
    fit = known_fit("y ~ x + (1 | g)", dd.from_pandas(data, npartitions=2))
    with pytest.raises(ml.DataError, match="r2 needs the fitted data, and this fit has none .*Dask"):
        fit.r2()


@pytest.mark.unit
def test_loo_r2_needs_the_stored_log_likelihood(monkeypatch):
    monkeypatch.setattr(assemble, "MAX_LOGLIK_VALUES", 0)
    fit = known_fit("y ~ x + (1 | g)", grouped())
    assert fit.r2().shape == (1, 4)
    with pytest.raises(ml.DataError, match="LOO-R² needs the pointwise log-likelihood"):
        fit.r2(loo=True)


@pytest.mark.unit
def test_loo_r2_is_one_minus_the_bootstrap_variance_ratio_of_the_loo_residuals():
    rng = np.random.default_rng(5)
    y, mu_loo = rng.normal(size=40), rng.normal(size=40)
    draws = r2.loo_r2(mu_loo, y, num_draws=300, seed=9)
    weights = np.random.default_rng(9).exponential(1.0, (300, 40))
    weights /= weights.sum(axis=1, keepdims=True)

    def weighted_var(v):
        mean = weights @ v
        return 40 / 39 * np.sum(weights * (v[None, :] - mean[:, None]) ** 2, axis=1)

    np.testing.assert_allclose(draws, np.clip(1 - weighted_var(mu_loo - y) / weighted_var(y), -1, 1), rtol=1e-10)


# -- a large regression -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def regression():
    """y = 1 + 0.6 x1 + 0.8 x2 + e, x ~ N(0, I), e ~ N(0, 1): the signal and the noise both
    have variance 1, so the true R² is 0.5; 5,000 rows."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(5000, 2))
    data = pd.DataFrame({"y": 1 + x @ np.array([0.6, 0.8]) + rng.normal(size=5000), "x1": x[:, 0], "x2": x[:, 1]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.ConvergenceWarning)  # 600 draws: bulk ESS of sigma ~ 250
        fit = ml.fit("y ~ x1 + x2", data, chains=2, draws=300, warmup=300, seed=3, progress=False)
    return fit, data


def least_squares(data: pd.DataFrame) -> tuple[float, float]:
    """The classical R² = 1 - SSE / SST, and the leave-one-out R² = 1 - var(PRESS residuals) / var(y)."""
    X = np.column_stack([np.ones(len(data)), data[["x1", "x2"]].to_numpy()])
    y = data["y"].to_numpy()
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    residuals = y - X @ beta
    leverage = np.einsum("ij,ji->i", X, np.linalg.solve(X.T @ X, X.T))
    press = residuals / (1 - leverage)
    return 1 - residuals @ residuals / np.sum((y - y.mean()) ** 2), 1 - press.var(ddof=1) / y.var(ddof=1)


def test_the_r2_of_a_large_regression_is_the_least_squares_r2(regression):
    """The posterior of R² is ~ normal around the R² at the least-squares estimates
    (sd ~ 0.009 at n = 5,000). Its mean differs from the least-squares R² by a Monte Carlo
    error (at most ``z_limit`` MCSEs of the mean: false alarm 1e-3) and a systematic
    O((p + 1) / n) term (the posterior spread of b adds to var(mu), and the posterior mean
    of sigma² is SSE / (n - p - 2), not SSE / (n - 1): about 3e-4 here, 0.03 posterior
    sds), allowed as 0.1 posterior sd."""
    fit, data = regression
    draws = fit.r2(summary=False)["R2"].to_numpy()
    classical, _ = least_squares(data)
    sd, mcse = draws.std(ddof=1), diagnostics(draws.reshape(2, 300, 1))["mcse_mean"][0]
    tolerance = z_limit(1, two_fits=False) * mcse + 0.1 * sd
    print(f"R²: least squares {classical:.4f}, posterior mean {draws.mean():.4f} (sd {sd:.4f}, MCSE {mcse:.5f}), "
          f"tolerance {tolerance:.4f}")
    assert abs(classical - 0.5) < 0.03   # this data set: 4 sds of the R² of 5,000 rows
    assert abs(draws.mean() - classical) <= tolerance


def test_loo_r2_of_a_large_regression_is_the_leave_one_out_r2_of_least_squares(regression, tmp_path):
    """LOO-R² replaces mu by each row's leave-one-out mean; for a regression that is the
    least-squares prediction without the row (the PRESS residual), up to the prior (weak at
    n = 5,000) and the importance-sampling error (the posterior sd of a row's mean over
    sqrt(600) draws: ~1e-3 of sigma per row, ~1e-5 on R²). The Bayesian bootstrap's mean
    differs from the plug-in value by O(1 / n). Allowed: 0.1 of the bootstrap sd (~0.01)."""
    fit, data = regression
    path = tmp_path / "regression.nc"
    fit.save(path)
    table = ml.load(path).r2(loo=True)
    _, classical_loo = least_squares(data)
    print(table.to_string(), f"\nleast-squares LOO R² {classical_loo:.4f}")
    assert list(table.index) == ["loo_R2"]
    assert abs(table.loc["loo_R2", "estimate"] - classical_loo) <= 0.1 * table.loc["loo_R2", "error"]
    assert table.loc["loo_R2", "estimate"] < fit.r2().loc["R2", "estimate"]


# -- the command line ---------------------------------------------------------------------------------
@pytest.mark.unit
def test_the_cli_prints_r2_of_a_saved_fit_and_reports_errors(tmp_path, capsys):
    path = tmp_path / "fit.nc"
    fit = known_fit("y ~ x + (1 | g)", grouped(), means={"x": 1.0})
    fit.save(path)
    assert main(["r2", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["estimate", "error", "q2.5", "q97.5"] and lines[1].startswith("R2 ")
    assert float(lines[1].split()[1]) == pytest.approx(fit.r2().loc["R2", "estimate"], abs=1e-4)
    assert main(["r2", str(path), "--loo", "--prob", "0.9"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["estimate", "error", "q5", "q95"]
    assert main(["r2", str(path), "--prob", "2"]) == 2
    assert "prob must be between 0 and 1" in capsys.readouterr().err


@pytest.mark.unit
def test_an_ordinal_model_warns_that_its_categories_are_taken_as_numbers():
    data = grouped().assign(rating=lambda d: np.clip(np.round(d["y"]), 0, 2).astype(int) + 1)
    fit = known_fit("rating ~ x + (1 | g)", data, family="cumulative",
                    means={"Intercept[1]": 0.5, "Intercept[2]": 2.0, "x": 0.5})
    with pytest.warns(UserWarning, match="expected category numbers of an ordinal model as numbers"):
        draws = fit.r2(summary=False)["R2"].to_numpy()
    assert np.all((draws > 0) & (draws < 1))


@pytest.mark.unit
def test_ess_mean_is_the_ess_behind_the_mcse_of_the_mean():
    values = np.random.default_rng(1).normal(size=(2, 300, 7)).cumsum(axis=1)  # random walks: ESS of a few
    mcse = diagnostics(values)["mcse_mean"]
    np.testing.assert_allclose(ess_mean(values), values.reshape(600, 7).var(axis=0, ddof=1) / mcse ** 2, rtol=1e-10)
