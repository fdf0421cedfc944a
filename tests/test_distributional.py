"""Distributional regression: a parameter of the family with a formula of its own
(``sigma ~ x + (1 | g)``), as brms's ``bf(y ~ ..., sigma ~ ...)``.

The unit tests pin the formula, the names, the priors and the log density (against
a hand computation with scipy). The fits check a heteroscedastic Gaussian model
against a hand-written NumPyro model of the same data and priors (every posterior
mean and sd within the combined Monte Carlo error, false alarm < 1e-3), the
predictions of ``sigma`` and the round trip through a file; and recover the
parameters of a zero-inflated Poisson model with ``zi ~ x`` (within 4.5 posterior
sds: a false alarm of 7e-6 per parameter for an approximately normal posterior).
"""

from __future__ import annotations

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
from agreement import assert_converged, assert_tables_agree

TRUTH = {"Intercept": 1.0, "x": 0.5, "sigma_Intercept": -0.5, "sigma_x": 0.4}


def heteroscedastic(seed: int = 0, rows: int = 400, groups: int = 12) -> pd.DataFrame:
    """``y ~ N(1 + 0.5 x + a_g, exp(-0.5 + 0.4 x + s_g))``, a ~ N(0, 0.5²), s ~ N(0, 0.3²)."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, rows)
    x = rng.normal(size=rows)
    a, s = rng.normal(0, 0.5, groups), rng.normal(0, 0.3, groups)
    sigma = np.exp(TRUTH["sigma_Intercept"] + TRUTH["sigma_x"] * x + s[g])
    y = TRUTH["Intercept"] + TRUTH["x"] * x + a[g] + sigma * rng.normal(size=rows)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{j:02d}" for j in g]})


# -- the formula ------------------------------------------------------------------------
@pytest.mark.unit
def test_a_formula_per_parameter_parses_in_the_order_given():
    spec = ml.Formula("y ~ x + (1 | g)", "sigma ~ x + (1 | g)").parse()
    assert [d.name for d in spec.dpars] == ["sigma"]
    assert spec.formulas == ("y ~ x + (1 | g)", "sigma ~ x + (1 | g)")
    assert set(spec.variables()) == {"y", "x", "g"}
    listed = ml.build_model(["y ~ x", "sigma ~ x"], heteroscedastic())
    assert listed.layout.dpars == ("sigma",)


@pytest.mark.unit
@pytest.mark.parametrize("formulas, message", [
    (("y ~ x", "log(sigma) ~ x"), "parameter's name"),
    (("y ~ x", "sigma ~ x", "sigma ~ 1"), "two formulas"),
    (("y ~ x", "sigma ~ x + offset(x)"), "no trials"),
])
def test_a_malformed_parameter_formula_is_a_formula_error(formulas, message):
    with pytest.raises(ml.FormulaError, match=message):
        ml.Formula(*formulas).parse()


@pytest.mark.unit
@pytest.mark.parametrize("family, formula, listed", [
    ("gaussian", "shape ~ x", "its parameters are sigma"),
    ("poisson", "sigma ~ x", "no parameter to predict"),
    ("cumulative", "sigma ~ x", "no parameter 'sigma'"),
])
def test_a_parameter_the_family_lacks_is_a_formula_error_listing_its_parameters(family, formula, listed):
    data = heteroscedastic().assign(y=lambda d: (d["y"] > 1).astype(int) + 1)
    with pytest.raises(ml.FormulaError, match=listed):
        ml.build_model(["y ~ x", formula], data, family=family)


# -- names and priors -------------------------------------------------------------------
@pytest.mark.unit
def test_parameters_are_named_as_brms_names_them():
    model = ml.build_model(ml.Formula("y ~ x + (1 | g)", "sigma ~ x + (1 | g)"), heteroscedastic())
    layout = model.layout
    assert layout.fixed == ("Intercept", "x", "sigma_Intercept", "sigma_x")
    assert layout.aux == ()
    assert [g.sd_names for g in layout.groups] == [("sd(Intercept|g)",), ("sd(sigma_Intercept|g)",)]
    table = model.priors.table().set_index("parameter")
    assert list(table["class"]) == ["Intercept", "b", "Intercept_sigma", "b_sigma", "sd", "sd_sigma"]
    log_sd = np.log(heteroscedastic()["y"].std())
    assert table.loc["sigma_Intercept", "prior"] == str(ml.StudentT(3, log_sd, 2.5))


@pytest.mark.unit
def test_prior_keys_reach_a_parameters_coefficients_by_its_own_classes():
    data = heteroscedastic()
    formula = ml.Formula("y ~ x + (1 | g)", "sigma ~ x + (1 | g)")
    table = ml.build_model(formula, data, priors={
        "b": ml.Normal(0, 1), "b_sigma": ml.Normal(0, 0.5), "Intercept_sigma": ml.Normal(0, 2),
        "sd_sigma|g": ml.HalfNormal(0.5)}).priors.table().set_index("parameter")
    assert table.loc["x", "prior"] == str(ml.Normal(0, 1))
    assert table.loc["sigma_x", "prior"] == str(ml.Normal(0, 0.5))
    assert table.loc["sigma_Intercept", "prior"] == str(ml.Normal(0, 2))
    assert table.loc["sd(sigma_Intercept|g)", "source"] == "sd_sigma|g"
    assert table.loc["sd(Intercept|g)", "source"] == "default"
    named = ml.build_model(formula, data, priors={"sigma_x": ml.Normal(0, 0.1)}).priors.table()
    assert named.set_index("parameter").loc["sigma_x", "source"] == "sigma_x"
    with pytest.raises(ml.PriorError, match="b_sigma"):
        ml.build_model(formula, data, priors={"sigma": ml.HalfNormal(1)})


def test_the_log_density_is_the_normal_likelihood_with_a_log_linear_sigma_plus_the_priors():
    data = heteroscedastic(rows=60, groups=5)
    priors = {"Intercept": ml.Normal(0, 5), "b": ml.Normal(0, 2), "Intercept_sigma": ml.Normal(0, 1),
              "b_sigma": ml.Normal(0, 1), "sd": ml.HalfNormal(1), "sd_sigma": ml.HalfNormal(0.5)}
    model = ml.build_model(["y ~ x + (1 | g)", "sigma ~ x + (1 | g)"], data, priors=priors)
    f, start = model.log_density()
    rng = np.random.default_rng(4)
    position = start._replace(b=rng.normal(size=4), sd=tuple(rng.normal(size=1) for _ in range(2)),
                              z=tuple(rng.normal(size=(5, 1)) for _ in range(2)))
    with jax.enable_x64(True):
        value = float(f(jax.tree_util.tree_map(jnp.asarray, position)))
    b = position.b
    sd = [np.exp(s[0]) for s in position.sd]          # HalfNormal sds through exp
    g = pd.Categorical(data["g"]).codes
    a, s = sd[0] * position.z[0][:, 0], sd[1] * position.z[1][:, 0]
    x = data["x"].to_numpy()
    mu, sigma = b[0] + b[1] * x + a[g], np.exp(b[2] + b[3] * x + s[g])
    expected = (stats.norm.logpdf(data["y"], mu, sigma).sum()
                + stats.norm.logpdf(b, 0, [5, 2, 1, 1]).sum()
                + stats.halfnorm.logpdf(sd[0], scale=1) + stats.halfnorm.logpdf(sd[1], scale=0.5)
                + np.log(sd[0]) + np.log(sd[1])                           # Jacobians of exp
                - 0.5 * np.sum(np.concatenate([position.z[0], position.z[1]]) ** 2))   # up to a constant
    assert value == pytest.approx(expected, rel=1e-10)


@pytest.mark.unit
def test_a_predicted_sigma_leaves_the_exact_samplers_and_a_scalar_one_keeps_them():
    data = heteroscedastic().assign(y=lambda d: np.exp(d["y"] / 4))
    model = ml.build_model(["y ~ x + (1 | g)", "sigma ~ x"], data, family="lognormal")
    sampler, reason = ml.inference.choose_sampler("auto", model)
    assert sampler.name == "nuts" and "sigma varies by row" in reason
    with pytest.raises(ml.SamplerError, match="sigma varies by row"):
        ml.inference.choose_sampler("collapsed", model)
    scalar = ml.build_model("y ~ x + (1 | g)", data, family="lognormal")
    assert ml.inference.choose_sampler("auto", scalar)[0].name == "collapsed"


# -- fits -------------------------------------------------------------------------------
PRIORS = {"Intercept": ml.Normal(0, 5), "b": ml.Normal(0, 2), "Intercept_sigma": ml.Normal(0, 2),
          "b_sigma": ml.Normal(0, 1), "sd": ml.HalfNormal(1), "sd_sigma": ml.HalfNormal(1)}


def numpyro_reference(data: pd.DataFrame) -> az.InferenceData:
    """The same heteroscedastic model and priors, written by hand (non-centred effects)."""
    g = pd.Categorical(data["g"]).codes
    num_groups = int(g.max()) + 1

    def model(x, g, y):
        b = numpyro.sample("b", dist.Normal(0, jnp.array([5.0, 2.0])))
        c = numpyro.sample("c", dist.Normal(0, jnp.array([2.0, 1.0])))
        sd_mu = numpyro.sample("sd_mu", dist.HalfNormal(1.0))
        sd_sigma = numpyro.sample("sd_sigma", dist.HalfNormal(1.0))
        a = sd_mu * numpyro.sample("za", dist.Normal(0, 1).expand([num_groups]))
        s = sd_sigma * numpyro.sample("zs", dist.Normal(0, 1).expand([num_groups]))
        numpyro.sample("y", dist.Normal(b[0] + b[1] * x + a[g], jnp.exp(c[0] + c[1] * x + s[g])), obs=y)

    mcmc = MCMC(NUTS(model, target_accept_prob=0.9), num_warmup=1000, num_samples=2000, num_chains=2,
                chain_method="sequential", progress_bar=False)
    with jax.enable_x64(True):
        mcmc.run(jax.random.PRNGKey(0), jnp.asarray(data["x"].to_numpy()), jnp.asarray(g),
                 jnp.asarray(data["y"].to_numpy()))
        return az.from_numpyro(mcmc)


@pytest.mark.slow
def test_a_heteroscedastic_fit_agrees_with_a_hand_written_numpyro_model(tmp_path):
    data = heteroscedastic(seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.ConvergenceWarning)
        fit = ml.fit(ml.Formula("y ~ x + (1 | g)", "sigma ~ x + (1 | g)"), data, priors=PRIORS, chains=4,
                     draws=1000, seed=5, progress=False)
    names = ["Intercept", "x", "sigma_Intercept", "sigma_x", "sd(Intercept|g)", "sd(sigma_Intercept|g)"]
    ours = fit.summary(group_effects=False).loc[names]
    reference = az.summary(numpyro_reference(data), var_names=["b", "c", "sd_mu", "sd_sigma"], round_to="none")
    reference.index = names
    assert_converged(ours, 4, 400, "ours")
    # 33 rows a group inform each group's log sigma (information 2 a row): the pilot centres the term
    assert fit.sampler_info["centering"] == {"g": "centred", "g (sigma)": "centred"}
    assert_tables_agree(ours, reference, "ours and NumPyro")

    new = pd.DataFrame({"x": [-1.0, 0.0, 2.0], "g": ["g00", "g01", "new"]})
    sigma = fit.predict(new, dpar="sigma", summary=False, new_groups="zero")
    post = fit.idata.posterior
    at = lambda name: post[name].values.reshape(-1)  # noqa: E731
    effect = post["sigma_Intercept|g"].sel(g=["g00", "g01"]).values.reshape(-1, 2)
    expected = np.exp(at("sigma_Intercept")[:, None] + np.outer(at("sigma_x"), new["x"])
                      + np.column_stack([effect, np.zeros(len(effect))]))
    np.testing.assert_allclose(sigma, expected, rtol=1e-12)
    np.testing.assert_allclose(fit.predict(new, dpar="sigma", kind="linear", summary=False, new_groups="zero"),
                               np.log(expected), rtol=1e-9, atol=1e-12)
    spread = fit.predict(new.head(2), kind="posterior_predictive", summary=False, seed=1).std(axis=0)
    assert spread[0] < spread[1]            # sigma grows with x
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Pareto.*")     # a group's sigma effect can be influential
        assert np.isfinite(fit.loo()["elpd_loo"]) and np.isfinite(fit.dic().dic)

    again = ml.load(fit.save(tmp_path / "heteroscedastic.nc"))
    assert again.info.spec.formulas == fit.info.spec.formulas
    np.testing.assert_allclose(again.predict(new, dpar="sigma", summary=False, new_groups="zero"), sigma)


def test_a_zero_inflation_that_varies_with_x_is_recovered():
    rng = np.random.default_rng(7)
    rows, groups = 1500, 15
    g, x = rng.integers(0, groups, rows), rng.normal(size=rows)
    mu = np.exp(0.8 + 0.5 * x + rng.normal(0, 0.4, groups)[g])
    zi = special.expit(-0.5 + 1.0 * x)
    y = np.where(rng.random(rows) < zi, 0, rng.poisson(mu))
    data = pd.DataFrame({"y": y, "x": x, "g": g})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.ConvergenceWarning)
        fit = ml.fit(["y ~ x + (1 | g)", "zi ~ x"], data, family="zero_inflated_poisson", chains=2, draws=600,
                     warmup=600, seed=1, progress=False)
    truth = pd.Series({"Intercept": 0.8, "x": 0.5, "zi_Intercept": -0.5, "zi_x": 1.0})
    summary = fit.summary(group_effects=False)
    z = (summary.loc[truth.index, "mean"] - truth) / summary.loc[truth.index, "sd"]
    assert (z.abs() < 4.5).all(), f"posterior means away from the truth (in posterior sds):\n{z}"
    zi_draws = fit.predict(pd.DataFrame({"x": [-2.0, 2.0], "g": [0, 0]}), dpar="zi", summary=False)
    assert np.all((zi_draws > 0) & (zi_draws < 1)) and np.all(zi_draws[:, 0] < zi_draws[:, 1])


# -- the ordinal discrimination ---------------------------------------------------------
@pytest.mark.unit
def test_an_ordinal_discrimination_is_one_unless_a_formula_without_intercept_predicts_it():
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"y": rng.integers(1, 5, 200), "x": rng.normal(size=200), "grp": rng.integers(0, 2, 200)})
    plain = ml.build_model("y ~ x", data, family="cumulative")
    assert plain.layout.aux == ("Intercept[1]", "Intercept[2]", "Intercept[3]")
    model = ml.build_model(["y ~ x", "disc ~ 0 + grp"], data, family="cumulative")
    assert model.layout.fixed == ("x", "disc_grp") and model.layout.aux == plain.layout.aux
    with pytest.raises(ml.FormulaError, match=r"drop the intercept \(disc ~ 0 \+ \.\.\.\)"):
        ml.build_model(["y ~ x", "disc ~ grp"], data, family="cumulative")
    family = model.family
    theta, eta, disc = (-1.0, 0.5, 2.0), np.array([0.3, -1.2]), np.array([1.0, 2.5])
    with jax.enable_x64(True):
        probs = np.exp(np.asarray(family.category_log_probs(jnp.asarray(eta), (*theta, jnp.asarray(disc)))))
    cdf = special.expit(disc[:, None] * (np.array(theta) - eta[:, None]))
    expected = np.diff(np.column_stack([np.zeros(2), cdf, np.ones(2)]), axis=1)
    np.testing.assert_allclose(probs, expected, rtol=1e-12)


# -- group terms joined across formulas by an ID: (1 |p| g) --------------------------------
@pytest.mark.unit
def test_terms_with_one_id_are_one_correlated_term_across_formulas():
    spec = ml.Formula("y ~ x + (1 |p| g)", "sigma ~ x + (1 |p| g) + (0 + x | g)").parse()
    assert str(spec.groups[0]) == "(1 |p| g)" and spec.groups[0].id == "p"
    model = ml.build_model(spec, heteroscedastic())
    joined, own = model.layout.groups
    assert joined.columns == ("Intercept", "sigma_Intercept") and joined.dpars == ("", "sigma")
    assert joined.cor_names == ("cor(Intercept,sigma_Intercept|g)",)
    assert own.columns == ("sigma_x",) and own.dpars == ("sigma",)
    table = model.priors.table().set_index("parameter")
    assert table.loc["sd(Intercept|g)", "class"] == "sd" and table.loc["sd(sigma_Intercept|g)", "class"] == "sd_sigma"
    assert table.loc["cor|g", "class"] == "cor"


def test_a_joined_terms_columns_each_reach_their_own_linear_predictor():
    """The log density is log N(y | mu, sigma) plus the library's log prior and Jacobian, with
    mu and log sigma built by hand from the effects of the joined term."""
    data = heteroscedastic(rows=60, groups=5)
    model = ml.build_model(["y ~ x + (1 |p| g)", "sigma ~ x + (1 |p| g)"], data)
    f, start = model.log_density()
    rng = np.random.default_rng(2)
    position = start._replace(b=rng.normal(size=4), z=(rng.normal(size=(5, 2)),),
                              cor=(rng.normal(size=1),), sd=(rng.normal(size=2) - 1,))
    with jax.enable_x64(True):
        position = jax.tree_util.tree_map(jnp.asarray, position)
        value = float(f(position))
        data_arrays = ml.model.model_data(model.design, model.priors)
        struct = ml.model.structure(model.layout, model.family)
        params, log_prior, log_jac = ml.model.constrain(position, data_arrays, struct)
    b, r = np.asarray(params.b), np.asarray(params.effects[0])
    g = pd.Categorical(data["g"]).codes
    x = data["x"].to_numpy()
    mu = b[0] + b[1] * x + r[g, 0]
    sigma = np.exp(b[2] + b[3] * x + r[g, 1])
    expected = stats.norm.logpdf(data["y"], mu, sigma).sum() + float(log_prior) + float(log_jac)
    assert value == pytest.approx(expected, rel=1e-10)


@pytest.mark.slow
def test_a_correlation_between_location_and_scale_effects_is_recovered():
    rng = np.random.default_rng(0)
    groups, rows = 15, 900
    g, x = rng.integers(0, groups, rows), rng.normal(size=rows)
    effects = rng.normal(size=(groups, 2)) @ np.linalg.cholesky([[1, 0.7], [0.7, 1]]).T * [0.6, 0.4]
    y = 1 + 0.5 * x + effects[g, 0] + np.exp(-0.5 + effects[g, 1]) * rng.normal(size=rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.ConvergenceWarning)
        fit = ml.fit(["y ~ x + (1 |p| g)", "sigma ~ 1 + (1 |p| g)"], pd.DataFrame({"y": y, "x": x, "g": g}),
                     seed=1, progress=False)
    summary = fit.summary(group_effects=False)
    # the sample correlation of 15 simulated pairs, not 0.7, is what the data can show
    truth = pd.Series({"x": 0.5, "cor(Intercept,sigma_Intercept|g)": np.corrcoef(effects.T)[0, 1]})
    z = (summary.loc[truth.index, "mean"] - truth) / summary.loc[truth.index, "sd"]
    assert (z.abs() < 4.5).all(), z
    assert fit.sampler_info["centering"] == {"g (mean, sigma)": "centred"}
    assert fit.num_divergent < 20          # non-centred, this fit diverged 43 times in 4000 draws
