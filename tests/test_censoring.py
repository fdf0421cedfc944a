"""Censored and truncated responses, brms's ``cens()`` and ``trunc()`` (issue 13), as specifications.

* Syntax: ``y | cens(c) ~ ...``, ``cens(c, y2)``, ``trunc(lb = a, ub = b)`` (numbers or
  columns, either bound alone), joined with ``weights()`` and ``trials()``; they round-trip
  through the JSON a saved fit keeps; malformed ones point at the fault.
* Data: codes as words, brms's -1/0/1/2 or a logical (True: right-censored) are the same
  design; ``y2`` may be missing outside interval rows; an unknown code, an interval without
  ``y2`` or with ``y2 <= y``, ``lb >= ub`` and a response outside its window raise DataError
  naming the column and the rows; a family without a distribution function raises
  FormulaError naming it.
* Distribution functions: every family's ``log_cdf`` and ``log_sf`` equal scipy's
  ``logcdf``/``logsf`` at fixed parameters, far into the tails, with finite gradients.
* Likelihood: censored rows contribute ``log F(y)``, ``log S(y)``, ``log(F(y2) - F(y))``
  (counts: ``P(Y <= y)``, ``P(Y > y)``, ``P(y < Y <= y2)``), truncated rows their density
  less the log mass of ``[lb, ub]`` (counts: ``F(ub) - F(lb - 1)``), weights multiply it:
  checked against scipy through the model stage's pointwise log-likelihood.
* Samplers: the exact Gaussian samplers refuse such models with the reason; NUTS fits them.
* Results (one small fit of a truncated Poisson): posterior predictive draws lie inside
  each new row's window, read from the new data, which must then have the bounds;
  ``kind="mean"`` is the truncated distribution's mean (each family's against scipy's
  quadrature or sums); a saved fit keeps the terms; the CLI fits such a formula (slow).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

import multilevel as ml
from multilevel.cli import main
from multilevel.design import build_design
from multilevel.design.bounds import ResponseBounds
from multilevel.errors import DataError, FormulaError
from multilevel.formula import parse_formula
from multilevel.formula.spec import CensTerm, Neg, Num, TruncTerm, Var, spec_from_dict, spec_to_dict
from multilevel.inference import choose_sampler
from multilevel.inference.registry import get_sampler
from multilevel.model import build_model, get_family, model_data, pointwise_log_likelihood, structure
from multilevel.model.bounded import bounded_log_likelihood, truncated_mean, truncated_sample


# -- syntax ---------------------------------------------------------------------------------------

@pytest.mark.unit
@pytest.mark.parametrize("formula, cens, trunc", [
    ("y | cens(c) ~ x", CensTerm(Var("c")), None),
    ("y | cens(c, y2) ~ x", CensTerm(Var("c"), Var("y2")), None),
    ("y | cens(c, y2 = hi) + weights(w) ~ x", CensTerm(Var("c"), Var("hi")), None),
    ("y | trunc(lb = 0, ub = 100) ~ x", None, TruncTerm(Num(0.0), Num(100.0))),
    ("y | trunc(ub = u) ~ x", None, TruncTerm(None, Var("u"))),
    ("y | trunc(-1) ~ x", None, TruncTerm(Neg(Num(1.0)), None)),
    ("s | trials(n) + cens(c) + trunc(lb = 1) ~ x", CensTerm(Var("c")), TruncTerm(Num(1.0), None)),
])
def test_cens_and_trunc_parse_print_and_round_trip_through_json(formula, cens, trunc):
    spec = parse_formula(formula)
    assert (spec.cens, spec.trunc) == (cens, trunc)
    assert spec_from_dict(spec_to_dict(spec)) == spec
    if trunc is not None:
        assert parse_formula(f"y | {spec.trunc} ~ x").trunc == trunc


@pytest.mark.unit
@pytest.mark.parametrize("formula, column, match", [
    ("y | cens() ~ x", 9, "expected a value"),
    ("y | trunc(lb = 1, lb = 2) ~ x", 18, "lb is given twice"),
    ("y | trunc(1, 2, 3) ~ x", 16, "2 argument"),
    ("y | cens(c, upper = u) ~ x", 12, "no argument 'upper'"),
    ("y ~ cens(c) + x", 4, "follows the response"),
])
def test_malformed_cens_and_trunc_point_at_the_fault(formula, column, match):
    with pytest.raises(FormulaError, match=match) as error:
        parse_formula(formula)
    assert error.value.position == column


@pytest.mark.unit
def test_a_parameter_formula_takes_no_cens_or_trunc():
    with pytest.raises(FormulaError, match=r"no trials\(\), se\(\), weights\(\), cens\(\), trunc\(\)"):
        build_model(["y ~ x", "sigma | trunc(lb = 0) ~ x"], censored_rows())


# -- data -----------------------------------------------------------------------------------------

def censored_rows() -> pd.DataFrame:
    return pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0, 5.0], "x": [0.1, -0.2, 0.3, 0.0, 1.0],
                         "c": ["none", "left", "right", "interval", "none"],
                         "y2": [np.nan, np.nan, np.nan, 6.0, np.nan], "u": [10.0, 10.0, 3.5, 8.0, 10.0]})


@pytest.mark.unit
def test_the_design_holds_codes_interval_ends_and_windows_and_keeps_rows_without_y2():
    design = build_design(parse_formula("y | cens(c, y2) + trunc(lb = 0, ub = u) ~ x"), censored_rows())
    assert design.num_rows == 5
    np.testing.assert_array_equal(design.bounds.censoring, [0, -1, 1, 2, 0])
    np.testing.assert_array_equal(design.bounds.y2, [1, 2, 3, 6, 5])
    np.testing.assert_array_equal(design.bounds.lb, 0.0)
    np.testing.assert_array_equal(design.bounds.ub, [10, 10, 3.5, 8, 10])
    new = build_design(parse_formula("y | cens(c, y2) + trunc(ub = u) ~ x"), censored_rows()[["x", "u"]],
                       with_response=False)
    assert new.bounds.censoring is None and np.isneginf(new.bounds.lb).all()


@pytest.mark.unit
@pytest.mark.parametrize("codes", [[0, -1, 1, 2, 0], ["None", "LEFT", "right", "interval", "none"]])
def test_censoring_codes_as_words_or_numbers_are_one_design(codes):
    design = build_design(parse_formula("y | cens(c, y2) ~ x"), censored_rows().assign(c=codes))
    np.testing.assert_array_equal(design.bounds.censoring, [0, -1, 1, 2, 0])


@pytest.mark.unit
def test_a_logical_censoring_column_means_right_censored():
    design = build_design(parse_formula("y | cens(c) ~ x"),
                          censored_rows().assign(c=[False, True, False, True, False]))
    np.testing.assert_array_equal(design.bounds.censoring, [0, 1, 0, 1, 0])


@pytest.mark.unit
@pytest.mark.parametrize("formula, change, match", [
    ("y | cens(c, y2) ~ x", {"c": ["none", "lft", "right", "interval", "none"]}, r"codes 'lft' in rows 1 \(1"),
    ("y | cens(c, y2) ~ x", {"c": [0, 3, 1, 2, 0]}, r"unknown codes 3.0 in rows 1"),
    ("y | cens(c) ~ x", {}, r"rows 3 .*interval-censored.*cens\(c, y2\)"),
    ("y | cens(c, y2) ~ x", {"y2": [np.nan] * 5}, r"y2 of cens\(c, y2\) are missing .* rows 3"),
    ("y | cens(c, y2) ~ x", {"y2": [0, 0, 0, 4.0, 0]}, r"empty in rows 3"),
    ("y | trunc(lb = u, ub = 4) ~ x", {}, r"lb >= ub in rows 0, 1, 3, 4"),
    ("y | trunc(ub = u) ~ x", {"u": [10, 10, 2.5, 8, 10]}, r"y lies outside .*rows 2 \(3 not in \[-inf, 2.5\]\)"),
    ("y | trunc(lb = 2) ~ x", {}, r"rows 0 \(1 not in \[2, inf\]\)"),
    ("y | cens(c, y2) + trunc(ub = 5.5) ~ x", {}, r"rows 3"),
])
def test_bad_censoring_and_truncation_raise_naming_the_column_and_rows(formula, change, match):
    with pytest.raises(DataError, match=match):
        build_design(parse_formula(formula), censored_rows().assign(**change))


@pytest.mark.unit
@pytest.mark.parametrize("family", ["bernoulli", "cumulative", "beta_binomial"])
def test_a_family_without_a_distribution_function_refuses_cens_and_trunc_by_name(family):
    data = pd.DataFrame({"y": [0, 1, 1, 0, 1, 0], "n": 3, "x": np.arange(6.0), "c": "none"})
    formula = "y | trials(n) + cens(c) ~ x" if family == "beta_binomial" else "y | cens(c) ~ x"
    with pytest.raises(FormulaError, match=f"the {family} family has no distribution function.*gaussian"):
        build_model(formula, data, family=family)


# -- distribution functions -------------------------------------------------------------------------

ETA = np.array([0.1, 0.5, -0.3, 1.0, -0.8])
Y_POS = np.array([0.3, 1.2, 2.5, 7.0, 60.0])
K = np.array([0.0, 2.0, 5.0, 1.0, 40.0])
N = np.array([5.0, 5.0, 8.0, 3.0, 45.0])
Y_UNIT = np.array([0.1, 0.5, 0.7, 0.95, 0.999])
Y_REAL = np.array([-40.0, 0.0, 2.5, 30.0, -3.0])


def _mu(eta):
    return np.exp(eta)


#: (family, aux, y, trials, the scipy distribution at ETA)
REFERENCES = {
    "gaussian": ((1.3,), Y_REAL, None, lambda a: stats.norm(ETA, a[0])),
    "student_t": ((1.3, 4.0), Y_REAL, None, lambda a: stats.t(a[1], ETA, a[0])),
    "lognormal": ((0.7,), Y_POS, None, lambda a: stats.lognorm(a[0], scale=np.exp(ETA))),
    "gamma": ((2.5,), Y_POS, None, lambda a: stats.gamma(a[0], scale=_mu(ETA) / a[0])),
    "exponential": ((), Y_POS, None, lambda a: stats.expon(scale=_mu(ETA))),
    "weibull": ((1.7,), Y_POS, None,
                lambda a: stats.weibull_min(a[0], scale=_mu(ETA) / special.gamma(1 + 1 / a[0]))),
    "beta": ((6.0,), Y_UNIT, None, lambda a: stats.beta(special.expit(ETA) * a[0], (1 - special.expit(ETA)) * a[0])),
    "poisson": ((), K, None, lambda a: stats.poisson(_mu(ETA))),
    "negbinomial": ((3.0,), K, None, lambda a: stats.nbinom(a[0], a[0] / (a[0] + _mu(ETA)))),
    "binomial": ((), K, N, lambda a: stats.binom(N, special.expit(ETA))),
}


def _tails(family, aux, y, trials):
    """``(log F(y), log S(y))`` and the gradient of their sum in ``(eta, aux)``, compiled as one program."""
    f = get_family(family)

    def both(eta, params):
        t = None if trials is None else jnp.asarray(trials)
        return f.log_cdf(jnp.asarray(y), eta, params, t), f.log_sf(jnp.asarray(y), eta, params, t)

    def total(eta, params):
        return sum(jnp.sum(v) for v in both(eta, params))

    with jax.enable_x64(True):
        args = (jnp.asarray(ETA), tuple(jnp.asarray(v) for v in aux))
        values, grads = jax.jit(lambda *a: (both(*a), jax.grad(total, argnums=(0, 1))(*a)))(*args)
    return np.asarray(values[0]), np.asarray(values[1]), grads


@pytest.mark.unit
@pytest.mark.parametrize("family", list(REFERENCES))
def test_log_cdf_and_log_sf_are_scipys_into_the_tails_with_finite_gradients(family):
    aux, y, trials, reference = REFERENCES[family]
    log_cdf, log_sf, (grad_eta, grad_aux) = _tails(family, aux, y, trials)
    expected = reference(aux)
    np.testing.assert_allclose(log_cdf, expected.logcdf(y), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(log_sf, expected.logsf(y), rtol=1e-9, atol=1e-12)
    assert np.isfinite(np.asarray(grad_eta)).all() and all(np.isfinite(float(g)) for g in grad_aux)


@pytest.mark.unit
@pytest.mark.parametrize("family", ["zero_inflated_poisson", "hurdle_negbinomial", "hurdle_lognormal"])
def test_the_inflated_families_tails_are_those_of_their_mixture(family):
    base = family.split("_", 2)[-1] if family.startswith("zero") else family.split("_", 1)[1]
    base_aux, y, trials, reference = REFERENCES[base]
    p = 0.3
    log_cdf, log_sf, _ = _tails(family, base_aux + (p,), y, trials)
    dist = reference(base_aux)
    if family.startswith("zero"):
        expected_sf = (1 - p) * dist.sf(y)
    else:
        expected_sf = (1 - p) * dist.sf(y) / dist.sf(0)
    np.testing.assert_allclose(np.exp(log_sf), expected_sf, rtol=1e-9)
    np.testing.assert_allclose(np.exp(log_cdf), 1 - expected_sf, rtol=1e-9)


# -- likelihood -------------------------------------------------------------------------------------

def _model_loglik(formula, data, family):
    model = build_model(formula, data, family=family)
    rng = np.random.default_rng(3)
    b = rng.normal(0, 0.3, size=(1, 1, len(model.layout.fixed)))
    aux = np.exp(rng.normal(0, 0.3, size=(1, 1, len(model.layout.aux))))
    with jax.enable_x64(True):
        got = pointwise_log_likelihood(b, aux, [], model_data(model.design, model.priors),
                                       structure(model.layout, model.family))[0, 0]
    eta = model.design.X @ b[0, 0]
    return got, eta, dict(zip(model.layout.aux, aux[0, 0]))


@pytest.mark.unit
def test_a_censored_truncated_weighted_gaussian_row_is_its_probability_mass():
    data = censored_rows().assign(w=[1.0, 2.0, 0.5, 1.0, 3.0])
    got, eta, aux = _model_loglik("y | cens(c, y2) + trunc(lb = 0, ub = u) + weights(w) ~ x", data, "gaussian")
    d = stats.norm(eta, aux["sigma"])
    y, y2, ub = data["y"].to_numpy(), data["y2"].to_numpy(), data["u"].to_numpy()
    censored = np.select([data["c"] == "none", data["c"] == "left", data["c"] == "right"],
                         [d.logpdf(y), d.logcdf(y), d.logsf(y)], np.log(d.cdf(y2) - d.cdf(y)))
    expected = data["w"].to_numpy() * (censored - np.log(d.cdf(ub) - d.cdf(0.0)))
    np.testing.assert_allclose(got, expected, rtol=1e-10)


@pytest.mark.unit
def test_a_censored_and_truncated_count_follows_brms_conventions():
    data = pd.DataFrame({"y": [3.0, 2.0, 4.0, 1.0, 5.0], "x": [0.1, -0.2, 0.3, 0.0, 1.0],
                         "c": [0, -1, 1, 2, 0], "y2": [0, 0, 0, 3.0, 0], "u": [9.0, 9.0, 6.0, 9.0, 9.0]})
    got, eta, _ = _model_loglik("y | cens(c, y2) + trunc(lb = 1, ub = u) ~ x", data, "poisson")
    d = stats.poisson(np.exp(eta))
    y = data["y"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):      # the interval's form at the other rows
        censored = np.select([data["c"] == 0, data["c"] == -1, data["c"] == 1],
                             [d.logpmf(y), d.logcdf(y), d.logsf(y)], np.log(d.cdf(data["y2"]) - d.cdf(y)))
    expected = censored - np.log(d.cdf(data["u"].to_numpy()) - d.cdf(0.0))   # P(1 <= Y <= u)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_a_right_censored_weibull_row_is_its_survival_and_a_narrow_window_keeps_its_mass():
    family = get_family("weibull")
    with jax.enable_x64(True):
        y = jnp.asarray([5.0, 0.01])
        bounds = ResponseBounds(jnp.asarray([1.0, -1.0]))
        got = np.asarray(bounded_log_likelihood(family, y, jnp.zeros(2), (jnp.asarray(2.0),), None, bounds))
        gaussian = get_family("gaussian")
        window = ResponseBounds(None, None, jnp.asarray([0.0]), jnp.asarray([1.8]))
        narrow = float(bounded_log_likelihood(gaussian, jnp.asarray([1.0]), jnp.asarray([55.0]),
                                              (jnp.asarray(1e12),), None, window)[0])
    scale = 1.0 / special.gamma(1.5)
    np.testing.assert_allclose(got, [stats.weibull_min(2.0, scale=scale).logsf(5.0),
                                     stats.weibull_min(2.0, scale=scale).logcdf(0.01)], rtol=1e-10)
    assert narrow == pytest.approx(-np.log(1.8), rel=1e-9)   # uniform on [0, 1.8] as sigma grows


@pytest.mark.unit
def test_truncated_draws_lie_in_their_windows():
    with jax.enable_x64(True):
        eta = jnp.asarray([[0.0, 3.0, -2.0]] * 200)
        draws, normal = jax.jit(lambda eta: (
            truncated_sample(get_family("poisson"), jax.random.PRNGKey(0), eta, (), None,
                             jnp.asarray([1.0, 0.0, 2.0]), jnp.asarray([np.inf, 10.0, 4.0])),
            truncated_sample(get_family("gaussian"), jax.random.PRNGKey(1), eta, (1.0,), None,
                             jnp.asarray([-np.inf, 2.5, -1.0]), jnp.asarray([0.0, np.inf, 1.0]))))(eta)
        draws, normal = np.asarray(draws), np.asarray(normal)
    assert (draws[:, 0] >= 1).all() and (draws[:, 1] <= 10).all() and ((draws[:, 2] >= 2) & (draws[:, 2] <= 4)).all()
    assert (normal[:, 0] <= 0).all() and (normal[:, 1] >= 2.5).all() and (np.abs(normal[:, 2]) <= 1).all()
    assert len(np.unique(draws[:, 2])) == 3          # 2, 3 and 4 all drawn: redrawn, not clipped


@pytest.mark.unit
@pytest.mark.parametrize("family", list(REFERENCES))
def test_the_mean_of_a_truncated_response_is_its_windows_average(family):
    aux, _, trials, reference = REFERENCES[family]
    discrete = get_family(family).discrete
    if family == "beta":
        lb, ub = np.array([-np.inf, 0.3, 0.2, 0.0, 0.5]), np.array([0.5, np.inf, 0.9, 1.0, 0.6])
    elif discrete:
        lb, ub = np.array([-np.inf, 1.0, 1.0, 0.0, 2.0]), np.array([2.0, np.inf, 3.0, 5.0, 4.0])
    else:
        lb, ub = np.array([-np.inf, 0.5, 1.0, 0.0, 2.0]), np.array([2.0, np.inf, 3.0, 5.0, 2.5])
    with jax.enable_x64(True):
        got = np.asarray(jax.jit(lambda *a: truncated_mean(get_family(family), *a))(
            jnp.asarray(ETA), tuple(jnp.asarray(v) for v in aux), None if trials is None else jnp.asarray(trials),
            jnp.asarray(lb), jnp.asarray(ub)))
    expected = []
    for i in range(len(ETA)):
        d = reference(aux)
        one = d.dist(*[np.broadcast_to(a, ETA.shape)[i] for a in d.args],
                     **{k: np.broadcast_to(v, ETA.shape)[i] for k, v in d.kwds.items()})
        lo, hi = max(lb[i], one.support()[0]), min(ub[i], one.support()[1])
        if discrete:
            k = np.arange(lo, min(hi, 500) + 1)
            expected.append(np.sum(k * one.pmf(k)) / np.sum(one.pmf(k)))
        else:
            expected.append(one.expect(lambda y: y, lb=lo, ub=hi, conditional=True))
    np.testing.assert_allclose(got, expected, rtol=1e-7)


# -- samplers -------------------------------------------------------------------------------------

@pytest.mark.unit
@pytest.mark.parametrize("formula", ["y | cens(c, y2) ~ x + (1 | g)", "y | trunc(lb = 0) ~ x + (1 | g)"])
def test_the_exact_gaussian_samplers_refuse_censoring_and_truncation_and_nuts_fits_them(formula):
    data = pd.concat([censored_rows()] * 2, ignore_index=True).assign(g=list("ababababab"))
    model = build_model(formula, data)
    for name in ("collapsed", "gibbs"):
        assert "probability, not a Gaussian density" in get_sampler(name).problem(model)
    assert choose_sampler("auto", model)[0].name == "nuts"


# -- results ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def truncated_counts(tmp_path_factory):
    """A small truncated Poisson fit (each row's upper bound a column), saved and loaded."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=80)
    u = rng.integers(4, 9, 80).astype(float)
    y = rng.poisson(np.exp(0.8 + 0.4 * x))
    keep = (y >= 1) & (y <= u)
    data = pd.DataFrame({"y": y[keep], "x": x[keep], "u": u[keep]})
    fit = ml.fit("y | trunc(lb = 1, ub = u) ~ x", data=data, family="poisson", chains=2, draws=200,
                 warmup=200, seed=1)
    path = tmp_path_factory.mktemp("cens") / "fit.nc"
    fit.save(path)
    return fit, ml.load(path), data


def test_posterior_predictive_draws_lie_in_the_new_rows_windows_after_loading(truncated_counts):
    fit, loaded, _ = truncated_counts
    assert loaded.info.spec.trunc == fit.info.spec.trunc
    new = pd.DataFrame({"x": [0.0, 2.0, -2.0], "u": [3.0, 4.0, 9.0]})
    draws = np.asarray(loaded.predict(new, kind="posterior_predictive", summary=False))
    assert ((draws >= 1) & (draws <= new["u"].to_numpy())).all()
    assert set(np.unique(draws[:, 0])) == {1, 2, 3}      # the whole window of the first row is reached
    with pytest.raises(DataError, match="the new data need the column.*'u'"):
        loaded.predict(new[["x"]], kind="posterior_predictive")


def test_the_mean_of_a_truncated_fit_is_that_of_each_new_rows_window(truncated_counts):
    fit, _, _ = truncated_counts
    new = pd.DataFrame({"x": [0.0, 1.5], "u": [3.0, 20.0]})
    got = np.asarray(fit.predict(new, kind="mean", summary=False))
    post = fit.idata.posterior
    mu = np.exp(post["Intercept"].values.reshape(-1, 1) + post["x"].values.reshape(-1, 1) * new["x"].to_numpy())
    k = np.arange(1, 21)[:, None, None]
    p = stats.poisson.pmf(k, mu) * (k <= new["u"].to_numpy())
    np.testing.assert_allclose(got, (k * p).sum(axis=0) / p.sum(axis=0), rtol=1e-8)
    untruncated = np.asarray(fit.predict(new[["x"]], kind="mean", summary=False))
    np.testing.assert_allclose(untruncated, mu, rtol=1e-10)


def test_a_truncated_fit_scores_its_rows_by_their_truncated_mass(truncated_counts):
    fit, _, data = truncated_counts
    stored = np.asarray(fit.idata.log_likelihood["y"].values)
    post = fit.idata.posterior
    eta = post["Intercept"].values[..., None] + post["x"].values[..., None] * data["x"].to_numpy()
    d = stats.poisson(np.exp(eta))
    expected = d.logpmf(data["y"].to_numpy()) - np.log(d.cdf(data["u"].to_numpy()) - d.cdf(0.0))
    np.testing.assert_allclose(stored, expected, rtol=1e-8)


@pytest.mark.slow
def test_the_cli_fits_a_censored_formula(tmp_path, capsys):
    data = pd.concat([censored_rows()] * 4, ignore_index=True)
    path = tmp_path / "rows.csv"
    data.to_csv(path, index=False)
    assert main(["fit", str(path), "y | cens(c, y2) ~ x", "--chains", "1", "--draws", "100", "--warmup", "100",
                 "--out", str(tmp_path / "fit.nc")]) in (0, 1)
    out = capsys.readouterr().out
    assert "sigma" in out and "nuts" in out.lower()
