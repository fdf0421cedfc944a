"""K-fold cross-validation: ``fit.kfold`` and ``ml.compare(..., ic="kfold")``.

Specifications:

* leave-one-group-out is refitting by hand: each fold's refit is ``ml.fit`` on the
  training rows with the same priors, settings and seed (so the same draws), and a
  held-out row's elpd is ``log mean_s p(y_i | θ_s)``, the new group's effect drawn
  per draw from ``N(0, sd_s²)``; checked to floating-point tolerance against numpy;
* the refits get the fit's priors exactly, data-scaled defaults included, not
  defaults rescaled to the training rows;
* the log-likelihood of rows with their response equals the stored pointwise
  log-likelihood at the fitted rows, for every kind of family;
* on a well-behaved model, 10-fold elpd agrees with PSIS-LOO's (tolerance below);
* wrong data, unknown group columns and impossible K are DataErrors saying what to do;
* ``ml.compare`` ranks K-fold results and reports each difference with its standard error.
"""

from __future__ import annotations

import types
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import logsumexp

import multilevel as ml
from multilevel.cli import main
from multilevel.results import criteria
from multilevel.results.kfold import (KFold, compare_kfold, fitted_rows, log_likelihood_draws, make_folds,
                                      refit_priors)
from multilevel.results.posterior import stack_draws

FORMULA = "y ~ x + (1 | g)"
PRIORS = {"Intercept": ml.Normal(0, 5), "b": ml.Normal(0, 2), "sigma": ml.HalfStudentT(3, 2),
          "sd": ml.HalfStudentT(3, 1)}
SETTINGS = dict(chains=2, draws=200, warmup=200, seed=3)


