"""Families beyond the Gaussian: likelihoods, support checks, fits, predictions.

* each family's pointwise log-likelihood equals scipy.stats on a grid of
  responses and linear predictors, for every link; student_t's nu is at least 1;
* responses outside a family's support raise DataError naming the rows;
* a small simulated fit per family (NUTS) converges and recovers the true
  parameters within their 99% intervals; bernoulli and poisson fits agree with a
  long NumPyro run of the same model and priors, written by hand, within Monte
  Carlo error (thresholds and their false-alarm rates at each test);
* predictions of every kind are on the data scale and in the support, take trials
  and offsets from the new data, and are the same on a fit restored by ``ml.load``;
* a Gaussian offset is taken off the response by the collapsed and Gibbs samplers;
* the real cbpp data (lme4's binomial example) converge.
"""

from __future__ import annotations

import re
import warnings

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
import pytest
from numpyro.infer import MCMC, NUTS
from scipy import special, stats

import multilevel as ml
from multilevel.cli import main
from multilevel.design import build_design
from multilevel.model import Layout, get_family, resolve_priors
from multilevel.model.logdensity import Position, constrain_scales
from multilevel.model.prior_table import PriorValues
from agreement import assert_converged, assert_tables_agree
from conftest import read_shared

DRAWS = dict(chains=2, draws=500, warmup=500, progress=False)
#: Divergent transitions allowed, as a share of the draws. None was seen in any fit of this
#: module (5 simulated families, 1000 draws each; cbpp, 2000), which bounds the rate per
#: transition by ~4e-4 (95%): a Poisson count of mean 0.4 exceeds 5 with probability 4e-6.
#: A funnel the parameterisation does not remove diverges in percents of the draws.
MAX_DIVERGENT_SHARE = 5e-3
#: Explicit priors shared by the fits compared with hand-written NumPyro.
PRIORS = {"Intercept": ml.Normal(0, 2.5), "b": ml.Normal(0, 2.5), "sd": ml.HalfStudentT(3, 2.5)}


# -- likelihoods ---------------------------------------------------------------------------
ETA = np.linspace(-5, 5, 11)


def _grid(values):
    y, eta = np.meshgrid(values, ETA)
    return y.ravel(), eta.ravel()


def _logistic(eta):
    return special.expit(eta)


@pytest.mark.unit
@pytest.mark.parametrize("family, y_values, aux, trials, reference", [
    ("gaussian", np.linspace(-3, 3, 7), (1.3,), None,
     lambda y, eta, n: stats.norm.logpdf(y, eta, 1.3)),
    ("student_t", np.linspace(-3, 3, 7), (1.3, 3.5), None,
     lambda y, eta, n: stats.t.logpdf(y, 3.5, eta, 1.3)),
    ("student_t(nu=6)", np.linspace(-3, 3, 7), (0.7,), None,
     lambda y, eta, n: stats.t.logpdf(y, 6.0, eta, 0.7)),
    ("bernoulli", np.array([0.0, 1.0]), (), None,
     lambda y, eta, n: stats.bernoulli.logpmf(y, _logistic(eta))),
    ("bernoulli(probit)", np.array([0.0, 1.0]), (), None,
     lambda y, eta, n: stats.bernoulli.logpmf(y, stats.norm.cdf(eta))),
    ("binomial", np.arange(0.0, 13.0), (), 12.0,
     lambda y, eta, n: stats.binom.logpmf(y, n, _logistic(eta))),
    ("binomial(probit)", np.arange(0.0, 13.0), (), 12.0,
     lambda y, eta, n: stats.binom.logpmf(y, n, stats.norm.cdf(eta))),
    ("poisson", np.arange(0.0, 40.0, 3.0), (), None,
     lambda y, eta, n: stats.poisson.logpmf(y, np.exp(eta))),
    ("negbinomial", np.arange(0.0, 40.0, 3.0), (2.5,), None,
     lambda y, eta, n: stats.nbinom.logpmf(y, 2.5, 2.5 / (2.5 + np.exp(eta)))),
])
def test_log_likelihood_equals_scipy_on_a_grid(family, y_values, aux, trials, reference):
    y, eta = _grid(y_values)
    n = None if trials is None else np.full_like(y, trials)
    with jax.enable_x64(True):
        ours = np.asarray(get_family(family).log_likelihood(y, eta, aux, n))
    expected = reference(y, eta, n)
    # scipy's binomial computes log(1 - p) from p, losing relative precision where p ≈ 1
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-9)


