"""The collapsed sampler's algebra, checked against dense, independent computations.

* The unrolled small-matrix Cholesky and triangular solves equal numpy's on
  random positive-definite batches (property tests).
* The marginal likelihood from sufficient statistics equals the dense
  multivariate-normal density of y with b and r integrated out, for one
  grouping factor and for an inner factor nested in an outer one; with one
  factor, so do the hand-written gradients of the fused one-factor sums.
* The exact draws of (b, r) have the mean and covariance of the dense Gaussian
  conditional posterior (tolerances from the Monte Carlo standard error), and
  the deviance each carries, computed from the sums, equals the one computed
  from the rows.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

from multilevel.design.suffstats import sufficient_statistics
from multilevel.model import Normal, linalg
from multilevel.model.layout import Term
from multilevel.model.logdensity import Position
from multilevel.model.prior_table import PriorValues
from multilevel.model.marginal import (CollapsedData, CollapsedStructure, conditional_noise, draw_effects,
                                      log_conditional, log_marginal)


JIT_CHOLESKY, JIT_SOLVE_LOWER, JIT_SOLVE_UPPER_T = (jax.jit(f) for f in (linalg.cholesky, linalg.solve_lower,
                                                                         linalg.solve_upper_t))


def random_spd(rng, batch, q):
    A = rng.normal(size=(batch, q, q))
    return A @ np.swapaxes(A, -1, -2) + 0.1 * np.eye(q)


@settings(max_examples=40, deadline=None)
@given(q=st.integers(1, 8), batch=st.integers(1, 5), seed=st.integers(0, 2**31 - 1))
def test_small_cholesky_and_solves_match_numpy(q, batch, seed):
    rng = np.random.default_rng(seed)
    A = random_spd(rng, batch, q)
    b = rng.normal(size=(batch, q))
    B = rng.normal(size=(batch, q, 3))
    with jax.enable_x64(True):   # jitted, as inside the samplers (and twice as fast as op by op)
        L = np.asarray(JIT_CHOLESKY(jnp.asarray(A)))
        np.testing.assert_allclose(L, np.linalg.cholesky(A), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(np.asarray(JIT_SOLVE_LOWER(jnp.asarray(L), jnp.asarray(b))),
                                   np.linalg.solve(L, b[..., None])[..., 0], rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(np.asarray(JIT_SOLVE_UPPER_T(jnp.asarray(L), jnp.asarray(B))),
                                   np.linalg.solve(np.swapaxes(L, -1, -2), B), rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(np.asarray(linalg.log_det_from_cholesky(jnp.asarray(L))),
                                   np.linalg.slogdet(A)[1], rtol=1e-9)


def dense_z(refs, z, levels):
    Z = np.zeros((len(refs), levels * z.shape[1]))
    for i, level in enumerate(refs):
        Z[i, level * z.shape[1]:(level + 1) * z.shape[1]] = z[i]
    return Z


def problem(seed=0, levels=5, p=3, q=2, inner_per_level=0, q_inner=1):
    """A small Gaussian model with one grouping factor (and optionally an inner factor
    nested in it, ``inner_per_level`` inner levels per outer level), and its dense matrices."""
    rng = np.random.default_rng(seed)
    if inner_per_level:
        inner = np.repeat(np.arange(levels * inner_per_level), rng.integers(2, 5, levels * inner_per_level))
        refs = inner // inner_per_level
    else:
        refs = np.repeat(np.arange(levels), rng.integers(2, 6, levels))
    n = refs.size
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    z = np.column_stack([np.ones(n), rng.normal(size=(n, q - 1))])
    y = rng.normal(size=n) * 2 + 1
    T = np.tril(rng.normal(size=(q, q))) + 2 * np.eye(q)
    factors = [(refs, z, levels)]
    Zdense, Sigma, Ts = dense_z(refs, z, levels), np.kron(np.eye(levels), T @ T.T), [T]
    if inner_per_level:
        z_inner = np.column_stack([np.ones(n), rng.normal(size=(n, q_inner - 1))])
        T_inner = np.tril(rng.normal(size=(q_inner, q_inner))) + np.eye(q_inner)
        num_inner = levels * inner_per_level
        factors.append((inner, z_inner, num_inner))
        Zdense = np.hstack([Zdense, dense_z(inner, z_inner, num_inner)])
        Sigma = np.block([[Sigma, np.zeros((Sigma.shape[0], num_inner * q_inner))],
                          [np.zeros((num_inner * q_inner, Sigma.shape[0])),
                           np.kron(np.eye(num_inner), T_inner @ T_inner.T)]])
        Ts.append(T_inner)
    return dict(factors=factors, X=X, y=y, Zdense=Zdense, Sigma=Sigma, Ts=Ts, sigma=0.8,
                m0=rng.normal(size=p), v0=rng.uniform(0.5, 4, p) ** 2)


@pytest.mark.unit
@pytest.mark.parametrize("nested", [0, 3], ids=["one factor", "nested factors"])
def test_marginal_likelihood_equals_dense_normal_density(nested):
    pb = problem(inner_per_level=nested, q_inner=2)
    stats = sufficient_statistics(pb["X"], pb["y"], pb["factors"])
    V = pb["sigma"] ** 2 * np.eye(len(pb["y"])) + pb["Zdense"] @ pb["Sigma"] @ pb["Zdense"].T
    b = np.array([0.3, -1.0, 2.0])
    expected_conditional = multivariate_normal(pb["X"] @ b, V).logpdf(pb["y"])
    expected_marginal = multivariate_normal(pb["X"] @ pb["m0"], V + pb["X"] @ np.diag(pb["v0"]) @ pb["X"].T).logpdf(pb["y"])
    priors = tuple(Normal(m, np.sqrt(v)) for m, v in zip(pb["m0"], pb["v0"]))
    with jax.enable_x64(True):
        stats_j = jax.tree_util.tree_map(jnp.asarray, stats)
        Ts = [jnp.asarray(T) for T in pb["Ts"]]
        got_conditional = float(jax.jit(log_conditional)(stats_j, pb["sigma"], Ts, jnp.asarray(b)))
        got_marginal = float(jax.jit(log_marginal, static_argnums=3)(stats_j, pb["sigma"], Ts, priors))
    assert got_conditional == pytest.approx(expected_conditional, rel=1e-10)
    assert got_marginal == pytest.approx(expected_marginal, rel=1e-10)


@pytest.mark.unit
@pytest.mark.parametrize("q", [1, 2, 3])
def test_one_factor_gradients_equal_the_dense_density(q):
    """The value and the gradient in (σ, T) of :func:`log_marginal` and :func:`log_conditional`
    (one factor: the fused sums of :mod:`multilevel.model.onefactor` and their hand-written
    gradient) against automatic differentiation of the dense multivariate normal density."""
    pb = problem(seed=q, levels=6, q=q)
    stats = sufficient_statistics(pb["X"], pb["y"], pb["factors"])
    priors = tuple(Normal(m, np.sqrt(v)) for m, v in zip(pb["m0"], pb["v0"]))
    b = np.array([0.3, -1.0, 2.0])
    X, y, Z, levels = pb["X"], pb["y"], pb["Zdense"], pb["factors"][0][2]

    def dense(sigma, T, marginal):
        V = sigma ** 2 * jnp.eye(len(y)) + Z @ jnp.kron(jnp.eye(levels), T @ T.T) @ Z.T
        if marginal:
            return jax.scipy.stats.multivariate_normal.logpdf(y, X @ pb["m0"], V + X @ np.diag(pb["v0"]) @ X.T)
        return jax.scipy.stats.multivariate_normal.logpdf(y, X @ b, V)

    with jax.enable_x64(True):
        stats_j = jax.tree_util.tree_map(jnp.asarray, stats)
        point = (jnp.asarray(pb["sigma"]), jnp.asarray(pb["Ts"][0]))
        fused = {True: lambda sigma, T: log_marginal(stats_j, sigma, [T], priors),
                 False: lambda sigma, T: log_conditional(stats_j, sigma, [T], jnp.asarray(b))}
        for marginal, f in fused.items():
            value, grad = jax.jit(jax.value_and_grad(f, argnums=(0, 1)))(*point)
            expected, expected_grad = jax.jit(jax.value_and_grad(partial(dense, marginal=marginal),
                                                                 argnums=(0, 1)))(*point)
            assert float(value) == pytest.approx(float(expected), rel=1e-10)
            for got, want in zip(grad, expected_grad):
                np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-10,
                                           atol=1e-10 * float(np.max(np.abs(want))))


@pytest.mark.parametrize("nested", [0, 2], ids=["one factor", "nested factors"])
def test_exact_draws_have_the_dense_conditional_posterior(nested):
    p, q = 2, 2
    pb = problem(seed=3, levels=3, p=p, q=q, inner_per_level=nested, q_inner=1)
    stats = sufficient_statistics(pb["X"], pb["y"], pb["factors"])
    # Dense posterior of (b, r) given sigma and Sigma.
    W = np.hstack([pb["X"], pb["Zdense"]])
    prior_prec = np.zeros((W.shape[1],) * 2)
    prior_prec[:p, :p] = np.diag(1 / pb["v0"])
    prior_prec[p:, p:] = np.linalg.inv(pb["Sigma"])
    cov = np.linalg.inv(prior_prec + W.T @ W / pb["sigma"] ** 2)
    mean = cov @ (np.concatenate([pb["m0"] / pb["v0"], np.zeros(W.shape[1] - p)]) + W.T @ pb["y"] / pb["sigma"] ** 2)

    # The position that reproduces sigma and each T: log sigma, log sds, the correlation factor.
    from numpyro.distributions.transforms import CorrCholeskyTransform
    from multilevel.model import HalfNormal, LKJ
    T = pb["Ts"][0]
    sds = np.sqrt(np.sum(T ** 2, axis=1))
    terms = [Term(q, True, 0)] + [Term(1, False, k) for k in range(1, len(pb["Ts"]))]
    with jax.enable_x64(True):
        position = Position(None, jnp.log(jnp.array([pb["sigma"]])),
                            (jnp.log(jnp.asarray(sds)),) + ((jnp.log(jnp.abs(jnp.asarray(pb["Ts"][1][0]))),)
                                                            if nested else ()),
                            (CorrCholeskyTransform().inv(jnp.asarray(T / sds[:, None])),) + ((None,) if nested else ()))
        priors = PriorValues(tuple(Normal(m, np.sqrt(v)) for m, v in zip(pb["m0"], pb["v0"])), (HalfNormal(1.0),),
                             tuple(tuple(HalfNormal(1.0) for _ in range(t.q)) for t in terms),
                             tuple(LKJ(1.0) if t.has_cor else None for t in terms))
        data = CollapsedData(jax.tree_util.tree_map(jnp.asarray, stats),
                             jax.tree_util.tree_map(lambda v: jnp.asarray(v, jnp.float64), priors))
        struct = CollapsedStructure(tuple(terms), True)
        num_draws = 20000
        noise = conditional_noise(jax.random.PRNGKey(0), data.stats, (num_draws,))
        b, _, _, _, r, deviance = jax.vmap(lambda eps: draw_effects(eps, position, data, struct))(noise)
    draws = np.hstack([np.asarray(b)] + [np.asarray(e).reshape(num_draws, -1) for e in r])
    # Independent exact draws, exact standard errors: each of the <= 14 coordinates' z is
    # standard normal, |z| > 4.5 with probability 6.8e-6 (< 1e-4 in all). A sample covariance
    # of N draws has sd <= sqrt(2 / N) max_i Σ_ii = 0.01 max_i Σ_ii, so the tolerance below is
    # >= 5 sds (5.7e-7 per entry, < 1e-4 over the <= 105 entries).
    se = np.sqrt(np.diag(cov) / num_draws)
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 4.5 * se)
    np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.05 * np.diag(cov).max())
    residuals = pb["y"][None] - draws @ W.T
    n, s2 = len(pb["y"]), pb["sigma"] ** 2
    np.testing.assert_allclose(np.asarray(deviance), n * np.log(2 * np.pi * s2) + np.sum(residuals ** 2, axis=1) / s2,
                               rtol=1e-10)
