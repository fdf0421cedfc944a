"""Smooth terms ``s()`` and ``t2()`` (issue 13), as specifications.

* Syntax: ``s(x)``, ``s(x, k = 8)``, ``s(x, bs = "cr")``, ``s(x, by = f)``, ``t2(x, z)`` parse
  in the population part of any formula, print canonically and round-trip through the JSON
  a saved fit keeps; a smooth in an interaction or a group term is a FormulaError.
* Basis (mgcv's mixed-model form): the columns of new data, built from the fitting data's
  knots, equal the fitting columns at the fitting x; the columns sum to zero on the
  fitting data (the identifiability constraint); a straight line lies in the span of the
  intercept and the unpenalised columns (the null space is not penalised); ``s()`` of a
  categorical column, a numeric ``by``, or ``k`` above the number of distinct values
  raise FormulaError or DataError naming the column.
* Model: the penalised columns have the prior N(0, sds²), one ``sds(...)`` per penalty,
  prior class ``sds`` settable by users; the exact marginal the collapsed sampler
  explores is the dense Gaussian density with prior covariance ``diag(v₀)`` and
  ``sds²`` on the penalised columns.
* Fits: a Gaussian smooth model is fitted by the collapsed sampler by default and says
  why; predictions on the fitting data reproduce the fitted linear predictor, also after
  save/load; a sin curve is recovered within its 95% bands at most points; a straight
  line gets a small sds; the collapsed sampler, Gibbs and NUTS agree within MCSE on a
  smooth with a group term (slow tier).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy.stats import multivariate_normal

import multilevel as ml
from multilevel.design import build_design
from multilevel.design.suffstats import design_statistics
from multilevel.errors import DataError, FormulaError
from multilevel.formula import parse_formula
from multilevel.formula.spec import Smooth, spec_from_dict, spec_to_dict
from multilevel.model import build_model
from multilevel.model.marginal import log_marginal

from agreement import assert_converged, assert_tables_agree


def curve(n: int = 200, seed: int = 1, line: bool = False) -> pd.DataFrame:
    """y = sin(x) + N(0, 0.3²) on x ~ U(0, 10) (or the line 1 + 0.5 x), a factor f and a second predictor z."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, n)
    mean = 1 + 0.5 * x if line else np.sin(x)
    return pd.DataFrame({"x": x, "z": rng.uniform(0, 1, n), "f": rng.choice(["a", "b"], n),
                         "y": mean + rng.normal(0, 0.3, n)})


# -- syntax ---------------------------------------------------------------------------------------

@pytest.mark.unit
@pytest.mark.parametrize("formula, smooth", [
    ("y ~ s(x)", Smooth("s", ("x",))),
    ("y ~ s(x, k = 8)", Smooth("s", ("x",), k=8)),
    ('y ~ s(x, bs = "cr")', Smooth("s", ("x",), bs="cr")),
    ("y ~ f + s(x, by = f)", Smooth("s", ("x",), by="f")),
    ("y ~ t2(x, z)", Smooth("t2", ("x", "z"))),
])
def test_smooths_parse_print_and_round_trip(formula, smooth):
    spec = parse_formula(formula)
    assert spec.fixed.terms[-1] == (smooth,)
    assert parse_formula(f"y ~ {smooth}").fixed.terms == ((smooth,),)
    assert spec_from_dict(spec_to_dict(spec)) == spec
    assert set(smooth.variables) <= set(spec.variables())


@pytest.mark.unit
@pytest.mark.parametrize("formula, message", [
    ("y ~ s(x):z", "interaction"),
    ("y ~ (s(x) | g)", "group term"),
    ("y ~ log(s(x))", "term of its own"),
    ("y ~ s(x, k = 2)", "k >= 3"),
    ('y ~ s(x, bs = "ps")', "'tp', 'cr'"),
    ("y ~ t2(x)", "2 column"),
])
def test_misplaced_or_malformed_smooths_are_formula_errors(formula, message):
    with pytest.raises(FormulaError, match=message):
        parse_formula(formula)


# -- basis ----------------------------------------------------------------------------------------

BASES = ["y ~ s(x)", 'y ~ s(x, bs = "cr", k = 6)', "y ~ f + s(x, by = f)", "y ~ t2(x, z)"]


