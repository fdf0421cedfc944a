"""brms's addition terms ``se()`` and ``weights()`` (issue 13), as specifications.

* Syntax: ``y | se(s) ~ ...``, ``se(s, sigma = TRUE)``, ``y | weights(w) ~ ...``, joined by
  ``+`` with each other and with ``trials()``; they parse without evaluating code, print
  canonically and round-trip through the JSON a saved fit keeps.
* Data: the design holds the rows' standard errors and weights; negative or non-finite
  standard errors, zero ones without sigma, negative or all-zero weights raise DataError
  naming the column and the rows; ``se()`` on a family without a residual sd raises
  FormulaError naming the families that take it.
* Model: with ``se()`` the family's sd is ``s_i`` (no ``sigma`` parameter, prior or
  summary row), or ``sqrt(sigma² + s_i²)`` with ``sigma = TRUE``; weights multiply the
  pointwise log-likelihood (checked against scipy, and integer weights against duplicated
  rows, exactly); the exact samplers' marginal from precision-weighted statistics equals
  the dense Gaussian density, and their deviances equal the full model's.
* Samplers: ``se()`` and ``weights()`` stay on the exact samplers; ``sigma = TRUE`` goes
  to NUTS, with the reason.
* Statistics: eight schools (``est | se(se) ~ 1 + (1 | school)``) agrees with
  posteriordb's reference draws; integer weights give the posterior of duplicated rows
  (collapsed, Gibbs, and NUTS for a Poisson model), within Monte Carlo error.
* Results: the stored pointwise log-likelihood is the weighted one; a saved weighted fit
  predicts as the original; ``posterior_predictive`` reads the new rows' standard errors.
"""

from __future__ import annotations

import json
import zipfile

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.stats import multivariate_normal

import multilevel as ml
from multilevel.design import build_design
from multilevel.design.suffstats import design_statistics
from multilevel.formula import parse_formula
from multilevel.formula.spec import SeTerm, Var, WeightsTerm, spec_from_dict, spec_to_dict
from multilevel.inference import Options, choose_sampler
from multilevel.inference.registry import get_sampler
from multilevel.model import build_model, deviance, model_data, pointwise_log_likelihood, structure
from multilevel.model.marginal import log_marginal

from agreement import assert_converged, assert_tables_agree
from conftest import SHARED_DATA, read_shared


def grouped(seed: int = 0, levels: int = 6, per_level: int = 5) -> pd.DataFrame:
    """A small grouped data set: y, a count n, a predictor x, standard errors s, whole weights w."""
    rng = np.random.default_rng(seed)
    g = np.repeat([f"g{k}" for k in range(levels)], per_level)
    effect = dict(zip(np.unique(g), rng.normal(0, 0.7, levels)))
    x = rng.normal(size=g.size)
    eta = 1.0 + 0.5 * x + pd.Series(g).map(effect).to_numpy()
    s = rng.uniform(0.5, 2.0, g.size)
    return pd.DataFrame({"g": g, "x": x, "s": s, "w": rng.integers(1, 4, g.size).astype(float),
                         "y": eta + rng.normal(size=g.size) * s, "n": rng.poisson(np.exp(eta))})


def duplicated(data: pd.DataFrame) -> pd.DataFrame:
    """Each row repeated ``w`` times."""
    return data.loc[data.index.repeat(data["w"].astype(int))].reset_index(drop=True)


#: Priors that do not depend on the data (defaults scale to the response, which duplication changes).
GAUSSIAN_PRIORS = {"Intercept": ml.Normal(0, 5), "b": ml.Normal(0, 5), "sigma": ml.HalfNormal(2), "sd": ml.HalfNormal(2)}
#: The same without sigma, for models whose standard errors are the sds.
SE_PRIORS = {k: v for k, v in GAUSSIAN_PRIORS.items() if k != "sigma"}
POISSON_PRIORS = {"Intercept": ml.Normal(0, 2), "b": ml.Normal(0, 2), "sd": ml.HalfNormal(1)}


# -- syntax ---------------------------------------------------------------------------------------

