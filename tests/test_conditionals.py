"""The building blocks of the Gibbs sampler draw from the laws they claim to.

* the InverseWishart density on (sd, L) equals scipy's density of Σ times the
  Jacobian of (sd, L) -> Σ, computed by automatic differentiation;
* Bartlett draws of Σ ~ IW(df, Ψ) have the exact mean Ψ / (df - q - 1), within
  z exact standard errors (from the exact variance of the inverse Wishart);
* a chain of slice updates of an sd under a non-conjugate prior has the mean of
  the exact full conditional (numerical quadrature), within z Monte Carlo errors.

z is ``agreement.z_limit`` over the comparisons of each test (false alarm < 1e-3).
"""

from __future__ import annotations

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

import multilevel as ml
from agreement import assert_within_mcse
from multilevel.inference.conditionals import draw_inverse_wishart, slice_scale, wishart_shapes


@pytest.mark.unit
@pytest.mark.parametrize("q", [2, 3, 4])
def test_inverse_wishart_density_on_sds_and_correlation_factor(q):
    rng = np.random.default_rng(q)
    prior = ml.InverseWishart(df=q + 2.5, scale=1.7)
    law = stats.invwishart(df=prior.df, scale=prior.scale * np.eye(q))
    lower = np.tril_indices(q, -1)

    def covariance(v):  # (sd, free entries of L below the diagonal) -> lower triangle of Σ
        L = jnp.zeros((q, q)).at[lower].set(v[q:])
        L = L + jnp.diag(jnp.sqrt(1 - jnp.sum(L ** 2, axis=1)))
        S = (v[:q, None] * L) @ (v[:q, None] * L).T
        return S[jnp.tril_indices(q)]

    with jax.enable_x64(True):
        # compiled once per q, not dispatched op by op for each draw (a unit test, kept fast)
        jacobian_of, log_prob_scales, log_prob = (jax.jit(f) for f in (jax.jacobian(covariance),
                                                                         prior.log_prob_scales, prior.log_prob))
        for _ in range(3):
            sigma = law.rvs(random_state=rng)
            sd = np.sqrt(np.diag(sigma))
            chol = np.linalg.cholesky(sigma / np.outer(sd, sd))
            jacobian = jacobian_of(jnp.concatenate([sd, chol[lower]]))
            expected = law.logpdf(sigma) + np.linalg.slogdet(np.asarray(jacobian))[1]
            got = log_prob_scales(jnp.asarray(sd), jnp.asarray(chol))
            assert float(got) == pytest.approx(expected, rel=1e-9)
            assert float(log_prob(jnp.asarray(sigma))) == pytest.approx(law.logpdf(sigma), rel=1e-9)


def test_bartlett_draws_have_the_inverse_wishart_mean():
    q, df, count = 3, 10.0, 20_000
    scale = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, -0.2], [0.0, -0.2, 0.5]])
    shapes = wishart_shapes(ml.InverseWishart(df=df, scale=1.0), 0, q)

    def one(key):
        k_gamma, k_normal = jax.random.split(key)
        return draw_inverse_wishart(k_normal, jax.random.gamma(k_gamma, shapes), jnp.asarray(scale))

    with jax.enable_x64(True):
        draws = np.asarray(jax.vmap(one)(jax.random.split(jax.random.PRNGKey(0), count)))
    exact_mean = scale / (df - q - 1)
    # Var Σ_ij = ((ν-q+1) ψ_ij² + (ν-q-1) ψ_ii ψ_jj) / ((ν-q)(ν-q-1)²(ν-q-3)): exact, where the
    # sample sd of these heavy-tailed entries (no fourth moment at ν = q + 7) would be noisy
    nu, psi = df, scale
    variance = (((nu - q + 1) * psi ** 2 + (nu - q - 1) * np.outer(np.diag(psi), np.diag(psi)))
                / ((nu - q) * (nu - q - 1) ** 2 * (nu - q - 3)))
    lower = np.tril_indices(q)                                  # the 6 distinct entries
    assert_within_mcse(draws.mean(axis=0)[lower], exact_mean[lower], np.sqrt(variance[lower] / count),
                       what="inverse Wishart mean")


@pytest.mark.parametrize("prior", [ml.HalfStudentT(3, 1.0), ml.Exponential(2.0), ml.Uniform(0, 3)])
def test_slice_updates_leave_the_full_conditional_invariant(prior):
    count, sumsq = 12, 9.0
    log_density = lambda s: float(prior.log_prob(s)) - count * np.log(s) - 0.5 * sumsq / s ** 2  # noqa: E731
    upper = 3.0 if isinstance(prior, ml.Uniform) else 50.0
    norm = integrate.quad(lambda s: np.exp(log_density(s)), 1e-6, upper, limit=200)[0]
    exact = integrate.quad(lambda s: s * np.exp(log_density(s)), 1e-6, upper, limit=200)[0] / norm

    with jax.enable_x64(True):
        def chain(key):
            def step(s, k):
                s = slice_scale(k, prior, count, sumsq, s)
                return s, s

            return jax.lax.scan(step, jnp.asarray(1.0), jax.random.split(key, 4000))[1]

        draws = np.asarray(jax.jit(jax.vmap(chain))(jax.random.split(jax.random.PRNGKey(1), 4)))
    mcse = float(az.mcse(draws, method="mean"))
    assert_within_mcse(draws.mean(), exact, mcse, what=str(prior), count=3)   # shared by the 3 priors
