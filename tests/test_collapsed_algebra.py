"""The collapsed sampler's algebra, checked against dense, independent computations.

* The unrolled small-matrix Cholesky and triangular solves equal numpy's on
  random positive-definite batches (property tests).
* The marginal likelihood from sufficient statistics equals the dense
  multivariate-normal density of y with b and r integrated out.
* The exact draws of (b, r) have the mean and covariance of the dense Gaussian
  conditional posterior (tolerances from the Monte Carlo standard error).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

from multilevel.design.suffstats import sufficient_statistics
from multilevel.model import Normal, linalg
from multilevel.model.marginal import CollapsedData, CollapsedStructure, draw_effects, log_conditional, log_marginal


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
    with jax.enable_x64(True):
        L = np.asarray(linalg.cholesky(jnp.asarray(A)))
        np.testing.assert_allclose(L, np.linalg.cholesky(A), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(np.asarray(linalg.solve_lower(jnp.asarray(L), jnp.asarray(b))),
                                   np.linalg.solve(L, b[..., None])[..., 0], rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(np.asarray(linalg.solve_upper_t(jnp.asarray(L), jnp.asarray(B))),
                                   np.linalg.solve(np.swapaxes(L, -1, -2), B), rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(np.asarray(linalg.log_det_from_cholesky(jnp.asarray(L))),
                                   np.linalg.slogdet(A)[1], rtol=1e-9)


def problem(seed=0, levels=5, p=3, q=2):
    """A small Gaussian model with one grouping factor, and its dense matrices."""
    rng = np.random.default_rng(seed)
    refs = np.repeat(np.arange(levels), rng.integers(2, 6, levels))
    n = refs.size
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    z = np.column_stack([np.ones(n), rng.normal(size=(n, q - 1))])
    y = rng.normal(size=n) * 2 + 1
    Zdense = np.zeros((n, levels * q))
    for i, level in enumerate(refs):
        Zdense[i, level * q:(level + 1) * q] = z[i]
    T = np.tril(rng.normal(size=(q, q))) + 2 * np.eye(q)
    return dict(refs=refs, X=X, z=z, y=y, Zdense=Zdense, T=T, sigma=0.8, levels=levels,
                m0=rng.normal(size=p), v0=rng.uniform(0.5, 4, p) ** 2)


def test_marginal_likelihood_equals_dense_normal_density():
    pb = problem()
    stats = sufficient_statistics(pb["X"], pb["y"], pb["refs"], pb["z"], pb["levels"])
    Sigma = np.kron(np.eye(pb["levels"]), pb["T"] @ pb["T"].T)
    V = pb["sigma"] ** 2 * np.eye(len(pb["y"])) + pb["Zdense"] @ Sigma @ pb["Zdense"].T
    b = np.array([0.3, -1.0, 2.0])
    expected_conditional = multivariate_normal(pb["X"] @ b, V).logpdf(pb["y"])
    expected_marginal = multivariate_normal(pb["X"] @ pb["m0"], V + pb["X"] @ np.diag(pb["v0"]) @ pb["X"].T).logpdf(pb["y"])
    priors = tuple(Normal(m, np.sqrt(v)) for m, v in zip(pb["m0"], pb["v0"]))
    with jax.enable_x64(True):
        stats_j = jax.tree_util.tree_map(jnp.asarray, stats)
        got_conditional = float(log_conditional(stats_j, pb["sigma"], jnp.asarray(pb["T"]), jnp.asarray(b)))
        got_marginal = float(log_marginal(stats_j, pb["sigma"], jnp.asarray(pb["T"]), priors))
    assert got_conditional == pytest.approx(expected_conditional, rel=1e-10)
    assert got_marginal == pytest.approx(expected_marginal, rel=1e-10)


def test_exact_draws_have_the_dense_conditional_posterior():
    pb = problem(seed=3, levels=4, p=2, q=2)
    q, p, L = 2, 2, pb["levels"]
    stats = sufficient_statistics(pb["X"], pb["y"], pb["refs"], pb["z"], L)
    # Dense posterior of (b, r) given sigma and Sigma.
    W = np.hstack([pb["X"], pb["Zdense"]])
    prior_prec = np.zeros((p + L * q,) * 2)
    prior_prec[:p, :p] = np.diag(1 / pb["v0"][:p])
    prior_prec[p:, p:] = np.kron(np.eye(L), np.linalg.inv(pb["T"] @ pb["T"].T))
    prec = prior_prec + W.T @ W / pb["sigma"] ** 2
    cov = np.linalg.inv(prec)
    rhs = np.concatenate([pb["m0"][:p] / pb["v0"][:p], np.zeros(L * q)]) + W.T @ pb["y"] / pb["sigma"] ** 2
    mean = cov @ rhs

    # The position that reproduces sigma and T: log sigma, log sds, and the correlation factor.
    sds = np.sqrt(np.sum(pb["T"] ** 2, axis=1))
    chol_corr = pb["T"] / sds[:, None]
    from numpyro.distributions.transforms import CorrCholeskyTransform
    from multilevel.model import HalfNormal, LKJ
    with jax.enable_x64(True):
        u = CorrCholeskyTransform().inv(jnp.asarray(chol_corr))
        position = {"aux": jnp.log(jnp.array([pb["sigma"]])), "sd0": jnp.log(jnp.asarray(sds)), "cor0": u}
        priors = (tuple(Normal(m, np.sqrt(v)) for m, v in zip(pb["m0"][:p], pb["v0"][:p])),
                  (HalfNormal(1.0),), ((HalfNormal(1.0), HalfNormal(1.0)),), (LKJ(1.0),))
        data = CollapsedData(jax.tree_util.tree_map(jnp.asarray, stats),
                             jax.tree_util.tree_map(lambda v: jnp.asarray(v, jnp.float64), priors))
        struct = CollapsedStructure(((q, True),), True)
        keys = jax.random.split(jax.random.PRNGKey(0), 20000)
        b, _, _, _, r = jax.vmap(lambda k: draw_effects(k, position, data, struct))(keys)
    draws = np.hstack([np.asarray(b), np.asarray(r).reshape(len(keys), -1)])
    se = np.sqrt(np.diag(cov) / len(keys))
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 4.5 * se)
    np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.05 * np.sqrt(np.outer(np.diag(cov), np.diag(cov))).max())
