"""The Metropolis-within-Gibbs sampler for GLMMs (``sampler="mwg"``): random intercepts
and random slopes, correlated or independent.

Default tier: the per-level log conditional densities, gradients and curvatures (q = 1
and q = 2) against a direct computation (a Python loop over levels and rows with scipy's
densities), the centred covariance conditional against the model's own prior path, the
translation's invariance of the linear predictor, the Newton update's and the fixed-effect
update's invariance on toys whose conditional is known (and the latter's move from far off
the mode), the start's level modes, what the sampler refuses, and a short fit
through the common assembly. Slow tier: agreement with NUTS within MCSE on crossed
logistic and Poisson intercepts and on random slopes, and simulation-based calibration
of both (the house pattern of ``test_sbc.py``).
"""

from __future__ import annotations

import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import multilevel as ml
from multilevel.errors import SamplerError
from multilevel.inference.levelnewton import (level_conditionals, level_modes, newton_fixed, newton_levels,
                                              term_conditionals)
from multilevel.inference.mwg import MWG, translation_map
from multilevel.inference.termcovariance import _log_scales
from multilevel.inference.registry import choose_sampler
from multilevel.model import build_model
from multilevel.model.logdensity import Position, constrain_scales
from multilevel.model.families import get_family

from agreement import assert_agree
from test_sbc import NUM_BINS, NUM_KEPT_DRAWS, assert_uniform_ranks