@pytest.mark.unit
@pytest.mark.parametrize("formula, se, weights, trials", [
    ("y | se(s) ~ x", SeTerm(Var("s")), None, None),
    ("y | se(s, sigma = TRUE) ~ x", SeTerm(Var("s"), True), None, None),
    ("y | se(s, TRUE) ~ x", SeTerm(Var("s"), True), None, None),
    ("y | se(s, sigma=F) + weights(w) ~ x + (1 | g)", SeTerm(Var("s")), WeightsTerm(Var("w")), None),
    ("y | weights(w) + se(sqrt(v)) ~ x", SeTerm(parse_formula("y ~ sqrt(v)").fixed.terms[0][0]),
     WeightsTerm(Var("w")), None),
    ("s | trials(n) + weights(w) ~ x", None, WeightsTerm(Var("w")), Var("n")),
    ("cbind(s, f) | weights(w) ~ x", None, WeightsTerm(Var("w")), None),
])
def test_addition_terms_parse_and_round_trip_through_json(formula, se, weights, trials):
    spec = parse_formula(formula)
    assert (spec.se, spec.weights, spec.trials) == (se, weights, trials)
    assert spec_from_dict(json.loads(json.dumps(spec_to_dict(spec)))) == spec
    if se is not None:
        assert spec.se_variables() == tuple(c for c in spec.variables() if c in ("s", "v"))


@pytest.mark.unit
def test_addition_terms_print_canonically_and_their_columns_belong_to_the_response():
    spec = parse_formula("y | se(s, sigma = T) + weights(w) ~ x + (1 | g)")
    assert (str(spec.se), str(spec.weights)) == ("se(s, sigma = TRUE)", "weights(w)")
    assert spec.variables() == ("y", "s", "w", "x", "g")
    assert spec.variables(response=False) == ("x", "g")      # prediction data need neither


def caret_column(error: ml.FormulaError) -> int:
    return str(error).splitlines()[-1].index("^") - 2


@pytest.mark.unit
@pytest.mark.parametrize("formula, column, match", [
    ("y | se(s) + se(t) ~ x", 12, "given twice"),
    ("y | foo(s) ~ x", 4, "takes addition terms"),
    ("y | se(s) + x ~ x", 12, "takes addition terms"),
    ("y || se(s) ~ x", 2, "single bar"),
    ("y | se(s, sigma = 2) ~ x", 18, "TRUE or FALSE"),
    ("y | se(s, nu = TRUE) ~ x", 10, "no option 'nu'"),
    ("y | weights(w, TRUE) ~ x", 15, "at most"),
    ("y ~ x + se(s)", 8, "follows the response"),
    ("y ~ weights(w)", 4, "follows the response"),
    ("cbind(a, b) | weights(w) + trials(n) ~ x", 12, "already gives the trials"),
])
def test_malformed_addition_terms_point_at_the_fault(formula, column, match):
    with pytest.raises(ml.FormulaError) as caught:
        parse_formula(formula)
    assert match in str(caught.value)
    assert caret_column(caught.value) == column


@pytest.mark.unit
def test_a_parameter_formula_takes_no_addition_terms():
    with pytest.raises(ml.FormulaError, match="no trials\\(\\), se\\(\\), weights\\(\\)"):
        ml.Formula("y ~ x", "sigma | weights(w) ~ x").parse()


# -- data -------------------------------------------------------------------------------------------

@pytest.mark.unit
def test_the_design_holds_standard_errors_and_weights_and_prediction_reads_only_the_errors():
    data = grouped().assign(w=lambda d: d["w"].where(d.index != 3))        # row 3: missing weight, dropped
    spec = parse_formula("y | se(s) + weights(w) ~ x + (1 | g)")
    with pytest.warns(UserWarning, match="dropped 1"):
        design = build_design(spec, data)
    kept = data.drop(index=3)
    np.testing.assert_array_equal(design.se, kept["s"])
    np.testing.assert_array_equal(design.weights, kept["w"])
    new = build_design(spec, data[["x", "g", "s"]], encoders=design.encoders, with_response=False)
    np.testing.assert_array_equal(new.se, data["s"])
    assert new.weights is None
    assert build_design(spec, data[["x", "g"]], encoders=design.encoders, with_response=False).se is None


@pytest.mark.unit
@pytest.mark.parametrize("formula, column, values, match", [
    ("y | se(s) ~ x", "s", {2: -1.0, 4: -0.5}, "standard errors s of se\\(s\\) are negative in rows 2, 4"),
    ("y | se(s) ~ x", "s", {1: 0.0}, "are 0 in rows 1 .*sigma = TRUE"),
    ("y | se(s) ~ x", "s", {5: np.inf}, "column 's' has 1 non-finite values \\(rows 5\\)"),
    ("y | weights(w) ~ x", "w", {0: -2.0}, "weights w of weights\\(w\\) are negative in rows 0"),
    ("y | weights(w) ~ x", "w", "all", "weights w of weights\\(w\\) are 0 in every row"),
])
def test_bad_standard_errors_and_weights_raise_naming_the_column_and_rows(formula, column, values, match):
    data = grouped()
    if values == "all":
        data[column] = 0.0
    else:
        for row, value in values.items():
            data.loc[row, column] = value
    with pytest.raises(ml.DataError, match=match):
        build_model(formula, data)


