"""Stage 3 priors: the distributions, their densities, and how user priors resolve.

Densities are checked against scipy.stats in float64 to 1e-10; the two densities
the library writes itself (HalfStudentT, GammaPrecision) are also checked to
integrate to one and against an independent change of variables. Resolution
follows the documented rule: parameter name beats class-and-group beats class.
"""

from __future__ import annotations

import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

import multilevel as ml
from multilevel.design import build_design
from multilevel.model import Layout, get_family, resolve_priors
from multilevel.model.priors import (LKJ, Cauchy, Exponential, Gamma, GammaPrecision, HalfCauchy,
                                     HalfNormal, HalfStudentT, InverseGamma, Normal, StudentT, Uniform,
                                     prior_from_string)

#: Pure unit and property tests: no sampler runs (``make test-unit``).
pytestmark = pytest.mark.unit

POINTS = np.array([0.05, 0.3, 1.0, 2.7, 11.0])


def log_prob(prior, x) -> np.ndarray:
    with jax.enable_x64(True):
        return np.asarray(prior.log_prob(jnp.asarray(x, dtype=jnp.float64)))


def integral(prior, low: float, high: float) -> float:
    """The integral of the prior's density from ``low`` to ``high`` (scipy's quad)."""
    with jax.enable_x64(True):
        density = jax.jit(lambda s: jnp.exp(prior.log_prob(s)))
        value, _ = integrate.quad(lambda s: float(density(s)), low, high)
    return value


# -- parameters -----------------------------------------------------------------------

@pytest.mark.parametrize("prior, expected", [
    (Normal(1, 2), {"mean": 1, "sd": 2}),
    (StudentT(3, 1, 2), {"df": 3, "mean": 1, "sd": 2}),
    (Cauchy(1, 2), {"location": 1, "scale": 2}),
    (HalfNormal(2), {"sd": 2}),
    (HalfCauchy(2), {"scale": 2}),
    (HalfStudentT(3, 2), {"df": 3, "scale": 2}),
    (Exponential(2), {"rate": 2}),
    (Exponential(rate=2), {"rate": 2}),
    (Gamma(3, 2), {"shape": 3, "rate": 2}),
    (InverseGamma(3, 2), {"shape": 3, "scale": 2}),
    (GammaPrecision(3, 2), {"shape": 3, "rate": 2}),
    (Uniform(1, 2), {"low": 1, "high": 2}),
    (LKJ(2), {"eta": 2}),
])
def test_positional_parameters_are_in_the_documented_order(prior, expected):
    assert {name: getattr(prior, name) for name in expected} == expected


@pytest.mark.parametrize("make", [
    lambda: Normal(0, 0), lambda: Normal(0, -1), lambda: StudentT(0, 0, 1), lambda: StudentT(3, 0, 0),
    lambda: Cauchy(0, 0), lambda: HalfNormal(0), lambda: HalfCauchy(-1), lambda: HalfStudentT(0, 1),
    lambda: HalfStudentT(3, 0), lambda: Exponential(0), lambda: Exponential(rate=-1),
    lambda: Gamma(0, 1), lambda: Gamma(1, 0), lambda: InverseGamma(0, 1), lambda: InverseGamma(1, 0),
    lambda: GammaPrecision(0, 1), lambda: GammaPrecision(1, -1), lambda: Uniform(1, 1),
    lambda: Uniform(2, 1), lambda: LKJ(0),
    lambda: Normal(float("nan"), 1), lambda: Normal(0, float("inf")), lambda: Normal("0", 1),
    lambda: Normal(0, True), lambda: Normal(None, 1),
])
def test_invalid_parameters_raise_prior_error(make):
    with pytest.raises(ml.PriorError):
        make()


def test_numpy_scalars_are_accepted_as_parameters():
    prior = ml.HalfNormal(np.int64(10))
    assert prior == ml.HalfNormal(10.0)
    assert Normal(np.float32(0.5), np.float64(2)).sd == 2.0


def test_priors_are_frozen():
    with pytest.raises(AttributeError):
        Normal(0, 1).sd = 2


# -- densities ------------------------------------------------------------------------