@pytest.mark.unit
@pytest.mark.parametrize("formula", BASES)
def test_the_basis_of_new_data_is_the_fitting_basis_at_the_fitting_x(formula):
    data = curve()
    fitted = build_design(parse_formula(formula), data)
    new = build_design(parse_formula(formula), data.iloc[::-3], encoders=fitted.encoders, with_response=False)
    np.testing.assert_allclose(new.X, fitted.X[::-3], atol=1e-10)
    assert new.columns == fitted.columns
    assert np.linalg.matrix_rank(fitted.X) == fitted.X.shape[1]


@pytest.mark.unit
@pytest.mark.parametrize("formula", BASES)
def test_smooth_columns_sum_to_zero_on_the_fitting_data(formula):
    design = build_design(parse_formula(formula), curve())
    smooth = [j for j, c in enumerate(design.columns) if c.startswith(("s", "t2"))]
    by_level = design.X[:, smooth].sum(axis=0)
    np.testing.assert_allclose(by_level, 0.0, atol=1e-8 * np.abs(design.X[:, smooth]).sum())


@pytest.mark.unit
@pytest.mark.parametrize("bs", ["tp", "cr"])
def test_a_straight_line_lies_in_the_unpenalised_columns(bs):
    data = curve()
    design = build_design(parse_formula(f'y ~ s(x, bs = "{bs}")'), data)
    unpenalised = [j for j, c in enumerate(design.columns) if not c.startswith("s_")]
    assert [design.columns[j] for j in unpenalised] == ["Intercept", "sx_1"]
    line = 2.0 - 3.0 * data["x"].to_numpy()
    coef, *_ = np.linalg.lstsq(design.X[:, unpenalised], line, rcond=None)
    np.testing.assert_allclose(design.X[:, unpenalised] @ coef, line, atol=1e-9)


@pytest.mark.unit
@pytest.mark.parametrize("formula", ["y ~ f + s(x, by = f)", "y ~ t2(x, z)"])
def test_the_encoders_keep_the_basis_through_json(formula):
    design = build_design(parse_formula(formula), curve())
    restored = type(design.encoders).from_dict(design.encoders.to_dict())
    assert restored == design.encoders
    again = build_design(design.spec, curve(), encoders=restored)
    np.testing.assert_array_equal(again.X, design.X)


@pytest.mark.unit
@pytest.mark.parametrize("formula, error, named", [
    ("y ~ s(f)", FormulaError, "'f'"),
    ("y ~ s(x, by = z)", FormulaError, "by = z"),
    ("y ~ s(w)", DataError, "'w'"),
    ("y ~ s(x, k = 50)", DataError, "'x'"),
    ("y ~ h + s(x, by = h)", DataError, "level 'rare' of h"),
    ("y ~ s(x) + s(x, k = 5)", FormulaError, "same columns"),
])
def test_smooths_of_the_wrong_columns_name_them(formula, error, named):
    data = curve(n=40).assign(w=np.tile([0.0, 1.0, 2.0, 3.0], 10), h=["rare"] * 5 + ["common"] * 35)
    with pytest.raises(error, match=named):
        build_design(parse_formula(formula), data)


# -- model ----------------------------------------------------------------------------------------

@pytest.mark.unit
def test_sds_are_parameters_with_a_settable_prior_and_the_coefficients_take_none():
    data = curve()
    table = ml.default_priors("y ~ s(x)", data)
    assert list(table["parameter"]) == ["Intercept", "sx_1", "sigma", "sds(sx_1)"]
    assert table.set_index("parameter").loc["sds(sx_1)", "class"] == "sds"
    model = build_model("y ~ s(x)", data, priors={"sds": ml.Exponential(rate=2.0)})
    assert str(model.priors.aux[-1].prior) == str(ml.Exponential(rate=2.0))
    assert model.layout.aux == ("sigma", "sds(sx_1)")
    with pytest.raises(ml.PriorError, match="zs"):
        build_model("y ~ s(x)", data, priors={"zs": ml.Normal(0, 1)})
    distributional = ml.default_priors(ml.Formula("y ~ s(x)", "sigma ~ s(z)"), data)
    assert {"sds(sx_1)", "sds(sigma_sz_1)"} <= set(distributional["parameter"])