@pytest.mark.unit
def test_zero_standard_errors_are_allowed_when_sigma_is_estimated_and_zero_weights_are_skipped_rows():
    data = grouped()
    data.loc[1, "s"] = 0.0
    data.loc[[0, 2], "w"] = 0.0
    model = build_model("y | se(s, sigma = TRUE) + weights(w) ~ x", data)
    assert model.design.se[1] == 0 and model.design.weights[0] == 0


@pytest.mark.unit
@pytest.mark.parametrize("family", ["poisson", "lognormal", "bernoulli"])
def test_se_on_a_family_without_a_residual_sd_names_the_families_that_take_it(family):
    data = grouped().assign(y=lambda d: (d["y"] > 1).astype(float) if family == "bernoulli" else d["n"] + 1.0)
    with pytest.raises(ml.FormulaError, match=f"se\\(s\\).*{family} family.*gaussian and student_t"):
        build_model("y | se(s) ~ x", data, family=family)


@pytest.mark.unit
def test_se_without_sigma_leaves_sigma_no_formula_and_no_prior():
    data = grouped()
    with pytest.raises(ml.FormulaError, match="sigma = TRUE"):
        build_model(["y | se(s) ~ x", "sigma ~ x"], data)
    with pytest.raises(ml.PriorError, match="'sigma'"):
        build_model("y | se(s) ~ x", data, priors={"sigma": ml.HalfNormal(1)})
    build_model(["y | se(s, sigma = TRUE) ~ x", "sigma ~ x"], data)       # sigma kept: it may have one


# -- the model --------------------------------------------------------------------------------------

@pytest.mark.unit
def test_se_removes_sigma_from_the_parameters_and_sigma_true_keeps_it():
    data = grouped()
    known = build_model("y | se(s) ~ x + (1 | g)", data)
    added = build_model("y | se(s, sigma = TRUE) ~ x + (1 | g)", data, family="student_t")
    assert known.layout.aux == () and known.layout.se == "known"
    assert "sigma" not in set(known.priors.table()["parameter"])
    assert added.layout.aux == ("sigma", "nu") and added.layout.se == "added"


@pytest.mark.unit
@pytest.mark.parametrize("formula, family", [
    ("y | se(s) ~ x + (1 | g)", "gaussian"),
    ("y | se(s, sigma = TRUE) + weights(w) ~ x + (1 | g)", "gaussian"),
    ("y | weights(w) ~ x + (1 | g)", "gaussian"),
    ("y | se(s) + weights(w) ~ x + (1 | g)", "student_t"),
    ("n | weights(w) ~ x + (1 | g)", "poisson"),
])
def test_pointwise_log_likelihood_is_the_weighted_density_with_the_rows_sds(formula, family):
    data = grouped()
    model = build_model(formula, data, family=family)
    rng = np.random.default_rng(1)
    b = rng.normal(size=(1, 1, 2))
    effects = [rng.normal(size=(1, 1, 6, 1))]
    aux = np.exp(rng.normal(size=(1, 1, len(model.layout.aux))))
    with jax.enable_x64(True):
        got = pointwise_log_likelihood(b, aux, effects, model_data(model.design, model.priors),
                                       structure(model.layout, model.family))[0, 0]
    refs = model.design.groups[0].refs
    eta = model.design.X @ b[0, 0] + effects[0][0, 0, refs, 0]
    named = dict(zip(model.layout.aux, aux[0, 0]))
    sd = data["s"].to_numpy() if "se(" in formula else named.get("sigma")
    if "sigma = TRUE" in formula:
        sd = np.hypot(named["sigma"], data["s"].to_numpy())
    expected = {"gaussian": lambda: stats.norm.logpdf(data["y"], eta, sd),
                "student_t": lambda: stats.t.logpdf(data["y"], named.get("nu"), eta, sd),
                "poisson": lambda: stats.poisson.logpmf(data["n"], np.exp(eta))}[family]()
    if "weights" in formula:
        expected = expected * data["w"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10)


