r"""Draws of scale parameters from their full conditionals, and slice sampling, for
the Gibbs sampler.

An sd ``s`` (the residual sd, or the sd of one column of group effects) whose
conditional likelihood is that of ``count`` zero-mean Normal values with sum
of squares ``sumsq`` has the full conditional

.. math:: p(s | \cdot) \propto p(s)\, s^{-\mathrm{count}} \exp(-\mathrm{sumsq} / 2s^2).

With ``1/s² ~ Gamma(a, b)`` (``GammaPrecision``, or ``InverseGammaVariance`` on
``s²``, the same law) it is conjugate: ``1/s² | · ~ Gamma(a + count/2, b + sumsq/2)``.
Any other prior on a positive parameter is sampled, as JAGS does, by slice
sampling (Neal 2003, stepping out and shrinkage) on the prior's unconstrained
scale: an exact Markov update that leaves the conditional invariant.

A covariance ``Σ`` with an ``InverseWishart(ν, Ψ)`` prior and ``m`` effect
vectors ``r_l ~ N(0, Σ)`` has ``Σ | · ~ IW(ν + m, Ψ + Σ_l r_l r_lᵀ)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..model.priors import GammaPrecision, InverseGammaVariance, InverseWishart, Prior

#: Stepping-out steps allowed on each side of the slice.
MAX_STEPS = 50


def is_conjugate_scale(prior: Prior) -> bool:
    """Whether an sd prior is conjugate to a Normal likelihood (a Gamma law on 1/s²)."""
    return isinstance(prior, (GammaPrecision, InverseGammaVariance))


def conjugate_shape(prior: Prior, count) -> jax.Array:
    """Shape of the Gamma full conditional of ``1/s²`` under a conjugate prior."""
    return prior.shape + 0.5 * count


def conjugate_scale(prior: Prior, sumsq, gamma_variate: jax.Array) -> jax.Array:
    """``s`` from a standard Gamma variate of shape :func:`conjugate_shape`:
    ``1/s² = variate / (rate + sumsq/2)``. (Gamma variates are drawn for all scales
    at once: each call site of ``jax.random.gamma`` costs seconds of compilation.)"""
    rate = prior.rate if isinstance(prior, GammaPrecision) else prior.scale
    return (gamma_variate / (rate + 0.5 * sumsq)) ** -0.5


def slice_scale(key: jax.Array, prior: Prior, count, sumsq, current: jax.Array) -> jax.Array:
    """A slice update, started at ``current``, of ``s`` under any prior on (0, ∞)."""

    def log_density(u):
        s, log_jac = prior.to_positive(u)
        return prior.log_prob(s) + log_jac - count * jnp.log(s) - 0.5 * sumsq / s ** 2

    width = 3.0 / jnp.sqrt(2.0 * count + 1.0)
    u = slice_sample(key, log_density, prior.from_positive(current), width)
    return prior.to_positive(u)[0]


def slice_sample(key: jax.Array, log_density, x0: jax.Array, width) -> jax.Array:
    """One univariate slice-sampling update of ``x0``: step the interval out to the
    left, then to the right (at most ``MAX_STEPS`` each), then shrink it.

    Written as one ``while_loop`` with a single call of ``log_density`` per
    iteration (phase 0: left edge, 1: right edge, 2: shrinkage), so that an
    expensive density is traced, and compiled, once.
    """
    k_level, k_place, k_loop = jax.random.split(key, 3)
    level = log_density(x0) - jax.random.exponential(k_level)
    left = x0 - width * jax.random.uniform(k_place)

    def body(carry):
        key, phase, steps, left, right, x = carry
        key, sub = jax.random.split(key)
        candidate = jnp.where(phase == 0, left, jnp.where(phase == 1, right,
                                                          jax.random.uniform(sub, minval=left, maxval=right)))
        inside = log_density(candidate) > level
        extend = inside & (steps < MAX_STEPS)
        left = jnp.where((phase == 0) & extend, left - width,
                         jnp.where((phase == 2) & ~inside & (candidate < x0), candidate, left))
        right = jnp.where((phase == 1) & extend, right + width,
                          jnp.where((phase == 2) & ~inside & (candidate >= x0), candidate, right))
        x = jnp.where((phase == 2) & inside, candidate, x)
        next_phase = jnp.where(phase == 2, jnp.where(inside, 3, 2), jnp.where(extend, phase, phase + 1))
        steps = jnp.where(next_phase == phase, steps + 1, 0)
        return key, next_phase, steps, left, right, x

    carry = (k_loop, jnp.int32(0), jnp.int32(0), left, left + width, x0)
    return jax.lax.while_loop(lambda c: c[1] < 3, body, carry)[5]


def wishart_shapes(prior: InverseWishart, num_levels: int, q: int) -> jax.Array:
    """Shapes of the Gamma variates :func:`draw_covariance` needs: ``A_ii² / 2``."""
    return 0.5 * (prior.df + num_levels - jnp.arange(q))


def draw_inverse_wishart(key: jax.Array, gamma_variates: jax.Array, scale: jax.Array) -> jax.Array:
    """A draw of ``Σ ~ IW(df, scale)`` (q × q), by Bartlett's decomposition.

    With ``scale = U Uᵀ`` and ``A`` lower triangular, ``A_ii² ~ χ²(df - i)``
    (i = 0..q-1; ``gamma_variates`` of shapes ``(df - i)/2``, doubled) and
    ``A_ij ~ N(0, 1)`` below the diagonal, ``Σ⁻¹ = U⁻ᵀ A Aᵀ U⁻¹`` is
    Wishart(df, scale⁻¹), so ``Σ = M Mᵀ`` with ``M = U A⁻ᵀ``.
    """
    q = scale.shape[-1]
    A = jnp.tril(jax.random.normal(key, (q, q)), -1) + jnp.diag(jnp.sqrt(2.0 * gamma_variates))
    A_inv_t = jax.scipy.linalg.solve_triangular(A, jnp.eye(q), lower=True).T
    M = jnp.linalg.cholesky(scale) @ A_inv_t
    return M @ M.T


def draw_covariance(key: jax.Array, prior: InverseWishart, effects: jax.Array, gamma_variates: jax.Array):
    """``(sd, L)`` of a draw of Σ given effects (levels, q) under an InverseWishart prior,
    ``L`` the Cholesky factor of the correlation matrix; ``gamma_variates`` of
    shapes :func:`wishart_shapes`."""
    q = effects.shape[1]
    covariance = draw_inverse_wishart(key, gamma_variates, prior.scale * jnp.eye(q) + effects.T @ effects)
    sd = jnp.sqrt(jnp.diagonal(covariance))
    return sd, jnp.linalg.cholesky(covariance) / sd[:, None]