@pytest.mark.unit
def test_the_exact_marginal_gives_the_penalised_columns_variance_sds_squared():
    """y ~ N(X m₀, σ² I + X diag(v₀) Xᵀ), v₀ = sds² on the penalised columns."""
    data = curve(n=60)
    model = build_model("y ~ s(x, k = 6)", data)
    X, sigma, sds = model.design.X, 0.4, 1.7
    fixed = tuple(p.prior for p in model.priors.fixed)
    penalties = model.layout.penalties
    m0 = np.array([p.mean for p in fixed])
    v0 = np.array([p.sd for p in fixed]) ** 2
    penalised = list(penalties[0].columns)
    m0[penalised], v0[penalised] = 0.0, sds ** 2
    expected = multivariate_normal(X @ m0, sigma ** 2 * np.eye(len(X)) + X @ np.diag(v0) @ X.T).logpdf(data["y"])
    stats = design_statistics(model.design, ())
    with jax.enable_x64(True):
        stats = jax.tree_util.tree_map(jnp.asarray, stats)
        aux = jnp.asarray([sigma, sds])
        got = float(log_marginal(stats, jnp.asarray(sigma), [], fixed, aux, penalties))
    assert got == pytest.approx(expected, rel=1e-10)


# -- fits -----------------------------------------------------------------------------------------

FIT = dict(chains=2, draws=500, warmup=400, seed=3)


@pytest.fixture(scope="module")
def sin_fit():
    return ml.fit("y ~ s(x)", data=curve(), **FIT)


@pytest.fixture(scope="module")
def line_fit():
    return ml.fit("y ~ s(x)", data=curve(line=True), **FIT)


def test_a_gaussian_smooth_model_is_fitted_exactly_and_says_why(sin_fit):
    assert sin_fit.sampler_info["sampler"] == "collapsed"
    assert "sds(sx_1)" in sin_fit.sampler_info["reason"]
    assert "Smooth terms:\n" in repr(sin_fit) and "sds(sx_1)" in repr(sin_fit).split("Smooth terms:")[1]
    assert_converged(sin_fit.summary(), chains=2, ess_min=100, what="s(x)")


def test_predictions_on_the_fitting_data_reproduce_the_fitted_linear_predictor(sin_fit, tmp_path):
    data = curve()
    posterior = sin_fit.idata.posterior
    design = build_design(parse_formula("y ~ s(x)"), data)
    b = np.stack([posterior[c].to_numpy().ravel() for c in design.columns], axis=1)
    fitted = (design.X @ b.T).mean(axis=1)
    predicted = sin_fit.predict(data, kind="linear")["mean"].to_numpy()
    np.testing.assert_allclose(predicted, fitted, rtol=1e-9, atol=1e-9)
    sin_fit.save(tmp_path / "smooth.nc")
    loaded = ml.load(tmp_path / "smooth.nc")
    np.testing.assert_allclose(loaded.predict(data, kind="linear")["mean"].to_numpy(), predicted, rtol=1e-12)


def test_a_sin_curve_is_recovered_within_its_bands(sin_fit):
    """The 95% band of the conditional effect covers sin(x) at >= 85% of the grid (an
    interval with 95% pointwise frequency coverage covers ~95%; smoothing bias at the
    peaks costs a few points)."""
    effect = sin_fit.conditional_effects("x").data
    truth = np.sin(effect["x"].to_numpy())
    covered = (effect["q2.5"] <= truth) & (truth <= effect["q97.5"])
    assert covered.mean() >= 0.85, f"the band covers sin(x) at {covered.mean():.0%} of the grid"
    assert np.max(np.abs(effect["mean"] - truth)) < 0.35


def test_slopes_of_the_smooth_at_new_x_follow_the_derivative(sin_fit):
    """The slope of sin at 0, π/2, π (1, 0, -1) lies within the 95% interval of the
    smooth's slope there: margins re-evaluate the basis at new x."""
    at = pd.DataFrame({"x": [0.5, np.pi / 2, np.pi]})
    slopes = sin_fit.slopes("x", newdata=at, by=False)
    truth = np.cos(at["x"].to_numpy())
    assert ((slopes["q2.5"] <= truth) & (truth <= slopes["q97.5"])).all(), slopes