@pytest.mark.unit
def test_probit_log_likelihood_stays_finite_far_in_the_tails():
    with jax.enable_x64(True):
        family = get_family("bernoulli(probit)")
        values = np.asarray(family.log_likelihood(np.array([1.0, 0.0]), np.array([-40.0, 40.0]), ()))
        slope = float(jax.grad(lambda e: family.log_likelihood(1.0, e, ()))(-40.0))
    np.testing.assert_allclose(values, stats.norm.logcdf(-40.0), rtol=1e-10)
    assert np.isfinite(slope) and slope > 0


@pytest.mark.unit
@pytest.mark.parametrize("text, name, link, aux", [
    ("gaussian", "gaussian", "identity", ("sigma",)),
    ("student_t", "student_t", "identity", ("sigma", "nu")),
    ("student_t(nu=4)", "student_t", "identity", ("sigma",)),
    ("bernoulli", "bernoulli", "logit", ()),
    ("bernoulli(probit)", "bernoulli", "probit", ()),
    ("binomial(link='probit')", "binomial", "probit", ()),
    ("poisson", "poisson", "log", ()),
    ("negbinomial", "negbinomial", "log", ("shape",)),
])
def test_family_names_links_and_parameters(text, name, link, aux):
    family = get_family(text)
    assert (family.name, family.link, family.aux) == (name, link, aux)
    assert get_family(family.to_dict()) == family
    assert hash(family) == hash(get_family(text))


@pytest.mark.unit
def test_family_objects_and_bad_names():
    assert ml.families.bernoulli("probit") == get_family("bernoulli(probit)")
    assert ml.families.student_t(nu=3).aux == ("sigma",)
    with pytest.raises(ml.MultilevelError, match="no 'log' link"):
        get_family("bernoulli(log)")
    with pytest.raises(ml.MultilevelError, match="unknown family 'skellam'"):
        ml.fit("y ~ 1", pd.DataFrame({"y": [1.0, 2.0]}), family="skellam")


# -- default priors on the link scale -----------------------------------------------------------
@pytest.mark.unit
def test_default_priors_of_link_families_follow_the_documented_table():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, 200)
    data = pd.DataFrame({"y": rng.binomial(1, 0.3, 200), "x": x, "g": np.repeat(np.arange(10), 20)})
    family = get_family("bernoulli")
    d = build_design(ml.parse_formula("y ~ x + (1 + x | g)"), data)
    table = {p.name: p.prior for p in resolve_priors(d, Layout.of(d, family), None, family).all()}
    s_x, m_x = x.std(ddof=1), x.mean()
    assert table["x"].mean == 0 and table["x"].sd == pytest.approx(2.5 / s_x)
    assert table["Intercept"].mean == pytest.approx(special.logit(data["y"].mean()))
    assert table["Intercept"].sd == pytest.approx(np.hypot(2.5, 2.5 * m_x / s_x))
    assert table["sd(Intercept|g)"] == ml.HalfStudentT(3, 2.5)
    assert table["sd(x|g)"].scale == pytest.approx(2.5 / s_x)
    for name, family, prior in (("nu", "student_t", ml.Gamma(2, 0.1)),
                                ("shape", "negbinomial", ml.Gamma(0.01, 0.01))):
        family = get_family(family)
        table = {p.name: p.prior for p in resolve_priors(d, Layout.of(d, family), None, family).all()}
        assert table[name] == prior


