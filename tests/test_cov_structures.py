"""lme4's covariance-structure functions of group terms, diag(), us(), cs(), and brms's gr():
what they mean, the parameters of compound symmetry, and its fits on every sampler that takes it."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.errors import FormulaError, PriorError
from multilevel.inference.gibbs import GIBBS
from multilevel.model import compound
from multilevel.model.layout import Term
from multilevel.model.logdensity import Position, constrain_scales
from multilevel.model.prior_table import PriorValues
from multilevel.model.priors import LKJ, HalfNormal

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def simulate(levels, per_level, sd, rho, seed):
    """``y = 1 + 0.5 x + r0[g] + r1[g] x + e``, ``(r0, r1) ~ N(0, sd² R(rho))``, ``e ~ N(0, 0.5²)``."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(levels), per_level)
    x = rng.normal(size=g.size)
    r = rng.multivariate_normal(np.zeros(2), sd ** 2 * np.array([[1, rho], [rho, 1]]), levels)
    y = 1 + 0.5 * x + r[g, 0] + r[g, 1] * x + rng.normal(0, 0.5, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})


@pytest.mark.unit
def test_lme4_structure_functions_are_the_bars_they_name():
    groups = lambda f: ml.parse_formula(f).groups  # noqa: E731
    assert groups("y ~ x + diag(1 + x | g)") == groups("y ~ x + (1 + x || g)")
    assert groups("y ~ x + us(1 + x | g)") == groups("y ~ x + (1 + x | g)")
    assert groups("y ~ (1 + x | gr(g, cor = FALSE))") == groups("y ~ (1 + x || g)")
    assert groups("y ~ (1 + x | gr(g))") == groups("y ~ (1 + x | g)")
    (term,) = groups("y ~ x + cs(1 + x | g)")
    assert term.structure == "cs" and term.correlated and str(term) == "cs(1 + x | g)"


@pytest.mark.unit
def test_cs_of_one_column_is_the_plain_term():
    data = simulate(5, 3, 1.0, 0.0, seed=2)
    assert ml.build_model("y ~ cs(1 | g)", data).layout.scalar_names() == \
        ml.build_model("y ~ (1 | g)", data).layout.scalar_names()


@pytest.mark.unit
@pytest.mark.parametrize("formula, message", [
    ("y ~ (1 | gr(g, by = x))", "gr\\(..., by = \\) is not supported"),
    ("y ~ us(1 + x || g)", "us\\(\\) takes a single bar"),
    ("y ~ cs(1 + x |p| g)", "cs\\(\\) cannot take an ID"),
    ("y ~ (1 + x || gr(g))", "after a single bar"),
])
def test_unsupported_spellings_are_refused_with_the_supported_one(formula, message):
    with pytest.raises(FormulaError, match=message):
        ml.parse_formula(formula)


@pytest.mark.unit
@pytest.mark.parametrize("q, eta", [(2, 1.0), (3, 2.5), (4, 1.0)])
def test_compound_symmetric_term_has_one_sd_and_one_correlation(q, eta):
    """The position's one sd and one correlation give q equal sds and the factor of
    R(rho) = (1 - rho) I + rho 11ᵀ; the prior is |R(rho)|^(eta-1) plus the Jacobian."""
    with jax.enable_x64(True):
        prior_sd = HalfNormal(2.0)
        priors = PriorValues(fixed=(), aux=(), sd=((prior_sd,) * q,), cor=(LKJ(eta),))
        u_sd, u_cor = 0.3, -0.4
        position = Position(None, jnp.zeros(0), (jnp.array([u_sd]),), (jnp.array([u_cor]),))
        _, sds, chols, log_prior, log_jac = constrain_scales(position, priors, (Term(q, True, 0, True),))
        sd, sd_jac = prior_sd.to_positive(jnp.asarray(u_sd))
        rho = -1 / (q - 1) + (1 + 1 / (q - 1)) / (1 + np.exp(-u_cor))
        np.testing.assert_allclose(sds[0], np.full(q, sd))
        np.testing.assert_allclose(chols[0] @ chols[0].T, (1 - rho) * np.eye(q) + rho, atol=1e-12)
        det = np.linalg.det((1 - rho) * np.eye(q) + rho)
        np.testing.assert_allclose(log_prior, prior_sd.log_prob(sd) + (eta - 1) * np.log(det), rtol=1e-10)
        slope = (rho - compound.correlation(jnp.asarray(u_cor - 1e-6), q)[0]) / 1e-6
        np.testing.assert_allclose(log_jac, sd_jac + np.log(slope), rtol=1e-5)


@pytest.fixture(scope="module")
def cs_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ml.fit("y ~ x + cs(1 + x | g)", data=simulate(15, 6, 1.0, 0.4, seed=0), chains=2, draws=200,
                      warmup=200, seed=1, progress=False)


