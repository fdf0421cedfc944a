"""The families brms users reach for beyond the GLMs: positive, proportion, zero-inflated
and hurdle responses.

* each family's pointwise log-likelihood equals scipy.stats (or its definition as a
  mixture of scipy densities) on a grid of responses and linear predictors;
* the mean on the data scale equals the mean of the family's own predictive draws
  within 5 Monte Carlo standard errors (false alarm 6e-7 per check);
* responses outside the support raise DataError naming the rows, and a prior that
  does not fit a parameter's support raises PriorError;
* names, links and parameters as brms has them.
"""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

import multilevel as ml
from multilevel.model import get_family

ETA = np.linspace(-2.0, 2.0, 9)
COUNTS = np.arange(0.0, 25.0, 2.0)
POSITIVE = np.array([0.05, 0.3, 1.0, 2.5, 7.0])
SHAPE, SIGMA, PHI, ZI, N = 2.5, 0.7, 6.0, 0.3, 12.0


def _grid(values):
    y, eta = np.meshgrid(values, ETA)
    return y.ravel(), eta.ravel()


def _nb(y, mu):
    return stats.nbinom.logpmf(y, SHAPE, SHAPE / (SHAPE + mu))


def _zero_inflated(base):
    return lambda y, mu: np.where(y == 0, np.log(ZI + (1 - ZI) * np.exp(base(0 * y, mu))), np.log1p(-ZI) + base(y, mu))


def _hurdle(base, discrete):
    def logpdf(y, mu):
        safe = np.where(y > 0, y, 1.0)
        positive = np.log1p(-ZI) + base(safe, mu)
        if discrete:
            positive -= np.log1p(-np.exp(base(0 * y, mu)))
        return np.where(y > 0, positive, np.log(ZI))
    return logpdf


weibull_scale = lambda mu: mu / special.gamma(1 + 1 / SHAPE)  # noqa: E731
CASES = {
    "gamma": (POSITIVE, (SHAPE,), None, np.exp, lambda y, mu: stats.gamma.logpdf(y, SHAPE, scale=mu / SHAPE)),
    "gamma(inverse)": (POSITIVE, (SHAPE,), None, lambda e: 1 / (e + 3), None),
    "lognormal": (POSITIVE, (SIGMA,), None, lambda e: e, lambda y, m: stats.lognorm.logpdf(y, SIGMA, scale=np.exp(m))),
    "exponential": (POSITIVE, (), None, np.exp, lambda y, mu: stats.expon.logpdf(y, scale=mu)),
    "weibull": (POSITIVE, (SHAPE,), None, np.exp,
                lambda y, mu: stats.weibull_min.logpdf(y, SHAPE, scale=weibull_scale(mu))),
    "beta": (np.array([0.02, 0.3, 0.5, 0.9, 0.995]), (PHI,), None, special.expit,
             lambda y, mu: stats.beta.logpdf(y, mu * PHI, (1 - mu) * PHI)),
    "beta_binomial": (np.arange(0.0, 13.0), (PHI,), N, special.expit,
                      lambda y, mu: stats.betabinom.logpmf(y, N, mu * PHI, (1 - mu) * PHI)),
    "zero_inflated_poisson": (COUNTS, (ZI,), None, np.exp, _zero_inflated(lambda y, mu: stats.poisson.logpmf(y, mu))),
    "zero_inflated_negbinomial": (COUNTS, (SHAPE, ZI), None, np.exp, _zero_inflated(_nb)),
    "zero_inflated_binomial": (np.arange(0.0, 13.0), (ZI,), N, special.expit,
                               _zero_inflated(lambda y, p: stats.binom.logpmf(y, N, p))),
    "hurdle_poisson": (COUNTS, (ZI,), None, np.exp, _hurdle(lambda y, mu: stats.poisson.logpmf(y, mu), True)),
    "hurdle_negbinomial": (COUNTS, (SHAPE, ZI), None, np.exp, _hurdle(_nb, True)),
    "hurdle_lognormal": (np.r_[0.0, POSITIVE], (SIGMA, ZI), None, lambda e: e,
                         _hurdle(lambda y, m: stats.lognorm.logpdf(y, SIGMA, scale=np.exp(m)), False)),
    "hurdle_gamma": (np.r_[0.0, POSITIVE], (SHAPE, ZI), None, np.exp,
                     _hurdle(lambda y, mu: stats.gamma.logpdf(y, SHAPE, scale=mu / SHAPE), False)),
}


@pytest.mark.unit
@pytest.mark.parametrize("name", [n for n, case in CASES.items() if case[4] is not None])
def test_log_likelihood_equals_scipy_on_a_grid(name):
    values, aux, trials, inverse_link, reference = CASES[name]
    y, eta = _grid(values)
    n = None if trials is None else np.full_like(y, trials)
    with jax.enable_x64(True):
        ours = np.asarray(get_family(name).log_likelihood(y, eta, np.asarray(aux), n))
    np.testing.assert_allclose(ours, reference(y, inverse_link(eta)), rtol=1e-8, atol=1e-10)