@pytest.mark.parametrize("prior, reference, points", [
    (Normal(1.5, 2.0), stats.norm(1.5, 2.0), POINTS - 3),
    (StudentT(4.0, -1.0, 3.0), stats.t(4.0, -1.0, 3.0), POINTS - 3),
    (Cauchy(0.5, 2.5), stats.cauchy(0.5, 2.5), POINTS - 3),
    (HalfNormal(2.0), stats.halfnorm(scale=2.0), POINTS),
    (HalfCauchy(2.5), stats.halfcauchy(scale=2.5), POINTS),
    (Exponential(rate=0.5), stats.expon(scale=2.0), POINTS),
    (Gamma(2.5, 4.0), stats.gamma(2.5, scale=0.25), POINTS),
    (InverseGamma(3.0, 2.0), stats.invgamma(3.0, scale=2.0), POINTS),
    (Uniform(-1.0, 3.0), stats.uniform(-1.0, 4.0), np.array([-0.9, 0.0, 1.3, 2.99])),
])
def test_log_prob_agrees_with_scipy(prior, reference, points):
    np.testing.assert_allclose(log_prob(prior, points), reference.logpdf(points), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("df, scale", [(3.0, 2.5), (1.0, 1.0), (30.0, 0.1)])
def test_half_student_t_is_the_folded_student_t(df, scale):
    prior = HalfStudentT(df, scale)
    np.testing.assert_allclose(log_prob(prior, POINTS), np.log(2) + stats.t(df, 0, scale).logpdf(POINTS),
                               rtol=1e-10, atol=1e-10)
    assert integral(prior, 0, np.inf) == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("shape, rate", [(2.0, 3.0), (0.5, 0.2), (0.01, 0.01)])
def test_gamma_precision_is_the_density_of_the_sd_when_the_precision_is_gamma(shape, rate):
    prior = GammaPrecision(shape, rate)
    # Change of variables: tau = s^-2, |d tau / d s| = 2 s^-3.
    by_precision = stats.gamma(shape, scale=1 / rate).logpdf(POINTS ** -2) + np.log(2) - 3 * np.log(POINTS)
    # The same law by another route: s^2 = 1/tau ~ InverseGamma(shape, rate), |d s^2 / d s| = 2 s.
    by_variance = stats.invgamma(shape, scale=rate).logpdf(POINTS ** 2) + np.log(2 * POINTS)
    np.testing.assert_allclose(log_prob(prior, POINTS), by_precision, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(log_prob(prior, POINTS), by_variance, rtol=1e-10, atol=1e-10)


def test_gamma_precision_integrates_to_one_and_matches_the_gamma_tail():
    prior = GammaPrecision(2.0, 3.0)
    assert integral(prior, 0, np.inf) == pytest.approx(1.0, abs=1e-8)
    # P(s <= c) = P(tau >= 1/c^2)
    assert integral(prior, 0, 0.8) == pytest.approx(stats.gamma(2.0, scale=1 / 3.0).sf(0.8 ** -2), abs=1e-8)


@pytest.mark.parametrize("eta", [0.5, 1.0, 2.0, 6.0])
def test_lkj_on_a_2x2_cholesky_factor_is_the_beta_density_of_the_correlation(eta):
    # For d = 2, the LKJ(eta) correlation r has (r + 1)/2 ~ Beta(eta, eta).
    r = np.array([-0.8, 0.0, 0.35])
    cholesky = np.zeros((3, 2, 2))
    cholesky[:, 0, 0], cholesky[:, 1, 0], cholesky[:, 1, 1] = 1.0, r, np.sqrt(1 - r * r)
    expected = stats.beta(eta, eta).logpdf((r + 1) / 2) - np.log(2)
    np.testing.assert_allclose(log_prob(LKJ(eta), cholesky), expected, rtol=1e-10, atol=1e-10)


def test_positive_priors_and_uniform_have_no_mass_outside_their_support():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpyro may flag the out-of-support values
        assert log_prob(HalfNormal(1.0), -0.5) == -np.inf
        assert log_prob(Exponential(1.0), -0.5) == -np.inf
    assert log_prob(Uniform(0.0, 1.0), 1.5) == -np.inf


# -- transforms to the positive line -----------------------------------------------------

@pytest.mark.parametrize("prior", [HalfNormal(1.0), GammaPrecision(1.0, 1.0), Uniform(0.0, 5.0),
                                   Uniform(-1.0, 5.0), Uniform(2.0, 3.0)])
def test_to_positive_and_from_positive_are_inverse_with_the_right_log_jacobian(prior):
    u = np.linspace(-2.0, 2.0, 9)
    h = 1e-5
    with jax.enable_x64(True):
        x, log_jac = (np.asarray(v) for v in prior.to_positive(jnp.asarray(u)))
        np.testing.assert_allclose(np.asarray(prior.from_positive(jnp.asarray(x))), u, atol=1e-9)
        derivative = (np.asarray(prior.to_positive(jnp.asarray(u + h))[0])
                      - np.asarray(prior.to_positive(jnp.asarray(u - h))[0])) / (2 * h)
    assert np.all(x > 0)
    np.testing.assert_allclose(log_jac, np.log(derivative), atol=1e-7)


def test_uniform_maps_onto_its_positive_part():
    with jax.enable_x64(True):
        x, _ = Uniform(-1.0, 5.0).to_positive(jnp.linspace(-30.0, 30.0, 61))
    assert np.all((np.asarray(x) >= 0.0) & (np.asarray(x) <= 5.0))


# -- priors from strings -----------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("exponential(rate=0.1)", Exponential(rate=0.1)),
    ("normal(0, 10)", Normal(0, 10)),
    ("HalfCauchy(2)", HalfCauchy(2)),
    ("  Student_T(3, 0, 2.5) ", StudentT(3, 0, 2.5)),
    ("gammaprecision(shape=0.001, rate=0.001)", GammaPrecision(0.001, 0.001)),
    ("normal(-1, 2)", Normal(-1, 2)),
])
def test_prior_from_string_reads_a_distribution_call(text, expected):
    assert prior_from_string(text) == expected