def test_cs_fit_has_its_two_parameters(cs_fit):
    rows = cs_fit.summary().index
    assert "sd(Intercept,x|g)" in rows and "cor(Intercept,x|g)" in rows
    assert "sd(Intercept|g)" not in rows and "sd(x|g)" not in rows
    assert cs_fit.sampler_info["sampler"] == "collapsed"
    assert -1 < float(cs_fit.idata.posterior["cor(Intercept,x|g)"].min()) \
        and float(cs_fit.idata.posterior["cor(Intercept,x|g)"].max()) < 1


@pytest.mark.unit
def test_gibbs_takes_cs_and_priors_are_checked():
    data = simulate(10, 4, 1.0, 0.4, seed=1)
    assert GIBBS.problem(ml.build_model("y ~ x + cs(1 + x | g)", data)) is None
    with pytest.raises(PriorError, match="eta >= 1"):
        ml.fit("y ~ x + cs(1 + x | g)", data=data, priors={"cor": LKJ(0.5)}, prior_only=True)
    with pytest.raises(PriorError, match="compound-symmetric"):
        ml.fit("y ~ x + cs(1 + x | g)", data=data, priors={"cov|g": ml.InverseWishart(3, 1.0)}, prior_only=True)


def test_prior_draws_of_the_correlation_follow_its_restricted_lkj():
    fit = ml.fit("y ~ x + cs(1 + x | g)", data=simulate(10, 4, 1.0, 0.4, seed=1), prior_only=True,
                 priors={"cor": LKJ(1.0)}, chains=2, draws=2000, seed=3, progress=False)
    rho = fit.idata.posterior["cor(Intercept,x|g)"].values.ravel()
    # uniform on (-1, 1) for q = 2: mean 0 (sd 1/sqrt(3)); 4000 independent draws, 4.5 standard errors
    assert abs(rho.mean()) < 4.5 / np.sqrt(3 * rho.size)


def _agree(a, b, names, data_sds=0.0):
    """Posterior means within 4.5 Monte Carlo standard errors (a false alarm about 1 in 10⁵ per
    parameter), plus ``data_sds`` posterior sds where the two models differ."""
    sa, sb = a.summary().loc[names], b.summary().loc[names]
    tol = 4.5 * np.hypot(sa.mcse_mean, sb.mcse_mean) + data_sds * np.maximum(sa["sd"], sb["sd"])
    assert (np.abs(sa["mean"] - sb["mean"]) < tol).all(), pd.DataFrame({"a": sa["mean"], "b": sb["mean"], "tol": tol})


@pytest.mark.slow
def test_cs_agrees_across_samplers_and_with_the_unstructured_fit_under_a_cs_truth():
    """NUTS, collapsed and Gibbs fits of one cs model agree within Monte Carlo error; the
    unstructured model's sds and correlation sit within 3 of their posterior sds of the
    shared ones (the models differ, so their gap is one of data, not of Monte Carlo)."""
    data = simulate(60, 10, 1.0, 0.4, seed=5)
    kw = dict(data=data, chains=4, draws=1000, warmup=1000, progress=False)
    collapsed = ml.fit("y ~ x + cs(1 + x | g)", sampler="collapsed", seed=1, **kw)
    names = ["Intercept", "x", "sigma", "sd(Intercept,x|g)", "cor(Intercept,x|g)"]
    _agree(collapsed, ml.fit("y ~ x + cs(1 + x | g)", sampler="nuts", seed=2, **kw), names)
    _agree(collapsed, ml.fit("y ~ x + cs(1 + x | g)", sampler="gibbs", seed=4, **kw), names)
    unstructured = ml.fit("y ~ x + (1 + x | g)", sampler="collapsed", seed=3, **kw)
    us, cs = unstructured.summary(), collapsed.summary()
    # the two models differ: each unstructured sd estimates the shared one with its own posterior sd
    for name in ("sd(Intercept|g)", "sd(x|g)"):
        assert abs(us.loc[name, "mean"] - cs.loc["sd(Intercept,x|g)", "mean"]) < 3 * us.loc[name, "sd"]
    assert abs(us.loc["cor(Intercept,x|g)", "mean"] - cs.loc["cor(Intercept,x|g)", "mean"]) \
        < 3 * us.loc["cor(Intercept,x|g)", "sd"]


def test_cs_fit_saves_and_predicts_new_groups_from_its_shared_covariance(cs_fit, tmp_path):
    cs_fit.save(tmp_path / "cs.nc")
    loaded = ml.load(tmp_path / "cs.nc")
    new = pd.DataFrame({"x": [0.5, 0.5], "g": ["0", "a new subject"]})
    fitted = cs_fit.predict(new, seed=1)
    pd.testing.assert_frame_equal(loaded.predict(new, seed=1), fitted)
    assert fitted["sd"].iloc[1] > fitted["sd"].iloc[0]     # a new level's effect is drawn from the population
    assert list(cs_fit.priors.parameter).count("sd(Intercept,x|g)") == 1