def crossed_data(seed: int, num_a: int = 30, num_b: int = 6, sd_a: float = 1.0, sd_b: float = 0.5,
                 family: str = "bernoulli") -> pd.DataFrame:
    """Crossed factors A × B, every cell observed twice, one covariate."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, sd_a, num_a), rng.normal(0, sd_b, num_b)
    A, B = np.meshgrid(np.arange(num_a), np.arange(num_b), indexing="ij")
    A, B = np.tile(A.ravel(), 2), np.tile(B.ravel(), 2)
    x = rng.normal(size=A.size)
    eta = -0.3 + 0.5 * x + a[A] + b[B]
    if family == "poisson":
        y = rng.poisson(np.exp(eta))
    else:
        y = (rng.random(A.size) < 1 / (1 + np.exp(-eta))).astype(int)
    return pd.DataFrame({"y": y, "x": x, "A": [f"a{i:02d}" for i in A], "B": [f"b{j}" for j in B]})


@pytest.mark.parametrize("family", ["bernoulli", "poisson", "negbinomial"])
def test_level_conditionals_match_a_direct_computation(family):
    rng = np.random.default_rng(3)
    n, levels = 40, 5
    refs = rng.integers(0, levels, n)
    base = rng.normal(0, 0.5, n)
    effects = rng.normal(0, 0.7, levels)
    sd = 0.8
    y = (rng.random(n) < 0.4).astype(float) if family == "bernoulli" else rng.poisson(1.5, n).astype(float)
    shape = 2.5
    fam = get_family(family)

    def row_logpdf(yi, eta):
        if family == "bernoulli":
            return stats.bernoulli.logpmf(yi, 1 / (1 + np.exp(-eta)))
        if family == "poisson":
            return stats.poisson.logpmf(yi, np.exp(eta))
        mu = np.exp(eta)
        return stats.nbinom.logpmf(yi, shape, shape / (shape + mu))

    with jax.enable_x64(True):
        loglik = lambda eta: fam.log_likelihood(jnp.asarray(y), eta, jnp.asarray([shape]))  # noqa: E731
        got = level_conditionals(loglik, jnp.asarray(base), jnp.asarray(refs), jnp.asarray(effects),
                                 jnp.asarray(sd))
    for level in range(levels):
        rows = np.flatnonzero(refs == level)

        def direct(r):
            return sum(row_logpdf(y[i], base[i] + r) for i in rows) + stats.norm.logpdf(r, 0, sd)

        r, h = effects[level], 1e-4
        const = stats.norm.logpdf(0, 0, sd)
        np.testing.assert_allclose(float(got[0][level]), direct(r) - const, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(float(got[1][level]), (direct(r + h) - direct(r - h)) / (2 * h), rtol=1e-6,
                                   atol=1e-6)
        np.testing.assert_allclose(float(got[2][level]), (direct(r + h) - 2 * direct(r) + direct(r - h)) / h ** 2,
                                   rtol=1e-4, atol=1e-4)


def test_newton_update_keeps_the_conditional():
    """Started from exact draws of a one-row-per-level Poisson conditional, many levels
    (independent copies) updated once are still draws from it: their mean and sd match
    those of the conditional computed by quadrature, within 4.4 standard errors (false
    alarm 1e-5 each)."""
    levels, sd, y_value, base_value = 20000, 1.0, 3.0, 0.2
    grid = np.linspace(-6, 6, 20001)
    log_density = stats.poisson.logpmf(y_value, np.exp(base_value + grid)) + stats.norm.logpdf(grid, 0, sd)
    weights = np.exp(log_density - log_density.max())
    weights /= weights.sum()
    mean = float(weights @ grid)
    var = float(weights @ (grid - mean) ** 2)
    rng = np.random.default_rng(5)
    start = rng.choice(grid, size=levels, p=weights)
    fam = get_family("poisson")
    with jax.enable_x64(True):
        y = jnp.full(levels, y_value)
        loglik = lambda eta: fam.log_likelihood(y, eta, jnp.zeros(0))  # noqa: E731
        moved, accepted = newton_levels(jax.random.PRNGKey(0), loglik, jnp.full(levels, base_value),
                                        jnp.arange(levels), jnp.asarray(start), jnp.asarray(sd))
    moved = np.asarray(moved)
    assert 0.5 < float(np.mean(accepted)) < 1.0
    limit = stats.norm.isf(1e-5 / 2)
    assert abs(moved.mean() - mean) < limit * np.sqrt(var / levels)
    fourth = float(weights @ (grid - mean) ** 4)
    assert abs(moved.var() - var) < limit * np.sqrt((fourth - var ** 2) / levels)


def _poisson_intercept_conditional(y: np.ndarray):
    """The log conditional of an intercept ``b`` (prior N(0, 1)) of Poisson rows ``y``,
    and its mean, sd and fourth central moment by quadrature."""
    grid = np.linspace(-3, 6, 90001)
    log_density = stats.poisson.logpmf(y[:, None], np.exp(grid)).sum(axis=0) + stats.norm.logpdf(grid)
    weights = np.exp(log_density - log_density.max())
    weights /= weights.sum()
    mean = float(weights @ grid)
    var = float(weights @ (grid - mean) ** 2)
    return grid, weights, mean, var, float(weights @ (grid - mean) ** 4)


def test_fixed_update_keeps_the_conditional():
    """The fixed-effect update (Student-t proposal at the conditional mode), started from
    exact draws of an intercept's Poisson conditional in many independent copies, leaves
    them draws of it: mean and sd within 4.4 standard errors (false alarm 1e-5 each)."""
    y = np.random.default_rng(7).poisson(4.0, 30).astype(float)
    grid, weights, mean, var, fourth = _poisson_intercept_conditional(y)
    copies = 20000
    start = np.random.default_rng(8).choice(grid, size=copies, p=weights)
    fam = get_family("poisson")
    with jax.enable_x64(True):
        loglik = lambda eta: fam.log_likelihood(jnp.asarray(y), eta, jnp.zeros(0))  # noqa: E731
        log_prior = lambda b: jax.scipy.stats.norm.logpdf(b[0])  # noqa: E731
        update = jax.jit(jax.vmap(lambda k, b: newton_fixed(k, loglik, log_prior, jnp.zeros(30), jnp.ones((30, 1)), b)))
        moved, accepted = update(jax.random.split(jax.random.PRNGKey(1), copies), jnp.asarray(start)[:, None])
    moved = np.asarray(moved)[:, 0]
    assert 0.5 < float(np.mean(accepted)) < 1.0
    limit = stats.norm.isf(1e-5 / 2)
    assert abs(moved.mean() - mean) < limit * np.sqrt(var / copies)
    assert abs(moved.var() - var) < limit * np.sqrt((fourth - var ** 2) / copies)


def test_fixed_update_moves_from_far_from_the_mode():
    """From 100 conditional sds off the mode (where the reverse of a one-step Newton
    proposal is negligible, so such a proposal is refused) the update lands on the
    conditional: accepted, and within 5 sds of the mean."""
    y = np.random.default_rng(7).poisson(4.0, 30).astype(float)
    _, _, mean, var, _ = _poisson_intercept_conditional(y)
    fam = get_family("poisson")
    with jax.enable_x64(True):
        loglik = lambda eta: fam.log_likelihood(jnp.asarray(y), eta, jnp.zeros(0))  # noqa: E731
        log_prior = lambda b: jax.scipy.stats.norm.logpdf(b[0])  # noqa: E731
        update = jax.jit(jax.vmap(lambda k, b: newton_fixed(k, loglik, log_prior, jnp.zeros(30), jnp.ones((30, 1)), b)))
        for offset in (-100.0, 100.0):
            start = jnp.full((200, 1), mean + offset * np.sqrt(var))
            moved, accepted = update(jax.random.split(jax.random.PRNGKey(2), 200), start)
            assert float(np.mean(accepted)) > 0.9
            assert np.all(np.abs(np.asarray(moved)[np.asarray(accepted), 0] - mean) < 5 * np.sqrt(var))


def test_level_modes_find_far_modes():
    """From effects at 0, the chains' start puts every level of a Poisson term at its
    conditional mode (gradient over the conditional sd 0 to 1e-6), counts near none and in
    the hundreds included."""
    rng = np.random.default_rng(9)
    levels, per = 50, 20
    refs = np.repeat(np.arange(levels), per)
    truth = np.linspace(-3.5, 5.0, levels)
    y = rng.poisson(np.exp(truth[refs])).astype(float)
    fam = get_family("poisson")
    with jax.enable_x64(True):
        loglik = lambda eta: fam.log_likelihood(jnp.asarray(y), eta, jnp.zeros(0))  # noqa: E731
        args = (jnp.zeros(refs.size), jnp.asarray(refs), jnp.ones((refs.size, 1)))
        modes = jax.jit(partial(level_modes, loglik))(*args, jnp.zeros((levels, 1)), jnp.eye(1) / 1.5 ** 2)
        _, gradient, hessian = term_conditionals(loglik, *args, modes, jnp.eye(1) / 1.5 ** 2)
    sds_off = np.asarray(gradient)[:, 0] / np.sqrt(-np.asarray(hessian)[:, 0, 0])   # distance to the mode in sds
    np.testing.assert_allclose(sds_off, 0.0, atol=1e-6)


def slope_data(seed: int, num_a: int = 30, num_b: int = 0, rows_per_level: int = 12, family: str = "bernoulli",
               sd: tuple[float, float] = (1.0, 0.5), cor: float = 0.3) -> pd.DataFrame:
    """Correlated random intercepts and slopes of ``x`` by A (and random intercepts by a
    crossed B with ``num_b`` levels, sd 0.5, if ``num_b``)."""
    rng = np.random.default_rng(seed)
    cov = np.array([[sd[0] ** 2, cor * sd[0] * sd[1]], [cor * sd[0] * sd[1], sd[1] ** 2]])
    effects = rng.multivariate_normal(np.zeros(2), cov, size=num_a)
    A = np.repeat(np.arange(num_a), rows_per_level)
    x = rng.normal(size=A.size)
    eta = -0.3 + 0.5 * x + effects[A, 0] + effects[A, 1] * x
    frame = {"x": x, "A": [f"a{i:02d}" for i in A]}
    if num_b:
        B = rng.integers(0, num_b, A.size)
        eta = eta + rng.normal(0, 0.5, num_b)[B]
        frame["B"] = [f"b{j}" for j in B]
    y = rng.poisson(np.exp(eta)) if family == "poisson" else (rng.random(A.size) < 1 / (1 + np.exp(-eta))).astype(int)
    return pd.DataFrame({"y": y, **frame})


@pytest.mark.parametrize("family", ["bernoulli", "poisson"])
def test_term_conditionals_match_a_direct_computation(family):
    """The q = 2 level conditionals (log density exactly, gradient and Hessian by finite
    differences) against a loop over levels and rows with scipy's densities."""
    rng = np.random.default_rng(4)
    n, levels = 40, 5
    refs, z = rng.integers(0, levels, n), np.column_stack([np.ones(n), rng.normal(size=n)])
    base, effects = rng.normal(0, 0.5, n), rng.normal(0, 0.7, (levels, 2))
    cov = np.array([[0.8, 0.2], [0.2, 0.3]])
    y = (rng.random(n) < 0.4).astype(float) if family == "bernoulli" else rng.poisson(1.5, n).astype(float)
    fam = get_family(family)
    with jax.enable_x64(True):
        loglik = lambda eta: fam.log_likelihood(jnp.asarray(y), eta, jnp.zeros(0))  # noqa: E731
        got = jax.jit(partial(term_conditionals, loglik))(jnp.asarray(base), jnp.asarray(refs), jnp.asarray(z),
                                                          jnp.asarray(effects), jnp.asarray(np.linalg.inv(cov)))
    row_logpdf = (lambda yi, eta: stats.bernoulli.logpmf(yi, 1 / (1 + np.exp(-eta)))) if family == "bernoulli" \
        else (lambda yi, eta: stats.poisson.logpmf(yi, np.exp(eta)))
    const = stats.multivariate_normal.logpdf(np.zeros(2), np.zeros(2), cov)
    for level in range(levels):
        rows = np.flatnonzero(refs == level)

        def direct(r):
            return sum(row_logpdf(y[i], base[i] + z[i] @ r) for i in rows) + stats.multivariate_normal.logpdf(
                r, np.zeros(2), cov) - const

        r, h, eye = effects[level], 1e-4, np.eye(2)
        np.testing.assert_allclose(float(got[0][level]), direct(r), rtol=1e-10, atol=1e-10)
        gradient = [(direct(r + h * e) - direct(r - h * e)) / (2 * h) for e in eye]
        np.testing.assert_allclose(np.asarray(got[1][level]), gradient, rtol=1e-6, atol=1e-6)
        hessian = [[(direct(r + h * a + h * b) - direct(r + h * a - h * b) - direct(r - h * a + h * b)
                     + direct(r - h * a - h * b)) / (4 * h * h) for b in eye] for a in eye]
        np.testing.assert_allclose(np.asarray(got[2][level]), hessian, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bars", ["|", "||"])
def test_covariance_conditional_matches_the_model_log_density(bars):
    """The centred conditional of a term's unconstrained sds and correlation given its
    effects equals, up to a constant, the model's own prior of those coordinates and
    Jacobians (the NUTS path, ``constrain_scales``) plus the effects' Normal log density
    (to 1e-10), at several points."""
    model = build_model(f"y ~ x + (1 + x {bars} A)", slope_data(0), family="bernoulli")
    priors, terms = model.priors.values(), model.layout.terms()
    correlated = bars == "|"
    effects = np.random.default_rng(1).normal(0, [1.0, 0.4], (30, 2))

    @jax.jit
    def both(v):
        position = Position(jnp.zeros(2), jnp.zeros(0), (v[:2],), (v[2:] if correlated else None,), ())
        _, sds, chols, log_prior, log_jac = constrain_scales(position, priors, terms)
        got = _log_scales(v, 2, 30, jnp.asarray(effects.T @ effects), priors.sd[0], priors.cor[0])
        return got, log_prior + log_jac, sds[0], chols[0] if correlated else jnp.eye(2)

    differences = []
    with jax.enable_x64(True):
        for v in np.random.default_rng(2).normal(0, 0.5, (4, 3 if correlated else 2)):
            got, model_prior, sd, chol = map(np.asarray, both(jnp.asarray(v)))
            cov = np.diag(sd) @ chol @ chol.T @ np.diag(sd)
            direct = float(model_prior) + stats.multivariate_normal.logpdf(effects, np.zeros(2), cov).sum()
            differences.append(float(got) - direct)
    np.testing.assert_allclose(differences, differences[0], rtol=0, atol=1e-10 * abs(differences[0]) + 1e-9)


def test_translation_leaves_the_linear_predictor_unchanged():
    """For ``y ~ x + w + (1 + x | g)`` with ``w`` constant within levels, the term translates
    the intercept, ``w`` and ``x``, and ``Σ_c z_ic (A_l δ)_c = X_iT δ`` on every row."""
    rng = np.random.default_rng(6)
    data = slope_data(1)
    data["w"] = rng.normal(size=30)[data["A"].str[1:].astype(int)]
    model = build_model("y ~ x + w + (1 + x | A)", data, family="bernoulli")
    group = model.design.groups[0]
    columns, shift = translation_map(model.design.X, model.layout.fixed, group)
    assert [model.layout.fixed[j] for j in columns] == ["Intercept", "w", "x"]
    delta = rng.normal(size=len(columns))
    moved = np.einsum("iq,iq->i", group.z, shift[group.refs] @ delta)
    np.testing.assert_allclose(moved, model.design.X[:, list(columns)] @ delta, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("formula, family, priors, reason", [
    ("y ~ x + cs(1 + x | A)", "bernoulli", None, "compound-symmetric"),
    ("y ~ x + (1 + x | A)", "bernoulli", {"cov|A": ml.InverseWishart(3, 1)}, "InverseWishart"),
    ("y ~ x + (1 | A) + (0 + x | A)", "bernoulli", None, "more than one term"),
    ("y ~ x + (1 | A)", "gaussian", None, "family is not one of"),
])
def test_refuses_other_models(formula, family, priors, reason):
    data = crossed_data(0)
    model = build_model(formula, data, family=family, priors=priors)
    assert reason in MWG.problem(model)
    with pytest.raises(SamplerError, match="cannot fit"):
        ml.fit(formula, data, family=family, priors=priors, sampler="mwg", chains=1, draws=10, warmup=10)


@pytest.mark.filterwarnings("ignore::multilevel.ConvergenceWarning", "ignore::UserWarning")
def test_fit_goes_through_the_common_assembly():
    """A crossed Poisson model with correlated slopes on one factor and intercepts on the other."""
    data = slope_data(1, num_b=6, family="poisson")
    fit = ml.fit("y ~ x + (1 + x | A) + (1 | B)", data, family="poisson", sampler="mwg", chains=2, draws=200,
                 warmup=200, seed=0)
    table = fit.summary()
    assert {"Intercept", "x", "sd(Intercept|A)", "sd(x|A)", "cor(Intercept,x|A)", "sd(Intercept|B)"} <= set(
        table.index)
    assert np.isfinite(fit.loo().elpd_loo)
    assert fit.predict(data.head(5)).shape[0] == 5
    accept = fit.info.sampler_info["acceptance"]
    assert all(0.3 < rate <= 1.0 for rate in accept.values())


@pytest.mark.parametrize("formula, family, chosen", [
    ("y ~ x + (1 | A) + (1 | B)", "bernoulli", "mwg"),
    ("y ~ x + (1 | A)", "bernoulli", "nuts"),
    ("y ~ x + (1 | A) + (1 | B)", "poisson", "nuts"),
    ("y ~ x + (1 + x | A) + (1 | B)", "bernoulli", "nuts"),
])
def test_auto_chooses_it_for_crossed_binary_models_only(formula, family, chosen):
    """Crossed random intercepts with a binary response only: slopes (measured slower than
    NUTS on one factor) and counts go to NUTS."""
    sampler, reason = choose_sampler("auto", build_model(formula, crossed_data(0, family=family), family=family))
    assert sampler.name == chosen
    assert chosen == "mwg" or "Mwg cannot: auto chooses it only" in reason


def test_refit_with_new_values_does_not_retrace(monkeypatch):
    """Compile once: a refit of the same shapes with new data values and seed does not
    trace the sweep again (counted by calls of ``mwg_step``, which only a trace runs)."""
    from multilevel.inference import mwg

    calls, original = [], mwg.mwg_step
    monkeypatch.setattr(mwg, "mwg_step", lambda *a: calls.append(1) or original(*a))
    options = dict(family="bernoulli", sampler="mwg", chains=1, draws=20, warmup=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ml.fit("y ~ x + (1 | A) + (1 | B)", crossed_data(4, num_a=17), seed=0, **options)
        assert calls, "the first fit of these shapes must trace (the counter works)"
        calls.clear()
        ml.fit("y ~ x + (1 | A) + (1 | B)", crossed_data(5, num_a=17), seed=1, **options)
    assert calls == [], "a refit with the same shapes retraced the sweep"


@pytest.mark.slow
def test_agrees_with_nuts_on_a_crossed_logistic_model():
    data = crossed_data(2, num_a=60, num_b=8)
    formula = "y ~ x + (1 | A) + (1 | B)"
    mwg = ml.fit(formula, data, family="bernoulli", sampler="mwg", chains=4, draws=2000, warmup=500, seed=1)
    nuts = ml.fit(formula, data, family="bernoulli", sampler="nuts", chains=4, draws=2000, warmup=1000, seed=1)
    assert_agree(mwg, nuts)


@pytest.mark.slow
def test_agrees_with_nuts_on_a_crossed_poisson_model():
    """Crossed Poisson intercepts with sd 1.5 on A (levels with counts near none and in the
    tens: the case the chains' start at the level modes and the fixed effects' proposal at
    their mode are for), within the MCSE bound of :func:`agreement.assert_agree`."""
    data = crossed_data(3, num_a=60, num_b=8, sd_a=1.5, family="poisson")
    formula = "y ~ x + (1 | A) + (1 | B)"
    mwg = ml.fit(formula, data, family="poisson", sampler="mwg", chains=4, draws=2000, warmup=500, seed=1)
    nuts = ml.fit(formula, data, family="poisson", sampler="nuts", chains=4, draws=2000, warmup=1000, seed=1)
    assert_agree(mwg, nuts)


#: SBC: priors simulated exactly; 10 × 5 crossed levels, two rows per cell.
SBC_PRIORS = {"Intercept": ml.Normal(0, 1), "b": ml.Normal(0, 1), "sd": ml.HalfNormal(1)}
SBC_QUANTITIES = ("Intercept", "x", "sd(Intercept|A)", "sd(Intercept|B)", "Intercept|A[a00]")
SBC_REPLICATIONS, SBC_CHAINS, SBC_DRAWS = 200, 2, 1000


def _simulate_sbc(replication: int):
    rng = np.random.default_rng([2023, replication])
    intercept, slope = rng.normal(0, 1, 2)
    sd_a, sd_b = np.abs(rng.normal(0, 1, 2))
    data = crossed_data(int(rng.integers(2 ** 31)), num_a=10, num_b=5, sd_a=1.0, sd_b=1.0)
    a, b = sd_a * rng.normal(size=10), sd_b * rng.normal(size=5)
    A = data["A"].str[1:].astype(int).to_numpy()
    B = data["B"].str[1:].astype(int).to_numpy()
    eta = intercept + slope * data["x"].to_numpy() + a[A] + b[B]
    data["y"] = (rng.random(len(data)) < 1 / (1 + np.exp(-eta))).astype(int)
    truth = {"Intercept": intercept, "x": slope, "sd(Intercept|A)": sd_a, "sd(Intercept|B)": sd_b,
             "Intercept|A[a00]": a[0]}
    return truth, data


@pytest.mark.slow
def test_mwg_is_calibrated():
    """SBC (Talts et al. 2018) of a crossed logistic model, as ``test_sbc.py``: chi-square
    uniformity of binned ranks per quantity at FALSE_ALARM / 5 (false alarm < 1e-3 in all).
    99 draws kept of 2000 (every ~20th). 263 s on 2 cores shared with other jobs (load
    average ~10); every p-value > 0.26 in that run."""
    ranks = _sbc_ranks("y ~ x + (1 | A) + (1 | B)", _simulate_sbc, SBC_PRIORS, SBC_QUANTITIES)
    assert_uniform_ranks(ranks, f"mwg SBC, {SBC_REPLICATIONS} replications, {NUM_BINS} bins")


def _sbc_ranks(formula: str, simulate, priors: dict, quantities: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Per quantity, the rank of the truth among the kept draws of each replication's mwg fit
    (a name ending in ``[a00]`` is that level's effect)."""
    ranks = {name: np.empty(SBC_REPLICATIONS, dtype=int) for name in quantities}
    keep = np.round(np.linspace(0, SBC_CHAINS * SBC_DRAWS - 1, NUM_KEPT_DRAWS)).astype(int)
    for r in range(SBC_REPLICATIONS):
        truth, data = simulate(r)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ml.ConvergenceWarning)
            fit = ml.fit(formula, data, family="bernoulli", priors=priors, sampler="mwg",
                         chains=SBC_CHAINS, draws=SBC_DRAWS, warmup=300, seed=r)
        posterior = fit.idata.posterior
        for name in quantities:
            values = posterior[name[:-5]].sel(A="a00") if name.endswith("[a00]") else posterior[name]
            draws = np.asarray(values.transpose("chain", "draw")).reshape(-1)[keep]
            ranks[name][r] = int(np.sum(draws < truth[name]))
    return ranks


@pytest.mark.slow
@pytest.mark.parametrize("formula, family, num_b", [
    ("y ~ x + (1 + x | A)", "bernoulli", 0),
    ("y ~ x + (1 + x | A) + (1 | B)", "poisson", 6),
    ("y ~ x + (1 + x || A)", "bernoulli", 0),
])
def test_agrees_with_nuts_on_random_slopes(formula, family, num_b):
    """Correlated (and independent) random slopes, alone and crossed with intercepts:
    every posterior mean and sd, group effects included, within the MCSE bound of
    :func:`agreement.assert_agree` (false alarm < 1e-3 per check)."""
    data = slope_data(2, num_a=40, num_b=num_b, rows_per_level=25, family=family)
    mwg = ml.fit(formula, data, family=family, sampler="mwg", chains=4, draws=2000, warmup=500, seed=1)
    nuts = ml.fit(formula, data, family=family, sampler="nuts", chains=4, draws=2000, warmup=1000, seed=1)
    assert_agree(mwg, nuts)


#: SBC of correlated slopes: 10 levels × 20 rows, the LKJ(1) correlation (uniform on (-1, 1)).
SLOPE_SBC_PRIORS = {"Intercept": ml.Normal(0, 1), "b": ml.Normal(0, 1), "sd": ml.HalfNormal(1), "cor": ml.LKJ(1)}
SLOPE_SBC_QUANTITIES = ("Intercept", "x", "sd(Intercept|A)", "sd(x|A)", "cor(Intercept,x|A)", "x|A[a00]")


def _simulate_slope_sbc(replication: int):
    rng = np.random.default_rng([2024, replication])
    intercept, slope = rng.normal(0, 1, 2)
    sd = np.abs(rng.normal(0, 1, 2))
    cor = rng.uniform(-1, 1)
    chol = np.array([[1.0, 0.0], [cor, np.sqrt(1 - cor ** 2)]])
    effects = rng.normal(size=(10, 2)) @ (sd[:, None] * chol).T
    data = slope_data(int(rng.integers(2 ** 31)), num_a=10, rows_per_level=20)
    A = data["A"].str[1:].astype(int).to_numpy()
    x = data["x"].to_numpy()
    eta = intercept + slope * x + effects[A, 0] + effects[A, 1] * x
    data["y"] = (rng.random(len(data)) < 1 / (1 + np.exp(-eta))).astype(int)
    truth = {"Intercept": intercept, "x": slope, "sd(Intercept|A)": sd[0], "sd(x|A)": sd[1],
             "cor(Intercept,x|A)": cor, "x|A[a00]": effects[0, 1]}
    return truth, data


@pytest.mark.slow
def test_mwg_is_calibrated_with_correlated_slopes():
    """SBC of ``y ~ x + (1 + x | A)`` (logistic), as :func:`test_mwg_is_calibrated`:
    chi-square uniformity of binned ranks per quantity at FALSE_ALARM / 6."""
    ranks = _sbc_ranks("y ~ x + (1 + x | A)", _simulate_slope_sbc, SLOPE_SBC_PRIORS, SLOPE_SBC_QUANTITIES)
    assert_uniform_ranks(ranks, f"mwg slope SBC, {SBC_REPLICATIONS} replications, {NUM_BINS} bins")