@pytest.mark.parametrize("formula, family", [("y | weights(w) ~ x + (1 | g)", "gaussian"),
                                             ("n | weights(w) ~ x + (1 | g)", "poisson")])
def test_integer_weights_give_the_log_density_of_duplicated_rows_exactly(formula, family):
    data = grouped()
    priors = GAUSSIAN_PRIORS if family == "gaussian" else POISSON_PRIORS
    weighted = build_model(formula, data, family=family, priors=priors)
    repeated = build_model(formula.replace(" | weights(w)", ""), duplicated(data), family=family, priors=priors)
    f_weighted, start = weighted.log_density()
    f_repeated, _ = repeated.log_density()
    with jax.enable_x64(True):
        assert float(f_weighted(start)) == pytest.approx(float(f_repeated(start)), rel=1e-12)


def _exact_statistics(model):
    noise = model.row_noise()
    stats_ = design_statistics(model.working_design(), model.structure.order, noise.precision)
    return jax.tree_util.tree_map(jnp.asarray, stats_._replace(n=np.asarray(noise.count)))


@pytest.mark.unit
def test_the_exact_marginal_with_known_standard_errors_is_the_dense_gaussian_density():
    """y ~ N(X m0, diag(s²) + tau² Z Zᵀ + X V0 Xᵀ): b and the group effects integrated out;
    the sums leave out the constant ``-½ Σ log s_i²`` (the row noise's ``log_det``, which
    the deviance adds back)."""
    data = grouped()
    model = build_model("y | se(s) ~ x + (1 | g)", data, priors=SE_PRIORS)
    tau, m0, v0 = 0.8, np.zeros(2), np.full(2, 25.0)
    X = model.design.X
    Z = (model.design.groups[0].refs[:, None] == np.arange(6)[None, :]).astype(float)
    V = np.diag(data["s"] ** 2) + tau ** 2 * Z @ Z.T + X @ np.diag(v0) @ X.T
    expected = multivariate_normal(X @ m0, V).logpdf(data["y"])
    with jax.enable_x64(True):
        got = float(log_marginal(_exact_statistics(model), jnp.ones(()), [jnp.eye(1) * tau],
                                 tuple(p.prior for p in model.priors.fixed)))
    assert got - 0.5 * model.row_noise().log_det == pytest.approx(expected, rel=1e-10)


@pytest.mark.unit
def test_the_exact_marginal_with_integer_weights_is_that_of_duplicated_rows():
    data = grouped()
    formula = "y | se(s) + weights(w) ~ x + (1 | g)"
    weighted = build_model(formula, data, priors=SE_PRIORS)
    repeated = build_model(formula.replace(" + weights(w)", ""), duplicated(data), priors=SE_PRIORS)
    plain = build_model("y | weights(w) ~ x + (1 | g)", data, priors=GAUSSIAN_PRIORS)
    plain_repeated = build_model("y ~ x + (1 | g)", duplicated(data), priors=GAUSSIAN_PRIORS)
    fixed = tuple(p.prior for p in weighted.priors.fixed)
    with jax.enable_x64(True):
        T = [jnp.eye(1) * 0.8]
        for a, b, sigma in ((weighted, repeated, 1.0), (plain, plain_repeated, 1.3)):
            assert float(log_marginal(_exact_statistics(a), jnp.asarray(sigma), T, fixed)) == pytest.approx(
                float(log_marginal(_exact_statistics(b), jnp.asarray(sigma), T, fixed)), rel=1e-12)


@pytest.mark.parametrize("formula, family, sampler", [
    ("y | se(s) + weights(w) ~ x + (1 | g)", "gaussian", "collapsed"),
    ("y | se(s) + weights(w) ~ x + (1 | g)", "gaussian", "gibbs"),
    ("exp(y) | weights(w) ~ x + (1 | g)", "lognormal", "collapsed"),
])
def test_the_exact_samplers_deviance_is_the_full_models(formula, family, sampler):
    """The deviance the exact samplers compute from weighted sums (plus the model's
    deviance shift) equals ``-2 Σ w_i log p(y_i | θ)`` recomputed from the rows."""
    model = build_model(formula, grouped(), family=family, priors=SE_PRIORS if "se(" in formula else GAUSSIAN_PRIORS)
    with jax.enable_x64(True):
        draws = get_sampler(sampler).run(model, 0, Options(chains=1, draws=5, warmup=20, progress=False))
        expected = deviance(draws.b, draws.aux, draws.effects, model_data(model.design, model.priors),
                            structure(model.layout, model.family))
    np.testing.assert_allclose(draws.stats["deviance"], expected, rtol=1e-8)