@pytest.mark.parametrize("text", [
    "__import__('sys').exit(3)",           # evaluated, this would raise SystemExit
    "normal(0, __import__('sys').exit(3))",
    "os.system('x')",
    "normal(1 + 1)",
    "normal('a')",
    "normal",
    "",
    "normal(0, -1)",
    "normal(0, 1, 2, 3)",
    "normal(mean=0, scale=1)",
])
def test_prior_from_string_rejects_anything_but_a_call_with_numbers(text):
    with pytest.raises(ml.PriorError):
        prior_from_string(text)


def test_prior_from_string_names_the_valid_distributions_for_an_unknown_one():
    with pytest.raises(ml.PriorError, match="foo") as info:
        prior_from_string("foo(1)")
    assert "Normal" in str(info.value) and "GammaPrecision" in str(info.value)


# -- resolution onto parameters --------------------------------------------------------------

def model_data(scale_y: float = 1.0, scale_x: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 48
    return pd.DataFrame({
        "y": scale_y * rng.normal(5.0, 2.0, n),
        "x": scale_x * rng.normal(0.0, 3.0, n),
        "f": np.tile(list("abcd"), n // 4),
        "g": np.repeat([f"g{i}" for i in range(8)], n // 8),
        "h": np.tile(["m", "n", "o"], n // 3),
    })


FORMULA = "y ~ x + f + (1 + x | g) + (1 || h)"


def resolve(user=None, data=None, formula: str = FORMULA):
    d = build_design(ml.parse_formula(formula), model_data() if data is None else data)
    return resolve_priors(d, Layout.of(d, get_family("gaussian")), user)


def by_name(priors) -> dict[str, tuple]:
    table = priors.table()
    return {row.parameter: (row.prior, row.source) for row in table.itertuples()}


def test_most_specific_key_wins():
    table = by_name(resolve({"sd(x|g)": HalfNormal(1), "sd|g": Exponential(2), "sd": HalfCauchy(3)}))
    assert table["sd(x|g)"] == (str(HalfNormal(1)), "sd(x|g)")
    assert table["sd(Intercept|g)"] == (str(Exponential(2)), "sd|g")
    assert table["sd(Intercept|h)"] == (str(HalfCauchy(3)), "sd")


def test_class_b_does_not_reach_the_intercept_and_a_name_beats_the_class():
    table = by_name(resolve({"b": Normal(0, 5), "x": Normal(0, 1)}))
    assert table["x"] == (str(Normal(0, 1)), "x")
    assert table["f[c]"] == (str(Normal(0, 5)), "b")
    assert table["Intercept"][1] == "default"
    table = by_name(resolve({"Intercept": Normal(0, 100)}))
    assert table["Intercept"] == (str(Normal(0, 100)), "Intercept")
    assert table["x"][1] == "default"


def test_string_priors_are_parsed():
    assert by_name(resolve({"sigma": "exponential(rate=0.5)"}))["sigma"][0] == str(Exponential(0.5))


def test_table_shows_every_parameter_and_the_source_of_its_prior():
    table = resolve({"b": Normal(0, 5), "cor": LKJ(2)}).table()
    assert list(table.columns) == ["parameter", "class", "group", "prior", "source"]
    assert list(table.parameter) == ["Intercept", "x", "f[b]", "f[c]", "f[d]", "sigma",
                                     "sd(Intercept|g)", "sd(x|g)", "cor|g", "sd(Intercept|h)"]
    sources = dict(zip(table.parameter, table.source))
    assert sources["f[d]"] == "b" and sources["cor|g"] == "cor" and sources["sigma"] == "default"
    assert dict(zip(table.parameter, table["class"]))["sd(x|g)"] == "sd"


@pytest.mark.parametrize("key", ["foo", "sd(x|h)", "cor|h", "sd|G", "slope"])
def test_unknown_key_raises_and_lists_the_valid_keys(key):
    with pytest.raises(ml.PriorError) as info:
        resolve({key: HalfNormal(1)})
    message = str(info.value)
    assert repr(key) in message
    for valid in ("Intercept", "b", "x", "sigma", "sd(x|g)", "sd|g", "cor|g", "sd|h"):
        assert valid in message


@pytest.mark.parametrize("user", [{"sd": LKJ(2)}, {"sigma": LKJ(2)}, {"b": LKJ(2)}, {"sd(x|g)": LKJ(1)},
                                  {"cor": Normal(0, 1)}, {"cor|g": HalfNormal(1)}])
def test_lkj_goes_on_correlations_and_only_lkj_does(user):
    with pytest.raises(ml.PriorError):
        resolve(user)


@pytest.mark.parametrize("user", [{"b": HalfNormal(1)}, {"x": Exponential(1)}, {"Intercept": Gamma(2, 1)},
                                  {"f[b]": GammaPrecision(1, 1)}])
def test_positive_only_prior_on_a_fixed_effect_raises(user):
    with pytest.raises(ml.PriorError, match="fixed effect"):
        resolve(user)


def test_a_prior_that_is_not_a_distribution_raises():
    with pytest.raises(ml.PriorError, match="'b'"):
        resolve({"b": 3.0})


def assert_same_prior(actual, expected) -> None:
    assert type(actual) is type(expected)
    assert dataclasses.asdict(actual) == pytest.approx(dataclasses.asdict(expected), rel=1e-12)


def test_default_priors_follow_the_documented_table():
    data = model_data()
    priors = {p.name: p.prior for p in resolve(data=data, formula="y ~ x + (1 + x | g)").all()}
    s_y, s_x, m_x = data.y.std(ddof=1), data.x.std(ddof=1), data.x.mean()
    # The intercept's sd is that of m_y - b m_x when b has its default prior.
    s_0 = np.hypot(2.5 * s_y, 2.5 * s_y * m_x / s_x)
    assert_same_prior(priors["Intercept"], Normal(data.y.mean(), s_0))
    assert_same_prior(priors["x"], Normal(0, 2.5 * s_y / s_x))
    assert_same_prior(priors["sigma"], HalfStudentT(3, s_y))
    assert_same_prior(priors["sd(Intercept|g)"], HalfStudentT(3, s_y))
    assert_same_prior(priors["sd(x|g)"], HalfStudentT(3, s_y / s_x))
    assert_same_prior(priors["cor|g"], LKJ(1))


def test_default_scales_follow_the_units_of_the_data():
    base = resolve(data=model_data())
    y10 = resolve(data=model_data(scale_y=10.0))
    x10 = resolve(data=model_data(scale_x=10.0))
    assert y10.aux[0].prior.scale == pytest.approx(10 * base.aux[0].prior.scale)
    for sd10, sd in zip(y10.sd[0] + y10.sd[1], base.sd[0] + base.sd[1]):
        assert sd10.prior.scale == pytest.approx(10 * sd.prior.scale)
    assert y10.fixed[1].prior.sd == pytest.approx(10 * base.fixed[1].prior.sd)
    assert y10.fixed[0].prior.mean == pytest.approx(10 * base.fixed[0].prior.mean)
    assert y10.fixed[0].prior.sd == pytest.approx(10 * base.fixed[0].prior.sd)
    # A slope's prior is in units of y per unit of x.
    assert x10.fixed[1].prior.sd == pytest.approx(base.fixed[1].prior.sd / 10)
    assert x10.sd[0][1].prior.scale == pytest.approx(base.sd[0][1].prior.scale / 10)


# -- InverseWishart on the covariance of a correlated term ------------------------------------

def test_inverse_wishart_sets_the_sds_and_correlations_of_its_term():
    table = resolve({"cov|g": ml.InverseWishart(df=4, scale=2), "sd": HalfNormal(1)}).table().set_index("parameter")
    assert table.loc["cov|g", "class"] == "cov"
    assert table.loc["sd(Intercept|g)", "source"] == "cov|g"
    assert table.loc["sd(x|g)", "prior"] == "InverseWishart(df=4, scale=2)"
    assert table.loc["sd(Intercept|h)", "source"] == "sd"  # the class key still reaches other terms
    assert "cor|g" not in table.index


@pytest.mark.parametrize("user, message", [
    ({"cov|g": LKJ(2)}, "takes an InverseWishart"),
    ({"sd": ml.InverseWishart(4, 1)}, "prior on the covariance"),
    ({"cor": ml.InverseWishart(4, 1)}, "prior on the covariance"),
    ({"cov|g": ml.InverseWishart(4, 1), "sd(x|g)": HalfNormal(1)}, "set by the InverseWishart"),
    ({"cov": ml.InverseWishart(0.5, 1)}, "df > q - 1"),
])
def test_inverse_wishart_misuse_is_a_prior_error(user, message):
    with pytest.raises(ml.PriorError, match=message):
        resolve(user)
