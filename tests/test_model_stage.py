"""The model stage and the sampler interface, as specifications.

* ``ml.build_model`` gives one frozen Model from a pandas frame, with its grouping
  structure computed once (factors, nesting chain, Gibbs blocks, parent terms);
* ``Model.log_density`` is the full log posterior (lme4's ``devFunOnly``): at a point,
  it equals the log-likelihood plus the log prior plus the log-Jacobian computed by hand;
* ``auto`` takes the first sampler of the registry that can fit the model and says why;
  a requested sampler that cannot raises the library's error naming what to use;
* a new sampler is one object with ``name``, ``problem``, ``suits`` and ``run``;
* the same seed gives the same draws whatever the machine's core count, for every sampler.
"""

from __future__ import annotations

import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import multilevel as ml
from multilevel.design.groups import group_structure
from multilevel.inference import REGISTRY, Draws, Options, SamplerInfo, choose_sampler
from multilevel.results.assemble import assemble_fit


def nested_and_crossed(seed: int = 0) -> pd.DataFrame:
    """Students crossed with lecturers nested in departments."""
    rng = np.random.default_rng(seed)
    n = 400
    dept = rng.integers(0, 4, n)
    lecturer = dept * 5 + rng.integers(0, 5, n)
    student = rng.integers(0, 30, n)
    y = rng.normal(0, 1, 4)[dept] + rng.normal(0, 0.5, 20)[lecturer] + rng.normal(0, 0.7, 30)[student] \
        + rng.normal(0, 1, n)
    return pd.DataFrame({"y": y, "x": rng.normal(size=n), "dept": dept, "lecturer": lecturer, "student": student})


@pytest.mark.unit
def test_group_structure_is_computed_once_with_nesting_chain_and_blocks():
    data = nested_and_crossed()
    model = ml.build_model("y ~ x + (1 | dept) + (1 + x | lecturer) + (1 | student)", data)
    structure = model.structure
    assert structure.names == ("dept", "lecturer", "student")
    assert structure.factor("lecturer").within == ("dept",)
    assert structure.factor("student").within == ()
    assert structure.order is None                                  # crossed: no single chain
    assert set(structure.blocks) == {("student",), ("dept", "lecturer")}
    assert structure.terms_within(1) == (0,)
    assert model.design.structure is structure
    chain = ml.build_model("y ~ x + (1 | dept) + (1 | lecturer)", data).structure
    assert chain.order == ("dept", "lecturer")


@pytest.mark.unit
def test_structure_from_refs_orders_nearest_parent_first():
    """Chicks in broods in locations: a chick's nearest parent is its brood."""
    chick = np.arange(12)
    brood, location = chick // 2, chick // 6
    s = group_structure(("location", "brood", "chick"), (location, brood, chick), (2, 6, 12))
    assert s.factor("chick").within == ("brood", "location")
    assert s.order == ("location", "brood", "chick")
    assert s.blocks == (("location", "chick"), ("brood",))


@pytest.mark.unit
def test_model_is_frozen_and_leaves_the_data_alone():
    data = nested_and_crossed()
    before = data.copy()
    model = ml.build_model("y ~ x + (1 | dept)", data, priors={"b": ml.Normal(0, 3)})
    pd.testing.assert_frame_equal(data, before)
    with pytest.raises(AttributeError):
        model.family = ml.families.poisson()
    assert model.priors.fixed[1].prior == ml.Normal(0, 3)
    assert model.layout.fixed == ("Intercept", "x") and model.num_rows == len(data)