@pytest.mark.unit
def test_gamma_links_give_the_same_density_at_the_same_mean():
    y, eta = _grid(POSITIVE)
    mu = np.exp(eta)
    with jax.enable_x64(True):
        by_log = np.asarray(get_family("gamma").log_likelihood(y, np.log(mu), np.array([SHAPE])))
        by_inverse = np.asarray(get_family("gamma(inverse)").log_likelihood(y, 1 / mu, np.array([SHAPE])))
        by_identity = np.asarray(get_family("gamma(identity)").log_likelihood(y, mu, np.array([SHAPE])))
    np.testing.assert_allclose(by_inverse, by_log, rtol=1e-10)
    np.testing.assert_allclose(by_identity, by_log, rtol=1e-10)


@pytest.mark.parametrize("name", list(CASES))
def test_mean_equals_the_mean_of_predictive_draws(name):
    _, aux, trials, _, _ = CASES[name]
    family = get_family(name)
    eta = np.full(200_000, 0.4 if family.link != "inverse" else 0.8)
    n = None if trials is None else np.full_like(eta, trials)
    with jax.enable_x64(True):
        draws = np.asarray(family.sample(jax.random.PRNGKey(1), eta, np.asarray(aux), n), dtype=float)
        mean = float(np.asarray(family.mean(eta, np.asarray(aux), n))[0])
    assert np.isfinite(draws).all()
    assert abs(draws.mean() - mean) < 5 * draws.std() / np.sqrt(draws.size)
    if family.discrete:
        assert np.all(draws == np.round(draws))
    if name.startswith("hurdle"):
        assert abs((draws == 0).mean() - ZI) < 5 * np.sqrt(ZI * (1 - ZI) / draws.size)


@pytest.mark.unit
@pytest.mark.parametrize("name, params", [
    ("gamma", ("shape",)), ("lognormal", ("sigma",)), ("exponential", ()), ("weibull", ("shape",)),
    ("beta", ("phi",)), ("beta_binomial", ("phi",)), ("zero_inflated_poisson", ("zi",)),
    ("zero_inflated_negbinomial", ("shape", "zi")), ("zero_inflated_binomial", ("zi",)),
    ("hurdle_poisson", ("hu",)), ("hurdle_negbinomial", ("shape", "hu")), ("hurdle_lognormal", ("sigma", "hu")),
    ("hurdle_gamma", ("shape", "hu")),
])
def test_brms_names_and_parameters(name, params):
    family = get_family(name)
    assert family.name == name and family.aux == params
    assert get_family(family.to_dict()) == family
    assert getattr(ml.families, name)() == family


@pytest.mark.unit
@pytest.mark.parametrize("name, y, message", [
    ("gamma", [1.0, -2.0, 3.0, 0.5], "a number > 0; rows 1 \\(-2\\)"),
    ("lognormal", [1.0, 0.0, 3.0, 0.5], "a number > 0; rows 1 \\(0\\)"),
    ("beta", [0.2, 1.0, 0.4, 0.0], "strictly between 0 and 1.*rows 1 \\(1\\), 3 \\(0\\)"),
    ("zero_inflated_poisson", [0.0, 1.5, 2.0, 0.0], "a count\\); rows 1 \\(1.5\\)"),
    ("hurdle_gamma", [0.0, -1.0, 2.0, 0.0], "a number >= 0; rows 1 \\(-1\\)"),
])
def test_responses_outside_the_support_are_named(name, y, message):
    data = pd.DataFrame({"y": y, "x": [0.0, 1.0, 2.0, 3.0]})
    with pytest.raises(ml.DataError, match=message):
        ml.build_model("y ~ x", data, family=name)


@pytest.mark.unit
def test_priors_must_fit_the_parameters_support():
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"y": rng.poisson(2, 40), "x": rng.normal(size=40)})
    model = ml.build_model("y ~ x", data, family="zero_inflated_poisson")
    assert model.priors.aux[0].prior == ml.Beta(1, 1)
    with pytest.raises(ml.PriorError, match="zi is a probability"):
        ml.build_model("y ~ x", data, family="zero_inflated_poisson", priors={"zi": ml.Gamma(2, 1)})
    ml.build_model("y ~ x", data, family="zero_inflated_poisson", priors={"zi": ml.Uniform(0, 0.5)})
    with pytest.raises(ml.PriorError, match="shape is positive, not a probability"):
        ml.build_model("y ~ x", data, family="zero_inflated_negbinomial", priors={"shape": ml.Beta(2, 2)})


@pytest.mark.unit
def test_lognormal_default_priors_are_on_the_log_scale():
    rng = np.random.default_rng(0)
    log_y = rng.normal(3.0, 0.5, 200)
    data = pd.DataFrame({"y": np.exp(log_y), "x": rng.normal(size=200)})
    table = {p.name: p.prior for p in ml.build_model("y ~ x", data, family="lognormal").priors.all()}
    assert table["sigma"].df == 3 and table["sigma"].scale == pytest.approx(log_y.std(ddof=1))
    assert table["Intercept"].mean == pytest.approx(log_y.mean())