@pytest.mark.unit
def test_student_t_degrees_of_freedom_are_at_least_one_as_in_brms():
    """nu = 1 + exp(u), its prior truncated at 1: a unit-rate exponential prior then gives
    nu - 1 ~ Exp(1) (memoryless), so the density on u is exactly that of log Exp(1)."""
    family = get_family("student_t")
    assert family.aux_lower == (0.0, 1.0) and get_family("student_t(nu=3)").aux_lower == (0.0,)
    priors = PriorValues((), (ml.HalfNormal(1.0), ml.Exponential(1.0)), (), ())
    with jax.enable_x64(True):
        for u in (-30.0, -1.0, 0.0, 2.0):
            aux, _, _, log_prior, log_jac = constrain_scales(Position(None, jnp.array([0.0, u]), (), ()), priors, (),
                                                             family.params)
            nu = float(aux[1])
            assert nu == pytest.approx(1.0 + np.exp(u)) and nu >= 1.0
            log_sigma_part = float(ml.HalfNormal(1.0).log_prob(1.0))
            expected = stats.expon.logpdf(np.exp(u)) + u - 1.0  # Exp(1) density at nu is e^-1 times at nu - 1
            assert float(log_prior + log_jac) - log_sigma_part == pytest.approx(expected, abs=1e-12)
    data = pd.DataFrame({"y": [0.1, 0.4, -0.3, 2.0], "x": [0.0, 1.0, 2.0, 3.0]})
    with pytest.raises(ml.PriorError, match="nu is at least 1"):
        ml.fit("y ~ x", data, family="student_t", priors={"nu": ml.Uniform(0.1, 0.9)})


# -- support ---------------------------------------------------------------------------------------
@pytest.mark.unit
@pytest.mark.parametrize("family, formula, column, values, rows", [
    ("bernoulli", "y ~ x", "y", [0, 1, 2, 1, 0.5, 0], "rows 2 (2), 4 (0.5)"),
    ("poisson", "y ~ x", "y", [0, 3, -1, 2, 1.5, 0], "rows 2 (-1), 4 (1.5)"),
    ("negbinomial", "y ~ x", "y", [0, 3, -1, 2, 1, 0], "rows 2 (-1)"),
    ("binomial", "y | trials(n) ~ x", "y", [0, 3, 5, 2, 1, 0], "rows 2 (5 of 4)"),
    ("binomial", "cbind(y, n - y) ~ x", "y", [0, 3, 1, 2, 1.5, 0], "rows 4 (1.5 of 4)"),
])
def test_responses_outside_the_support_raise_data_error_naming_the_rows(family, formula, column, values, rows):
    data = pd.DataFrame({column: values, "x": np.arange(6.0), "n": 4})
    with pytest.raises(ml.DataError, match=rf"the {family} family needs the response .* {re.escape(rows)} are not"):
        ml.fit(formula, data, family=family)


@pytest.mark.unit
def test_binomial_needs_trials_and_other_families_refuse_them():
    data = pd.DataFrame({"y": [0, 1, 2], "x": [0.0, 1.0, 2.0], "n": 3})
    with pytest.raises(ml.DataError, match="needs the number of trials"):
        ml.fit("y ~ x", data, family="binomial")
    with pytest.raises(ml.DataError, match="use family='binomial'"):
        ml.fit("y | trials(n) ~ x", data, family="poisson")