@pytest.mark.unit
def test_log_density_is_the_log_posterior_computed_by_hand():
    """y ~ x, no group terms: log N(y | Xb, sigma) + priors + log-Jacobian of sigma = exp(u)."""
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"x": rng.normal(size=30)})
    data["y"] = 1 + 2 * data["x"] + rng.normal(0, 0.5, 30)
    priors = {"Intercept": ml.Normal(0, 5), "b": ml.Normal(0, 2), "sigma": ml.HalfNormal(1)}
    model = ml.build_model("y ~ x", data, priors=priors)
    f, start = model.log_density()
    assert start.b.shape == (2,) and start.aux.shape == (1,) and start.sd == start.z == ()
    b, u = np.array([0.7, 1.9]), -0.4
    with jax.enable_x64(True):
        position = start._replace(b=jnp.asarray(b), aux=jnp.asarray([u]))
        value = float(jax.jit(f)(position))
        gradient = jax.grad(f)(position)
    sigma = np.exp(u)
    expected = (stats.norm.logpdf(data["y"], b[0] + b[1] * data["x"], sigma).sum()
                + stats.norm.logpdf(b[0], 0, 5) + stats.norm.logpdf(b[1], 0, 2)
                + stats.halfnorm.logpdf(sigma, scale=1) + u)
    assert value == pytest.approx(expected, rel=1e-12)
    assert np.all(np.isfinite(gradient.b))


@pytest.mark.unit
def test_auto_takes_the_first_sampler_that_fits_and_says_why():
    data = nested_and_crossed()
    assert [s.name for s in REGISTRY] == ["collapsed", "gibbs", "mwg", "nuts"]
    sampler, reason = choose_sampler("auto", ml.build_model("y ~ x + (1 | dept/lecturer)", data))
    assert sampler.name == "collapsed" and "nested grouping factors (dept:lecturer within dept)" in reason
    sampler, reason = choose_sampler("auto", ml.build_model("y ~ x + (1 | dept) + (1 | student)", data))
    assert sampler.name == "gibbs" and "Collapsed cannot: the grouping factors dept and student are crossed" in reason
    counts = data.assign(y=np.random.default_rng(0).poisson(2.0, len(data)))
    sampler, reason = choose_sampler("auto", ml.build_model("y ~ x + (1 | dept)", counts, family="poisson"))
    assert sampler.name == "nuts"
    assert "Collapsed cannot: the poisson family" in reason and "Gibbs cannot: the poisson family" in reason


@pytest.mark.unit
def test_a_requested_sampler_that_cannot_fit_raises_naming_the_alternatives():
    data = nested_and_crossed()
    model = ml.build_model("y ~ x + (1 | dept) + (1 | student)", data)
    with pytest.raises(ml.SamplerError, match="sampler='collapsed' cannot fit this model: the grouping factors "
                                              "dept and student are crossed.*'gibbs' or 'nuts'"):
        choose_sampler("collapsed", model)
    with pytest.raises(ml.SamplerError, match="unknown sampler 'hmc'; choose from auto, collapsed, gibbs, mwg, nuts"):
        choose_sampler("hmc", model)
    with pytest.raises(ml.PriorError, match="StudentT"):
        choose_sampler("gibbs", ml.build_model("y ~ x + (1 | dept)", data, priors={"b": ml.StudentT(3, 0, 1)}))


class PriorDraws:
    """A toy sampler behind the interface: independent draws of the fixed effects from
    their Normal priors and of sigma from its HalfStudentT prior (a prior-only 'posterior')."""

    name = "prior"

    def problem(self, model):
        return None if not model.layout.groups else "group terms are not drawn by this toy"

    def suits(self, model):
        return "a model without group terms"

    def run(self, model, seed, options):
        rng = np.random.default_rng(seed)
        shape = (options.chains, options.draws)
        b = np.stack([rng.normal(p.prior.mean, p.prior.sd, shape) for p in model.priors.fixed], axis=-1)
        sigma = np.abs(stats.t.rvs(3, scale=model.priors.aux[0].prior.scale, size=shape, random_state=rng))
        return Draws(b, sigma[..., None], (), (), (), {}, SamplerInfo(0.0, 0.0, False, {"toy": True}))