@pytest.mark.unit
@pytest.mark.parametrize("formula, chosen, reason", [
    ("y | se(s) ~ x + (1 | g)", "collapsed", "known standard errors se(s)"),
    ("y | weights(w) ~ x + (1 | g)", "collapsed", "weights(w) as row weights"),
    ("y | se(s) ~ x", "gibbs", "Collapsed cannot: with se(s), no sigma and no group terms"),
    ("y | se(s, sigma = TRUE) ~ x + (1 | g)", "nuts", "Gibbs cannot: se(s, sigma = TRUE)"),
])
def test_sampler_choice_with_addition_terms(formula, chosen, reason):
    sampler, why = choose_sampler("auto", build_model(formula, grouped()))
    assert sampler.name == chosen and reason in why


# -- statistics -------------------------------------------------------------------------------------

POSTERIORDB = SHARED_DATA / "posteriordb"


def _reference_eight_schools() -> tuple[pd.DataFrame, dict]:
    """posteriordb's data and reference draws of eight_schools_noncentered (10 chains × 1000)."""
    path = POSTERIORDB / "eight_schools-eight_schools_noncentered.draws.json.zip"
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the real data set beside the repository")
    with zipfile.ZipFile(POSTERIORDB / "eight_schools.json.zip") as archive:
        data = json.loads(archive.read(archive.namelist()[0]))
    with zipfile.ZipFile(path) as archive:
        chains = json.loads(archive.read(archive.namelist()[0]))
    draws = {name: np.array([chain[name] for chain in chains]) for name in chains[0]}
    return data, draws


def _table(draws: dict[str, np.ndarray]) -> pd.DataFrame:
    """Mean, sd and their MCSEs (ArviZ) of draws shaped (chain, draw), by name."""
    dataset = az.convert_to_dataset(draws)
    mcse_mean, mcse_sd = az.mcse(dataset, method="mean"), az.mcse(dataset, method="sd")
    return pd.DataFrame({"mean": [draws[n].mean() for n in draws], "sd": [draws[n].std(ddof=1) for n in draws],
                         "mcse_mean": [float(mcse_mean[n]) for n in draws],
                         "mcse_sd": [float(mcse_sd[n]) for n in draws]}, index=list(draws))


def test_eight_schools_agrees_with_posteriordb():
    """``est | se(se) ~ 1 + (1 | school)`` with posteriordb's priors (mu ~ Normal(0, 5),
    tau ~ half-Cauchy(0, 5)) on the file's rounded values (posteriordb's data): mu, tau and
    the eight thetas (mu plus each school's effect), their means and sds, within Monte Carlo
    error of the reference draws; the default (collapsed) sampler converges with no
    divergences (its group effects are exact draws given tau)."""
    reference_data, reference = _reference_eight_schools()
    data = read_shared("eight_schools.csv").assign(est=lambda d: d["est"].round(), se=lambda d: d["se"].round())
    np.testing.assert_array_equal(data["est"], reference_data["y"])
    np.testing.assert_array_equal(data["se"], reference_data["sigma"])
    fit = ml.fit("est | se(se) ~ 1 + (1 | school)", data, priors={"Intercept": ml.Normal(0, 5),
                                                                     "sd": ml.HalfCauchy(5)},
                 chains=4, draws=5000, seed=0)
    print(f"sampler {fit.sampler_info['sampler']}: {fit.num_divergent} divergent transitions")
    assert fit.sampler_info["sampler"] == "collapsed" and fit.num_divergent == 0
    assert "sigma" not in fit.idata.posterior
    # Smallest bulk ESS seen over seeds 0-4: 4,248 (tau) of 20,000 draws; the floor is about half.
    assert_converged(fit.summary(group_effects=False), 4, ess_min=2000, what="eight schools")
    posterior = fit.idata.posterior
    mu, effects = posterior["Intercept"].values, posterior["Intercept|school"].values
    ours = {"mu": mu, "tau": posterior["sd(Intercept|school)"].values,
            **{f"theta[{j + 1}]": mu + effects[..., j] for j in range(8)}}
    ours_table, reference_table = _table(ours), _table({name: reference[name] for name in ours})
    print(pd.concat({"multilevel": ours_table, "posteriordb": reference_table}, axis=1).round(3).to_string())
    assert_tables_agree(ours_table, reference_table, what="eight schools vs posteriordb")