def test_a_straight_line_needs_no_penalised_part(line_fit, sin_fit):
    """On a line the penalised coefficients shrink away: sds is far below the sin curve's,
    and the fitted curve is the line within its band everywhere."""
    assert line_fit.summary().loc["sds(sx_1)", "q50"] < 0.1 * sin_fit.summary().loc["sds(sx_1)", "q50"]
    effect = line_fit.conditional_effects("x").data
    truth = 1 + 0.5 * effect["x"].to_numpy()
    assert ((effect["q2.5"] <= truth) & (truth <= effect["q97.5"])).all()


@pytest.mark.slow
def test_the_exact_samplers_and_nuts_agree_on_a_smooth_model_with_a_group_term():
    """Collapsed, Gibbs and NUTS fits of ``y ~ s(x) + (1 | g)``: posterior means and sds of
    every parameter (penalised coefficients and group effects included) within combined
    MCSE (false alarm 1e-3 per comparison of two fits)."""
    data = curve()
    rng = np.random.default_rng(5)
    data["g"] = rng.integers(0, 10, len(data)).astype(str)
    data["y"] += rng.normal(0, 0.5, 10)[data["g"].astype(int)]
    options = dict(chains=4, draws=2000, warmup=1000, seed=11)
    fits = {name: ml.fit("y ~ s(x) + (1 | g)", data=data, sampler=name, **options).summary()
            for name in ("collapsed", "gibbs", "nuts")}
    for name, table in fits.items():
        assert_converged(table, chains=4, ess_min=400, what=name)
    heavy = ("sds(sx_1)", "sd(Intercept|g)")
    assert_tables_agree(fits["collapsed"], fits["nuts"], "collapsed vs NUTS", sd_exclude=heavy)
    assert_tables_agree(fits["gibbs"], fits["collapsed"], "Gibbs vs collapsed", sd_exclude=heavy)


@pytest.mark.slow
def test_nuts_recovers_smooths_of_a_count_mean_and_of_a_residual_sd():
    """Other families and predicted parameters go to NUTS: a Poisson rate exp(1 + sin x)
    and a Gaussian sd exp(-1.5 + sin(3z)) are recovered within their 95% bands at >= 85%
    of the grid (pointwise 95% intervals; smoothing bias at the peaks costs a few points).
    The Poisson smooth, which the data pin down, is centred after the pilot; an ordinal
    smooth, which they inform less, converges too (held centred, it stuck at sds = 0)."""
    data = curve(n=400, seed=4)
    rng = np.random.default_rng(4)
    data["c"] = rng.poisson(np.exp(1 + np.sin(data["x"])))
    data["h"] = np.sin(data["x"]) + rng.normal(size=len(data)) * np.exp(-1.5 + np.sin(3 * data["z"]))
    options = dict(chains=4, draws=1000, warmup=1000, seed=5)
    data["r"] = np.digitize(2 * np.sin(data["x"]) + rng.logistic(size=len(data)), [-1.0, 0.0, 1.0]) + 1
    counts = ml.fit("c ~ s(x)", data=data, family="poisson", **options)
    spread = ml.fit(ml.Formula("h ~ s(x)", "sigma ~ s(z)"), data=data, **options)
    ordinal = ml.fit("r ~ s(x)", data=data, family="cumulative", **options)
    assert counts.sampler_info["smooth_centering"]["sds(sx_1)"].startswith("centred")
    for fit in (counts, spread, ordinal):
        assert fit.sampler_info["sampler"] == "nuts"
        assert_converged(fit.summary(), chains=4, ess_min=400, what=str(fit.info.spec))
    rate = counts.conditional_effects("x").data
    truth = np.exp(1 + np.sin(rate["x"].to_numpy()))
    assert ((rate["q2.5"] <= truth) & (truth <= rate["q97.5"])).mean() >= 0.85
    grid = pd.DataFrame({"x": np.full(50, 5.0), "z": np.linspace(0.02, 0.98, 50)})
    sd = spread.predict(grid, kind="mean", dpar="sigma")
    truth = np.exp(-1.5 + np.sin(3 * grid["z"].to_numpy()))
    assert ((sd["q2.5"] <= truth) & (truth <= sd["q97.5"])).mean() >= 0.85