@pytest.mark.parametrize("sampler", ["collapsed", "gibbs"])
def test_gaussian_offset_is_taken_off_the_response_by_the_fast_paths(sampler):
    """``y ~ x + offset(o)`` on ``y + o`` is the model ``y ~ x`` on y: the same draws (integer
    data, so that ``(y + o) - o`` is y exactly), and deviances on the offset data."""
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"y": rng.integers(-20, 20, 60).astype(float), "x": np.arange(60.0) % 7,
                         "o": rng.integers(0, 50, 60).astype(float), "g": np.arange(60) % 6})
    shifted = data.assign(y=data["y"] + data["o"])
    priors = {"b": ml.Normal(0, 10), "Intercept": ml.Normal(0, 10), "sigma": ml.HalfNormal(10), "sd": ml.HalfNormal(10)}
    options = dict(priors=priors, sampler=sampler, chains=2, draws=100, warmup=100, seed=4, progress=False)
    with_offset = ml.fit("y ~ x + offset(o) + (1 | g)", shifted, **options)
    without = ml.fit("y ~ x + (1 | g)", data, **options)
    for name in ("Intercept", "x", "sigma", "sd(Intercept|g)", "Intercept|g"):
        np.testing.assert_allclose(with_offset.idata.posterior[name].values, without.idata.posterior[name].values,
                                   rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(with_offset.idata.sample_stats["deviance"].values,
                               without.idata.sample_stats["deviance"].values, rtol=1e-9)


def test_auto_fits_a_gaussian_offset_by_the_collapsed_sampler():
    data = pd.DataFrame({"y": np.arange(40.0), "x": np.arange(40.0) % 3, "o": 1.0, "g": np.arange(40) % 4})
    fit = ml.fit("y ~ x + offset(o) + (1 | g)", data, chains=1, draws=50, warmup=50, progress=False)
    assert fit.sampler_info["sampler"] == "collapsed"


# -- simulated fits ----------------------------------------------------------------------------------
GROUPS, PER_GROUP = 12, 25


def simulate(kind: str, seed: int = 0) -> tuple[pd.DataFrame, dict[str, float]]:
    """Data of one family with a varying intercept, and the true parameters."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(GROUPS), PER_GROUP)
    x = rng.normal(size=g.size)
    truth = {"Intercept": -0.3, "x": 0.8, "sd(Intercept|g)": 0.6}
    a = rng.normal(0, truth["sd(Intercept|g)"], GROUPS)
    eta = truth["Intercept"] + truth["x"] * x + a[g]
    data = pd.DataFrame({"x": x, "g": [f"h{i}" for i in g]})
    if kind == "bernoulli":
        data["y"] = rng.binomial(1, special.expit(eta))
    elif kind == "binomial":          # probit link
        data["n"] = rng.integers(1, 10, g.size)
        data["y"] = rng.binomial(data["n"], stats.norm.cdf(eta))
    elif kind == "poisson":           # exposure as an offset
        data["exposure"] = rng.uniform(0.5, 4.0, g.size)
        data["y"] = rng.poisson(data["exposure"] * np.exp(eta))
    elif kind == "negbinomial":
        truth["shape"] = 3.0
        mu = np.exp(eta + 1.0)
        truth["Intercept"] += 1.0
        data["y"] = rng.negative_binomial(truth["shape"], truth["shape"] / (truth["shape"] + mu))
    elif kind == "student_t":
        truth.update(sigma=0.5, nu=4.0)
        data["y"] = eta + truth["sigma"] * rng.standard_t(truth["nu"], g.size)
    return data, truth


MODELS = {
    "bernoulli": ("y ~ x + (1 | g)", "bernoulli"),
    "binomial": ("y | trials(n) ~ x + (1 | g)", "binomial(probit)"),
    "poisson": ("y ~ x + offset(log(exposure)) + (1 | g)", "poisson"),
    "negbinomial": ("y ~ x + (1 | g)", "negbinomial"),
    "student_t": ("y ~ x + (1 | g)", "student_t"),
}
OPTIONS = {kind: dict(DRAWS) for kind in MODELS}
_FITS: dict[str, tuple] = {}


def fitted(kind: str):
    """``(fit, data, truth)`` of the simulated model of ``kind``, fitted once per session."""
    if kind not in _FITS:
        data, truth = simulate(kind)
        formula, family = MODELS[kind]
        priors = PRIORS if kind in ("bernoulli", "poisson") else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = ml.fit(formula, data, family=family, priors=priors, seed=1, posterior_predictive=True,
                         **OPTIONS[kind])
        _FITS[kind] = (fit, data, truth)
    return _FITS[kind]


@pytest.mark.parametrize("kind", list(MODELS))
def test_simulated_fit_recovers_the_truth_within_99_percent_intervals(kind):
    """The data are fixed (NumPy's generator gives the same numbers on every machine), so
    whether the truth lies inside the 99% interval is a property of the posterior; only
    the Monte Carlo error of the estimated interval ends varies. Observed, every true
    value is at least 4.6 quantile MCSEs (ArviZ's) inside its interval (negbinomial's
    sd, lower end; all others > 6): a false alarm below ~1e-5 in all.

    Convergence: bulk ESS >= 100 (observed >= 320) and R-hat within the limit for its
    ESS (``agreement.rhat_limit``: false alarm < 1e-3 over the parameters)."""
    fit, _, truth = fitted(kind)
    assert fit.sampler_info["sampler"] == "nuts"
    assert fit.num_divergent <= MAX_DIVERGENT_SHARE * DRAWS["chains"] * DRAWS["draws"], fit.num_divergent
    table = fit.summary(prob=0.99, group_effects=False)
    assert set(truth) == set(table.index)
    for name, value in truth.items():
        assert table.loc[name, "q0.5"] < value < table.loc[name, "q99.5"], (name, value, table.loc[name])
    assert_converged(table, DRAWS["chains"], ess_min=100, what=kind)


def numpyro_reference(kind: str, data: pd.DataFrame) -> pd.DataFrame:
    """The same model and priors as ``PRIORS``, written in NumPyro by hand (non-centred), run long."""
    x, y = data["x"].to_numpy(), data["y"].to_numpy(dtype=float)
    g = pd.Categorical(data["g"]).codes
    offset = np.log(data["exposure"].to_numpy()) if kind == "poisson" else 0.0

    def model():
        b0 = numpyro.sample("Intercept", dist.Normal(0, 2.5))
        b1 = numpyro.sample("x", dist.Normal(0, 2.5))
        sd = numpyro.sample("sd(Intercept|g)", dist.FoldedDistribution(dist.StudentT(3, 0, 2.5)))
        z = numpyro.sample("z", dist.Normal(0, 1).expand([GROUPS]))
        eta = b0 + b1 * x + sd * z[g] + offset
        if kind == "bernoulli":
            numpyro.sample("y", dist.BernoulliLogits(eta), obs=y)
        else:
            numpyro.sample("y", dist.Poisson(jax.numpy.exp(eta)), obs=y)

    with jax.enable_x64(True):
        mcmc = MCMC(NUTS(model), num_warmup=500, num_samples=3000, num_chains=4, chain_method="vectorized",
                    progress_bar=False)
        mcmc.run(jax.random.PRNGKey(7))
        samples = mcmc.get_samples(group_by_chain=True)
    names = ["Intercept", "x", "sd(Intercept|g)"]
    idata = az.from_dict(posterior={name: np.asarray(samples[name]) for name in names})
    return az.summary(idata, round_to="none")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bernoulli", "poisson"])
def test_fit_agrees_with_a_long_hand_written_numpyro_run(kind):
    """Means and sds of the three global parameters within the z bound of
    ``agreement.z_limit`` over the 6 comparisons (z = 4.02; false alarm < 1e-3), after the
    reference passes bulk ESS >= 400 and the R-hat limit for its ESS (our fit's
    convergence is checked above)."""
    fit, data, _ = fitted(kind)
    reference = numpyro_reference(kind, data)
    assert_converged(reference, 4, ess_min=400, what=f"{kind} reference")
    assert_tables_agree(fit.summary(group_effects=False).loc[reference.index], reference, what=kind)


def test_information_criteria_work_from_the_family_log_likelihood():
    fit, data, _ = fitted("binomial")
    assert fit.idata.log_likelihood["y"].shape == (2, 500, len(data))
    assert np.isfinite(fit.dic().dic)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # ArviZ: some pointwise variances > 0.4 with 300 rows
        assert np.isfinite(fit.waic().elpd_waic)


# -- predictions ----------------------------------------------------------------------------------
def new_rows(kind: str) -> pd.DataFrame:
    rows = pd.DataFrame({"x": [-1.0, 0.0, 2.0], "g": ["h0", "h1", "new"]})
    if kind == "binomial":
        rows["n"] = [1, 5, 20]
    if kind == "poisson":
        rows["exposure"] = [1.0, 2.0, 0.5]
    return rows


def num_draws(fit) -> int:
    return fit.idata.posterior.sizes["chain"] * fit.idata.posterior.sizes["draw"]


MEANS = {
    "bernoulli": lambda eta, rows: special.expit(eta),
    "binomial": lambda eta, rows: rows["n"].to_numpy() * stats.norm.cdf(eta),
    "poisson": lambda eta, rows: np.exp(eta),
    "negbinomial": lambda eta, rows: np.exp(eta),
    "student_t": lambda eta, rows: eta,
}


@pytest.mark.parametrize("kind", list(MODELS))
def test_predictions_have_draws_by_rows_and_means_on_the_data_scale(kind):
    fit, _, _ = fitted(kind)
    rows = new_rows(kind)
    linear = fit.predict(rows, kind="linear", summary=False, new_groups="zero")
    mean = fit.predict(rows, kind="mean", summary=False, new_groups="zero")
    assert linear.shape == mean.shape == (num_draws(fit), 3)
    np.testing.assert_allclose(mean, MEANS[kind](linear, rows), rtol=1e-9)
    table = fit.predict(rows)
    assert list(table.columns[-4:]) == ["mean", "sd", "q2.5", "q97.5"]
    assert (table["q2.5"] <= table["mean"]).all() and (table["mean"] <= table["q97.5"]).all()


@pytest.mark.parametrize("kind", list(MODELS))
def test_posterior_predictive_draws_are_in_the_support(kind):
    fit, data, _ = fitted(kind)
    rows = new_rows(kind)
    draws = fit.predict(rows, kind="posterior_predictive", summary=False)
    replicated = fit.idata.posterior_predictive["y"].values
    assert draws.shape == (num_draws(fit), 3)
    assert replicated.shape == (OPTIONS[kind]["chains"], OPTIONS[kind]["draws"], len(data))
    if kind == "student_t":
        assert np.isfinite(draws).all()
        return
    for values, upper in ((draws, rows["n"].to_numpy() if kind == "binomial" else None),
                          (replicated, data["n"].to_numpy() if kind == "binomial" else None)):
        assert np.issubdtype(values.dtype, np.integer) and values.min() >= 0
        if kind == "bernoulli":
            assert values.max() <= 1
        if upper is not None:
            assert (values <= upper).all()
    # the replicates reproduce the observed mean response
    assert abs(replicated.mean() - data["y"].mean()) < 4 * data["y"].std() / np.sqrt(len(data))


def test_offsets_and_trials_are_taken_from_the_new_data():
    poisson, _, _ = fitted("poisson")
    rows = new_rows("poisson")
    base = poisson.predict(rows, kind="linear", summary=False, new_groups="zero")
    doubled = poisson.predict(rows.assign(exposure=2 * rows["exposure"]), kind="linear", summary=False,
                              new_groups="zero")
    np.testing.assert_allclose(doubled - base, np.log(2.0))
    with pytest.raises(ml.DataError, match="'exposure'"):
        poisson.predict(rows.drop(columns="exposure"), kind="linear")

    binomial, _, _ = fitted("binomial")
    rows = new_rows("binomial")
    mean = binomial.predict(rows, kind="mean", summary=False, new_groups="zero")
    tripled = binomial.predict(rows.assign(n=3 * rows["n"]), kind="mean", summary=False, new_groups="zero")
    np.testing.assert_allclose(tripled, 3 * mean)
    binomial.predict(rows.drop(columns="n"), kind="linear")   # the linear predictor needs no trials
    with pytest.raises(ml.DataError, match="needs the number of trials .* 'n'"):
        binomial.predict(rows.drop(columns="n"), kind="mean")


@pytest.mark.parametrize("kind", ["binomial", "student_t"])
def test_a_loaded_fit_keeps_its_family_and_predicts_the_same(kind, tmp_path):
    fit, _, _ = fitted(kind)
    restored = ml.load(fit.save(tmp_path / "fit.nc"))
    assert restored.info.family == fit.info.family
    assert "posterior_predictive" in restored.idata.groups()
    rows = new_rows(kind)
    for what in ("mean", "posterior_predictive"):
        pd.testing.assert_frame_equal(restored.predict(rows, kind=what, seed=3), fit.predict(rows, kind=what, seed=3))
    pd.testing.assert_frame_equal(restored.summary(), fit.summary())


def test_cli_predict_writes_the_csv(tmp_path, capsys):
    fit, _, _ = fitted("poisson")
    path = fit.save(tmp_path / "fit.nc")
    new_rows("poisson").to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "out" / "pred.csv"
    assert main(["predict", str(path), str(tmp_path / "new.csv"), "--out", str(out), "--kind", "posterior_predictive",
                 "--seed", "2"]) == 0
    assert "3 predictions (posterior_predictive) written" in capsys.readouterr().out
    assert [p.name for p in out.parent.iterdir()] == ["pred.csv"]  # no temporary file left behind
    table = pd.read_csv(out)
    expected = fit.predict(new_rows("poisson"), kind="posterior_predictive", seed=2)
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    assert main(["predict", str(path), str(tmp_path / "missing.csv")]) == 2
    assert "no data file" in capsys.readouterr().err


def test_cli_fit_keeps_the_posterior_predictive_on_request(tmp_path):
    data, _ = simulate("poisson")
    data.to_csv(tmp_path / "data.csv", index=False)
    out = tmp_path / "fit.nc"
    assert main(["fit", str(tmp_path / "data.csv"), MODELS["poisson"][0], "--family", "poisson", "--chains", "1",
                 "--draws", "30", "--warmup", "30", "--posterior-predictive", "--out", str(out)]) == 0
    replicates = ml.load(out).idata.posterior_predictive["y"]
    assert replicates.shape == (1, 30, len(data))
    assert np.all(replicates.values >= 0) and np.all(replicates.values == np.round(replicates.values))


# -- real data ---------------------------------------------------------------------------------------
def test_cbpp_binomial_glmm_converges():
    data = read_shared("cbpp.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ml.fit("cbind(incidence, size - incidence) ~ period + (1 | herd)", data, family="binomial",
                     chains=4, draws=500, warmup=500, seed=0, progress=False)
    table = fit.summary()
    # bulk ESS observed >= 1500; R-hat limit for its ESS: false alarm < 1e-3 over the 20 parameters
    assert_converged(table, 4, ess_min=400, what="cbpp")
    assert fit.num_divergent <= MAX_DIVERGENT_SHARE * 4 * 500, fit.num_divergent
    assert table.loc["period", "q97.5"] < 0          # incidence falls over the periods (q97.5 ≈ -0.33, 2.7 sd)
    new = data.head(4)[["period", "herd", "size"]]
    mean = fit.predict(new, kind="mean")["mean"]
    assert ((mean > 0) & (mean < new["size"])).all()
