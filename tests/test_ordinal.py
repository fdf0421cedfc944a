"""The cumulative (ordinal) family.

* category probabilities equal ``F(θ_k - η) - F(θ_{k-1} - η)`` computed directly, for
  every link, sum to 1, and stay finite far in the tails;
* the response may be an ordered Categorical, strings or whole numbers 1..K, with the
  same model; other responses raise DataError naming the rows; a categorical response
  of another family says to use ``cumulative``;
* a fit with a group term agrees with an independently written NumPyro model
  (``OrderedLogistic``, same data and priors) within 4.5 combined Monte Carlo standard
  errors per parameter (false alarm 7e-6 each), and survives save and load.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
import pytest
import arviz as az
from numpyro.infer import MCMC, NUTS
from scipy import special, stats

import multilevel as ml
from multilevel.model import get_family

CDF = {"logit": special.expit, "probit": stats.norm.cdf, "cloglog": lambda x: -np.expm1(-np.exp(x))}
LEVELS = ["poor", "fair", "good", "great"]


@pytest.mark.parametrize("link", list(CDF))
def test_category_probabilities_are_differences_of_the_cdf(link):
    family = get_family("cumulative").__class__(link, categories=tuple(LEVELS))
    theta = np.array([-1.3, 0.2, 1.7])
    eta = np.linspace(-4, 4, 17)
    with jax.enable_x64(True):
        aux = jnp.asarray(np.append(theta, 1.0))       # the thresholds, then the discrimination 1
        log_probs = np.asarray(family.category_log_probs(jnp.asarray(eta), aux))
        tails = np.asarray(family.category_log_probs(jnp.array([-40.0, 40.0]), aux))
        grad = jax.grad(lambda e: family.log_likelihood(jnp.array(2.0), e, aux))(30.0)
    cdf = CDF[link](theta[None, :] - eta[:, None])
    expected = np.diff(np.c_[np.zeros(len(eta)), cdf, np.ones(len(eta))], axis=1)
    np.testing.assert_allclose(np.exp(log_probs), expected, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=1), 1.0, rtol=1e-12)
    assert np.isfinite(tails).all() and np.isfinite(float(grad))


def ratings(seed: int = 0, n: int = 600, groups: int = 15) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, n)
    x = rng.normal(size=n)
    eta = 0.8 * x + rng.normal(0, 0.6, groups)[g]
    cum = special.expit(np.array([-1.0, 0.2, 1.4])[None, :] - eta[:, None])
    p = np.diff(np.c_[np.zeros(n), cum, np.ones(n)], axis=1)
    y = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    return pd.DataFrame({"rating": pd.Categorical(np.array(LEVELS)[y], categories=LEVELS, ordered=True),
                         "stars": y + 1, "x": x, "g": g})


@pytest.mark.unit
def test_ordered_categorical_strings_and_numbers_make_the_same_model():
    data = ratings()
    by_category = ml.build_model("rating ~ x + (1 | g)", data, family="cumulative")
    by_number = ml.build_model("stars ~ x + (1 | g)", data, family="cumulative")
    assert by_category.family.categories == tuple(LEVELS)
    assert by_number.family.categories == ("1", "2", "3", "4")
    np.testing.assert_array_equal(by_category.design.y, by_number.design.y)
    assert by_category.layout.fixed == ("x",)                    # no intercept: the thresholds take its place
    assert by_category.layout.aux == ("Intercept[1]", "Intercept[2]", "Intercept[3]")
    assert {p.cls for p in by_category.priors.aux} == {"Intercept"}
    strings = data.assign(rating=data["rating"].astype(str))      # plain strings: sorted
    assert ml.build_model("rating ~ x", strings, family="cumulative").family.categories == tuple(sorted(LEVELS))
    priors = ml.build_model("rating ~ x", data, family="cumulative", priors={"Intercept": ml.Normal(0, 4)}).priors
    assert all(p.prior == ml.Normal(0, 4) for p in priors.aux)


@pytest.mark.unit
def test_bad_ordinal_responses_are_named():
    data = ratings().head(8).assign(stars=[1, 2, 0, 3, 2.5, 1, 2, 3])
    with pytest.raises(ml.DataError, match="ordered categories.*rows 2 \\(0\\), 4 \\(2.5\\)"):
        ml.build_model("stars ~ x", data, family="cumulative")
    with pytest.raises(ml.DataError, match="not numeric.*family='cumulative'"):
        ml.build_model("rating ~ x", ratings().head(8), family="gaussian")


def numpyro_reference(data: pd.DataFrame, num_groups: int) -> az.InferenceData:
    """The same model written directly in NumPyro: OrderedLogistic, non-centred group effects."""
    def model(x, g, y):
        b = numpyro.sample("x", dist.Normal(0, 2.5))
        theta = numpyro.sample("theta", dist.ImproperUniform(dist.constraints.ordered_vector, (), (3,)))
        numpyro.factor("theta_prior", dist.Normal(0, 5).log_prob(theta).sum())
        sd = numpyro.sample("sd", dist.HalfNormal(1.0))
        z = numpyro.sample("z", dist.Normal(0, 1).expand([num_groups]))
        numpyro.sample("y", dist.OrderedLogistic(b * x + sd * z[g], theta), obs=y)

    mcmc = MCMC(NUTS(model, target_accept_prob=0.9), num_warmup=1000, num_samples=2000, num_chains=2,
                chain_method="sequential", progress_bar=False)
    with jax.enable_x64(True):
        mcmc.run(jax.random.PRNGKey(0), jnp.asarray(data["x"].to_numpy()), jnp.asarray(data["g"].to_numpy()),
                 jnp.asarray(data["stars"].to_numpy() - 1))
    return az.from_numpyro(mcmc)


@pytest.mark.slow
def test_fit_agrees_with_a_hand_written_numpyro_model(tmp_path):
    data = ratings(seed=1)
    priors = {"b": ml.Normal(0, 2.5), "Intercept": ml.Normal(0, 5), "sd": ml.HalfNormal(1.0)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.ConvergenceWarning)
        fit = ml.fit("rating ~ x + (1 | g)", data, family="cumulative", priors=priors, chains=4, draws=1000,
                     seed=3, progress=False)
    ours = fit.summary(group_effects=False)
    reference = az.summary(numpyro_reference(data, 15), var_names=["x", "theta", "sd"])
    reference.index = ["x", "Intercept[1]", "Intercept[2]", "Intercept[3]", "sd(Intercept|g)"]
    gap = (ours.loc[reference.index, "mean"] - reference["mean"]).abs()
    bound = 4.5 * np.sqrt(ours.loc[reference.index, "mcse_mean"] ** 2 + reference["mcse_mean"] ** 2)
    assert (gap < bound).all(), f"means differ beyond 4.5 MCSE:\n{gap / bound}"
    assert fit.num_divergent == 0
    again = ml.load(fit.save(tmp_path / "ordinal.nc"))
    assert again.info.family.categories == tuple(LEVELS)
    new = data.head(4)
    np.testing.assert_allclose(again.predict(new)["mean"], fit.predict(new)["mean"])
    replicates = again.predict(new, kind="posterior_predictive", summary=False)
    assert set(np.unique(replicates)) <= {1, 2, 3, 4}
    probs = again.predict(new, kind="probs", summary=False)
    assert probs.shape == (4000, 4, 4)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose((probs * np.arange(1, 5)).sum(axis=-1).mean(axis=0), fit.predict(new)["mean"])
    long = again.predict(new, kind="probs")
    assert len(long) == 16 and list(long["category"][:4]) == LEVELS
    np.testing.assert_allclose(long["mean"].to_numpy().reshape(4, 4), probs.mean(axis=0))
    with pytest.raises(ml.DataError, match="kind='probs'"):
        ml.fit("x ~ 1", data.head(50), chains=1, draws=20, warmup=20, progress=False).predict(new, kind="probs")


@pytest.mark.unit
def test_an_ordered_categorical_keeps_its_unobserved_categories():
    data = pd.DataFrame({"y": pd.Categorical([1, 3, 4, 3, 1, 4] * 5, categories=[1, 2, 3, 4], ordered=True),
                         "x": np.linspace(0, 1, 30)})
    model = ml.build_model("y ~ x", data, family="cumulative")
    assert model.family.categories == ("1", "2", "3", "4")
    assert set(np.unique(model.design.y)) == {1.0, 3.0, 4.0}


@pytest.mark.parametrize("link", list(CDF))
def test_the_log_likelihood_is_the_observed_categorys_log_probability_to_second_order(link):
    """The pilot's centring rule reads the likelihood's second derivative in eta: it must be
    finite for the first and last categories too, and equal that of the full computation."""
    family = get_family("cumulative").__class__(link, categories=tuple(LEVELS) + ("best",))
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    with jax.enable_x64(True):
        aux = (-1.5, -0.5, 0.5, 1.5, jnp.asarray(np.linspace(0.5, 2, 5)))
        direct = lambda e: jnp.sum(family.log_likelihood(jnp.asarray(y), e, aux))  # noqa: E731
        full = lambda e: jnp.sum(jnp.take_along_axis(family.category_log_probs(e, aux),  # noqa: E731
                                                     jnp.asarray(y, dtype=int)[:, None] - 1, -1))
        eta = jnp.linspace(-1.0, 1.0, 5)
        second = jax.jvp(jax.grad(direct), (eta,), (jnp.ones(5),))[1]
        expected = jax.jvp(jax.grad(full), (eta,), (jnp.ones(5),))[1]
        assert float(direct(eta)) == pytest.approx(float(full(eta)), rel=1e-12)
    assert np.all(np.isfinite(second)) and np.all(np.asarray(second) < 0)
    np.testing.assert_allclose(second, expected, rtol=1e-9)