def quiet(function, *args, **kwargs):
    """Call without warnings (short chains warn of their ESS; that is not under test here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def grouped_data(seed: int, groups: int, per_group: int, slope: float = 0.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    x = rng.normal(size=g.size)
    y = 1.0 + slope * x + 0.7 * rng.normal(size=groups)[g] + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g]})


@pytest.fixture(scope="module")
def small():
    """5 groups x 10 rows, the model fitted with explicit priors for every class."""
    data = grouped_data(1, groups=5, per_group=10)
    return data, quiet(ml.fit, FORMULA, data, priors=PRIORS, progress=False, **SETTINGS)


@pytest.fixture(scope="module")
def logo(small):
    data, fit = small
    return quiet(fit.kfold, data, group="g")


def test_leave_one_group_out_equals_refits_by_hand(small, logo):
    data, fit = small
    num_draws = SETTINGS["chains"] * SETTINGS["draws"]
    expected = np.empty(len(data))
    for level in sorted(data["g"].unique()):
        held = (data["g"] == level).to_numpy()
        train, test = data[~held], data[held]
        refit = quiet(ml.fit, FORMULA, train, priors=PRIORS, progress=False, **SETTINGS)
        post = refit.idata.posterior
        flat = lambda name: post[name].values.reshape(-1)  # noqa: E731
        # the held-out group is new: its effect is drawn per draw from N(0, sd_s²), with kfold's seed (0)
        effect = flat("sd(Intercept|g)") * np.random.default_rng(0).standard_normal(num_draws)
        eta = flat("Intercept")[:, None] + flat("x")[:, None] * test["x"].to_numpy() + effect[:, None]
        loglik = stats.norm.logpdf(test["y"].to_numpy(), eta, flat("sigma")[:, None])
        expected[held] = logsumexp(loglik, axis=0) - np.log(num_draws)

    np.testing.assert_allclose(logo["kfold_i"], expected, rtol=1e-12, atol=1e-12)
    assert logo["elpd_kfold"] == pytest.approx(expected.sum(), rel=1e-12)
    assert logo["se"] == pytest.approx(np.sqrt(len(expected) * np.var(expected)), rel=1e-12)
    full = fit.idata.log_likelihood["y"].values.reshape(num_draws, -1)
    lppd = (logsumexp(full, axis=0) - np.log(num_draws)).sum()
    assert logo["p_kfold"] == pytest.approx(lppd - expected.sum(), rel=1e-12)
    assert logo["n_folds"] == 5 and logo["n_samples"] == num_draws and logo["n_data_points"] == 50
    assert list(logo["folds"]) == list(data["g"])
    assert "5-fold cross-validation (leave-one-group-out by g)" in str(logo)


def test_given_folds_are_the_same_split_as_group(small, logo):
    data, fit = small
    codes = pd.factorize(data["g"], sort=True)[0] + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # 2 x 200 draws are too few for the ESS limit: each fold says so, then kfold sums up
        with pytest.warns(ml.ConvergenceWarning, match=r"the refits of fold\(s\) 1, 2, 3, 4, 5 had convergence"):
            given = fit.kfold(data, folds=codes)
    np.testing.assert_array_equal(given["kfold_i"], logo["kfold_i"])
    assert given["how"] == "folds given" and given["warning"] and "convergence problems" in str(given)


def test_a_saved_fit_cross_validates_from_the_command_line(small, logo, tmp_path, capsys):
    data, fit = small
    fit.save(tmp_path / "fit.nc")
    data.to_csv(tmp_path / "data.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["kfold", str(tmp_path / "fit.nc"), str(tmp_path / "data.csv"), "--group", "g"]) == 0
    out = capsys.readouterr().out
    assert "leave-one-group-out by g" in out
    assert f"{logo['elpd_kfold']:9.2f}" in out  # the loaded fit refits with the same priors and settings


# -- the priors of the refits -------------------------------------------------------------

@pytest.mark.unit
@pytest.mark.parametrize("formula, family, priors", [
    ("y ~ x + (1 + x | g)", "gaussian", {"b": ml.StudentT(3, 0, 1.2345678)}),
    ("y ~ x + (1 + x | g)", "gaussian", {"cov|g": ml.InverseWishart(3, 2)}),
    (["y ~ x + (1 | g)", "sigma ~ x"], "gaussian", None),
    ("c ~ x + (1 | g)", "cumulative", None),
])
def test_prior_arguments_give_a_refit_exactly_the_fit_priors(formula, family, priors):
    data = grouped_data(2, groups=6, per_group=12).assign(c=lambda d: 1 + (d["y"] > 0.5) + (d["y"] > 1.5))
    model = ml.build_model(formula, data, family=family, priors=priors)
    subset = data.iloc[::2]
    rescaled = ml.build_model(formula, subset, family=family, priors=priors)
    assert rescaled.priors.values() != model.priors.values()  # defaults scale to the rows they see...
    refit = ml.build_model(formula, subset, family=family, priors=model.priors.arguments())
    assert refit.priors.values() == model.priors.values()  # ...the refits' priors are the fit's, exactly
    assert refit.priors.table()["prior"].tolist() == model.priors.table()["prior"].tolist()


@pytest.mark.unit
def test_a_fit_saved_without_exact_priors_refits_with_its_rounded_table():
    data = grouped_data(2, groups=6, per_group=12)
    model = ml.build_model("y ~ x + (1 + x | g)", data, priors={"cov|g": ml.InverseWishart(3, 2)})
    old = types.SimpleNamespace(prior_arguments=None, priors=model.priors.table())
    with pytest.warns(UserWarning, match="rounded to 4 significant digits"):
        priors = refit_priors(old)
    assert "cov|g" in priors and "sd(Intercept|g)" not in priors
    refit = ml.build_model("y ~ x + (1 + x | g)", data.iloc[::2], priors=priors)
    assert refit.priors.table()["prior"].tolist() == model.priors.table()["prior"].tolist()


# -- the log-likelihood of rows with their response ------------------------------------------

@pytest.mark.parametrize("formula, family", [
    ("y ~ x + (1 | g)", "gaussian"),
    (["y ~ x + (1 | g)", "sigma ~ x + (1 | g)"], "gaussian"),
    ("y ~ x + (1 + x | g)", "student_t"),
    ("c ~ x + (1 | g)", "poisson"),
    ("c ~ x + (1 | g)", "zero_inflated_poisson"),
    ("s | trials(n) ~ x + (1 | g)", "binomial"),
    ("r ~ x + (1 | g)", "cumulative"),
])
def test_log_likelihood_of_the_fitted_rows_is_the_stored_one(formula, family):
    rng = np.random.default_rng(4)
    data = grouped_data(4, groups=6, per_group=10).assign(
        c=lambda d: rng.poisson(np.exp(0.3 * d["x"])), n=5, s=lambda d: rng.binomial(5, 0.4, len(d)),
        r=lambda d: pd.Categorical(rng.choice(["lo", "mid", "hi"], len(d)), categories=["lo", "mid", "hi"]))
    # prior draws (exact, no sampler) give parameters far and wide: a demanding check
    fit = quiet(ml.fit, formula, data, family=family, prior_only=True, chains=2, draws=50, progress=False)
    computed = log_likelihood_draws(fit.idata.posterior, fit.info, data, new_groups="error")
    np.testing.assert_allclose(computed, stack_draws(fit.idata.log_likelihood, "y"), rtol=1e-10, atol=1e-10)


# -- K-fold against PSIS-LOO, and the comparison of K-fold results ----------------------------------

@pytest.fixture(scope="module")
def behaved():
    """8 groups x 15 rows, every Pareto k good: PSIS-LOO is reliable here."""
    data = grouped_data(0, groups=8, per_group=15)
    settings = dict(chains=2, draws=300, warmup=200, seed=0, progress=False)
    fits = {"x": quiet(ml.fit, FORMULA, data, **settings),
            "intercept": quiet(ml.fit, "y ~ 1 + (1 | g)", data, **settings)}
    return data, fits, {name: quiet(fit.kfold, data, K=10) for name, fit in fits.items()}


def test_ten_fold_elpd_agrees_with_loo(behaved):
    """K-fold and PSIS-LOO estimate the same elpd from the same rows, so their difference
    is judged by the standard error of the pointwise differences (as ml.compare's ``dse``):
    within 4 of them. It is not pure noise: 10-fold refits see 90% of the rows, which
    lowers the elpd by about p / (2 (K - 1)) ≈ 0.5 here, and each elpd_i has Monte Carlo
    error; both are well inside (here |difference| = 0.66 and dse = 1.06). Also within
    the reported se of elpd_loo, the uncertainty of either estimate."""
    _, fits, results = behaved
    loo = quiet(fits["x"].loo)
    assert (loo["pareto_k"] < loo["good_k"]).all()
    kfold = results["x"]
    difference = kfold["kfold_i"] - loo["loo_i"].values
    dse = np.sqrt(len(difference) * np.var(difference))
    assert abs(kfold["elpd_kfold"] - loo["elpd_loo"]) < 4 * dse
    assert abs(kfold["elpd_kfold"] - loo["elpd_loo"]) < loo["se"]
    # p = lppd - elpd for both, with the same lppd of the full fit
    assert kfold["p_kfold"] + kfold["elpd_kfold"] == pytest.approx(loo["p_loo"] + loo["elpd_loo"], rel=1e-12)


def test_compare_ranks_kfold_results_with_the_se_of_each_difference(behaved):
    _, _, results = behaved
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same K and seed: the same folds, no warning
        table = ml.compare(results, ic="kfold")
    assert list(table.index) == ["x", "intercept"]  # y depends on x (slope 0.5, 120 rows)
    assert table["rank"].tolist() == [0, 1]
    difference = results["x"]["kfold_i"] - results["intercept"]["kfold_i"]
    assert table.loc["intercept", "elpd_diff"] == pytest.approx(difference.sum(), rel=1e-12)
    assert table.loc["intercept", "dse"] == pytest.approx(np.sqrt(len(difference) * np.var(difference)), rel=1e-12)
    assert table.loc["x", "elpd_diff"] == 0 and table.loc["x", "dse"] == 0
    assert table.loc["intercept", "elpd_diff"] > 2 * table.loc["intercept", "dse"]
    assert table.loc["x", "elpd_kfold"] == results["x"]["elpd_kfold"]


def test_compare_needs_kfold_results_for_kfold_and_fits_for_the_others(behaved):
    _, fits, results = behaved
    with pytest.raises(ml.DataError, match="fit.kfold"):
        ml.compare(fits, ic="kfold")
    with pytest.raises(ml.DataError, match="ic='kfold'"):
        ml.compare(results, ic="loo")


# -- errors ---------------------------------------------------------------------------------

def test_kfold_needs_the_fitted_data(small):
    data, fit = small
    with pytest.raises(ml.DataError, match="the fit used 50: pass the data frame the model was fitted to"):
        fit.kfold(data.iloc[:-1])
    with pytest.raises(ml.DataError, match="response of data differs .* in 1 rows"):
        fit.kfold(data.assign(y=data["y"].where(data.index != 3, 0.0)))
    with pytest.raises(ml.DataError, match="pass the data frame the model was fitted to"):
        fit.kfold(data.drop(columns="x"))
    with pytest.raises(ml.DataError, match="group='site' is not a column of data; its columns are 'y', 'x', 'g'"):
        fit.kfold(data, group="site")
    for K in (1, 51, 2.5):
        with pytest.raises(ml.DataError, match=r"K must be a whole number from 2 to the number of fitted rows \(50\)"):
            fit.kfold(data, K=K)


@pytest.mark.unit
def test_random_folds_are_balanced_and_follow_the_seed():
    rows = pd.DataFrame({"x": np.arange(23)})
    folds = make_folds(rows, K=5, seed=1)
    assert sorted(np.bincount(folds.index)) == [4, 4, 5, 5, 5]
    assert folds.labels == (1, 2, 3, 4, 5) and folds.how == "5 random folds"
    np.testing.assert_array_equal(make_folds(rows, K=5, seed=1).index, folds.index)
    assert not np.array_equal(make_folds(rows, K=5, seed=2).index, folds.index)
    assert make_folds(rows, K=23, seed=0).num_folds == 23  # leave-one-out


@pytest.mark.unit
def test_fold_arguments_that_make_no_folds_are_data_errors():
    rows = pd.DataFrame({"x": np.arange(6.0), "g": ["a", "a", "b", "b", None, "c"], "h": ["a"] * 6})
    with pytest.raises(ml.DataError, match="not both"):
        make_folds(rows, group="g", folds=np.arange(6))
    with pytest.raises(ml.DataError, match="group column 'g' has missing values in 1 fitted rows"):
        make_folds(rows, group="g")
    with pytest.raises(ml.DataError, match="single value .* at least two folds"):
        make_folds(rows, group="h")
    with pytest.raises(ml.DataError, match=r"folds= needs one fold label per row of data \(6\)"):
        make_folds(rows, folds=[1, 2, 1])
    # labels given per row of the data, of which the fit used rows 0, 2, 3, 5
    folds = make_folds(rows.iloc[[0, 2, 3, 5]], folds=["p", "q", "q", "p", "q", "p"], kept=np.array([0, 2, 3, 5]),
                       num_given=6)
    assert folds.labels == ("p", "q") and folds.index.tolist() == [0, 1, 0, 0]


def test_the_fitted_rows_are_those_without_missing_values():
    data = grouped_data(1, groups=5, per_group=10).assign(x=lambda d: d["x"].where(d.index != 7))
    fit = quiet(ml.fit, FORMULA, data, prior_only=True, chains=1, draws=20, progress=False)  # drops row 7
    rows, kept = fitted_rows(fit, data)
    assert len(rows) == 49 and 7 not in kept and 7 not in rows.index
    with pytest.raises(ml.DataError, match="data has 50 rows without missing values .* the fit used 49"):
        fitted_rows(fit, data.fillna({"x": 0.0}))
    with pytest.raises(ml.DataError, match=r"\(prior_only=True\): there is no posterior to cross-validate"):
        fit.kfold(data)


# -- the comparison table and the LOO warning, on made-up numbers -------------------------------------

def made_up_kfold(pointwise: np.ndarray, folds: np.ndarray) -> KFold:
    return KFold(data=[pointwise.sum(), np.sqrt(len(pointwise) * np.var(pointwise)), 1.0, 100, len(pointwise),
                       False, pointwise, folds, 3, "3 random folds", "log"],
                 index=["elpd_kfold", "se", "p_kfold", "n_samples", "n_data_points", "warning", "kfold_i", "folds",
                        "n_folds", "how", "scale"])


@pytest.mark.unit
def test_compare_kfold_orders_and_differences_made_up_results():
    rng = np.random.default_rng(0)
    folds = np.repeat([1, 2, 3], 10)
    a, b, c = (rng.normal(-1.0 - shift, 0.3, 30) for shift in (0.2, 0.0, 0.5))
    table = compare_kfold({"a": made_up_kfold(a, folds), "b": made_up_kfold(b, folds), "c": made_up_kfold(c, folds)})
    order = np.argsort([-a.sum(), -b.sum(), -c.sum()])
    assert list(table.index) == [("a", "b", "c")[i] for i in order]
    best = (a, b, c)[order[0]]
    for name, values in zip("abc", (a, b, c)):
        assert table.loc[name, "elpd_diff"] == pytest.approx((best - values).sum())
        assert table.loc[name, "dse"] == pytest.approx(np.sqrt(30 * np.var(best - values)))
    with pytest.warns(UserWarning, match="different folds"):
        compare_kfold({"a": made_up_kfold(a, folds), "b": made_up_kfold(b, folds[::-1])})
    with pytest.raises(ml.DataError, match="different numbers of rows"):
        compare_kfold({"a": made_up_kfold(a, folds), "b": made_up_kfold(b[:20], folds[:20])})


@pytest.mark.unit
def test_loo_names_kfold_when_pareto_k_is_large():
    rng = np.random.default_rng(0)
    loglik = rng.normal(-1.0, 0.1, (2, 500, 20))
    loglik[..., 0] = -20 * np.abs(rng.standard_cauchy((2, 500)))  # one row with a very heavy-tailed ratio
    idata = az.from_dict(posterior={"a": rng.normal(size=(2, 500))}, log_likelihood={"y": loglik})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")  # ArviZ's own
        with pytest.warns(UserWarning, match=r"unreliable for 1 of 20 rows .* fit.kfold\(data, K=10\)"):
            criteria.loo(idata)