@pytest.mark.parametrize("sampler", ["collapsed", "gibbs"])
def test_integer_weights_give_the_posterior_of_duplicated_rows_gaussian(sampler):
    data = grouped()
    options = dict(priors=GAUSSIAN_PRIORS, chains=4, draws=2000, seed=1)
    weighted = ml.fit("y | weights(w) ~ x + (1 | g)", data, sampler=sampler, **options)
    repeated = ml.fit("y ~ x + (1 | g)", duplicated(data), **options)
    assert weighted.sampler_info["sampler"] == sampler and repeated.sampler_info["sampler"] == "collapsed"
    for fit in (weighted, repeated):     # smallest bulk ESS seen: 3,603 of 8,000 (sd); the floor is under half
        assert_converged(fit.summary(), 4, ess_min=1500, what=fit.sampler_info["sampler"])
    assert_tables_agree(weighted.summary(), repeated.summary(), what=f"weighted ({sampler}) vs duplicated")


def test_integer_weights_give_the_posterior_of_duplicated_rows_poisson_nuts():
    data = grouped()
    options = dict(family="poisson", priors=POISSON_PRIORS, chains=4, draws=1000, seed=2)
    weighted = ml.fit("n | weights(w) ~ x + (1 | g)", data, **options)
    repeated = ml.fit("n ~ x + (1 | g)", duplicated(data), **options)
    assert weighted.sampler_info["sampler"] == "nuts"
    for fit in (weighted, repeated):     # smallest bulk ESS seen: 2,569 of 4,000 (sd); the floor is under half
        assert_converged(fit.summary(), 4, ess_min=1000, what="poisson")
    assert_tables_agree(weighted.summary(), repeated.summary(), what="weighted vs duplicated (NUTS)")


# -- results ----------------------------------------------------------------------------------------

def test_a_weighted_fit_stores_the_weighted_log_likelihood_and_predicts_the_same_after_loading(tmp_path):
    data = grouped()
    fit = ml.fit("y | weights(w) ~ x + (1 | g)", data, priors=GAUSSIAN_PRIORS, chains=2, draws=200, seed=0)
    mu = fit.predict(data, kind="linear", summary=False)
    sigma = fit.idata.posterior["sigma"].values.reshape(-1, 1)
    expected = data["w"].to_numpy() * stats.norm.logpdf(data["y"].to_numpy(), mu, sigma)
    np.testing.assert_allclose(fit.idata.log_likelihood["y"].values.reshape(expected.shape), expected, rtol=1e-9)
    fit.waic()
    fit.save(tmp_path / "weighted.nc")
    again = ml.load(tmp_path / "weighted.nc")
    assert again.info.spec.weights == WeightsTerm(Var("w"))
    new = data.drop(columns=["y", "w"]).head(4)                  # predictions need neither
    for kind in ("mean", "posterior_predictive"):
        pd.testing.assert_frame_equal(again.predict(new, kind=kind, seed=3), fit.predict(new, kind=kind, seed=3))


def test_posterior_predictive_of_a_se_model_reads_the_new_rows_standard_errors(tmp_path):
    data = grouped()
    fit = ml.fit("y | se(s) ~ x + (1 | g)", data, priors={"Intercept": ml.Normal(0, 5), "b": ml.Normal(0, 5)},
                 chains=2, draws=500, seed=0)
    fit.save(tmp_path / "se.nc")
    again = ml.load(tmp_path / "se.nc")
    assert again.info.layout.se == "known" and "sigma" not in again.summary().index
    new = data[["x", "g"]].head(2).assign(s=[0.01, 10.0])
    spread = again.predict(new, kind="posterior_predictive", summary=False, seed=1).std(axis=0)
    mean_sd = again.predict(new, summary=False).std(axis=0)
    assert spread[0] == pytest.approx(mean_sd[0], rel=0.1)            # s = 0.01 adds almost nothing
    assert spread[1] == pytest.approx(np.hypot(mean_sd[1], 10.0), rel=0.1)
    pd.testing.assert_frame_equal(again.predict(new[["x", "g"]]), fit.predict(new[["x", "g"]]))   # the mean needs no s
    with pytest.raises(ml.DataError, match="new data need the column\\(s\\) 's'"):
        again.predict(new[["x", "g"]], kind="posterior_predictive")
    with pytest.raises(ml.DataError, match="no sigma"):
        again.predict(new, dpar="sigma")