def test_a_new_sampler_is_one_object_behind_the_interface():
    rng = np.random.default_rng(2)
    data = pd.DataFrame({"x": rng.normal(size=50), "y": rng.normal(size=50)})
    model = ml.build_model("y ~ x", data, priors={"b": ml.Normal(0, 1), "Intercept": ml.Normal(3, 0.5)})
    toy = PriorDraws()
    assert toy.problem(model) is None
    options = Options(chains=2, draws=4000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.ConvergenceWarning)
        fit = assemble_fit(model, toy.run(model, 0, options), sampler=toy.name, reason=toy.suits(model), seed=0,
                           options=options)
    summary = fit.summary()
    # 8000 independent Normal(3, 0.5) draws: the mean is within 5 standard errors (5 * 0.5 / sqrt(8000))
    # of 3 with probability 1 - 6e-7
    assert abs(summary.loc["Intercept", "mean"] - 3) < 5 * 0.5 / np.sqrt(8000)
    assert fit.sampler_info["sampler"] == "prior" and fit.sampler_info["toy"] is True
    assert "log_likelihood" in fit.idata.groups() and np.isfinite(fit.dic().dic)


@pytest.mark.parametrize("sampler, formula", [
    ("nuts", "y ~ x + (1 | dept)"),
    ("collapsed", "y ~ x + (1 | dept)"),
    ("gibbs", "y ~ x + (1 | dept) + (1 | student)"),
])
def test_same_seed_same_draws_whatever_the_core_count(sampler, formula, monkeypatch):
    data = nested_and_crossed()
    draws = {}
    for cores in (1, 4):
        monkeypatch.setattr(os, "cpu_count", lambda cores=cores: cores)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ml.ConvergenceWarning)
            fit = ml.fit(formula, data, sampler=sampler, chains=4, draws=30, warmup=40, seed=3, progress=False)
        draws[cores] = fit.idata.posterior
    for name in draws[1].data_vars:
        np.testing.assert_allclose(draws[1][name].values, draws[4][name].values, rtol=1e-9, atol=1e-12,
                                   err_msg=name)


@pytest.mark.unit
def test_a_constant_response_is_an_error_for_identity_links_and_a_warning_otherwise():
    data = pd.DataFrame({"y": [2.0] * 6, "x": np.arange(6.0)})
    with pytest.raises(ml.DataError, match="the response y is 2 in every row"):
        ml.build_model("y ~ x", data)
    with pytest.warns(UserWarning, match="the response y is 0 in every row: the bernoulli model's intercept"):
        ml.build_model("y ~ x", data.assign(y=0), family="bernoulli")


@pytest.mark.unit
def test_links_are_objects_and_an_unknown_link_is_an_error():
    from multilevel.model.families import get_link
    with jax.enable_x64(True):
        for name in ("logit", "probit", "cloglog"):
            link = get_link(name)
            eta = jnp.linspace(-30, 30, 13)
            log_p, log_q = link.log_probs(eta)
            np.testing.assert_allclose(np.exp(log_p) + np.exp(log_q), 1.0, rtol=1e-12)
            middle = jnp.linspace(-3, 3, 7)
            np.testing.assert_allclose(link(np.asarray(link.inverse(middle))), middle, rtol=1e-9, atol=1e-9)
            assert np.all(np.isfinite(log_p)) and np.all(np.isfinite(log_q))
    assert ml.families.binomial("cloglog").link == "cloglog"
    with pytest.raises(ml.FamilyError, match="unknown link 'logg'"):
        get_link("logg")
    with pytest.raises(ml.FamilyError, match="the poisson family has no 'logit' link; choose from log"):
        ml.families.poisson("logit")


@pytest.mark.unit
def test_a_non_finite_kinetic_energy_counts_as_infinite():
    from multilevel.inference.nuts import finite_kinetic_energy
    with jax.enable_x64(True):
        inverse_mass = jnp.ones(2)
        assert float(finite_kinetic_energy(inverse_mass, jnp.array([3.0, 4.0]))) == pytest.approx(12.5)
        assert float(finite_kinetic_energy(inverse_mass, jnp.array([jnp.nan, 1.0]))) == np.inf
        assert float(finite_kinetic_energy(-inverse_mass, jnp.array([jnp.inf, 1.0]))) == np.inf
