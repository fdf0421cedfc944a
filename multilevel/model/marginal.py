"""The Gaussian marginal likelihood from per-level sufficient statistics.

Model: ``y = X b + Z r + e`` with ``e ~ N(0, σ² I)``, one grouping factor with
levels l, ``r_l ~ N(0, Σ)`` and ``Σ = T Tᵀ`` (T block-diagonal over the group
terms, each block ``diag(sd) L``). Integrating the group effects out level by
level (Woodbury), with ``B_l = I + σ⁻² Tᵀ G_l T`` and ``B_l = R_l R_lᵀ``:

.. math::
   \\log|V_l| = n_l \\log σ² + \\log|B_l|, \\qquad
   (y-Xb)ᵀ V^{-1} (y-Xb) = bᵀ A b - 2 bᵀ g + k,

   A = σ⁻² XᵀX - σ⁻⁴ \\sum_l W_lᵀ W_l, \\quad g = σ⁻² Xᵀy - σ⁻⁴ \\sum_l W_lᵀ w_l, \\quad
   k = σ⁻² yᵀy - σ⁻⁴ \\sum_l w_lᵀ w_l,

where ``w_l = R_l⁻¹ Tᵀ c_l`` and ``W_l = R_l⁻¹ Tᵀ D_l``. ``B_l ≥ I`` keeps this
stable as the sds go to zero. With Normal priors ``b ~ N(m₀, diag(v₀))`` the
fixed effects integrate out too: ``P = A + diag(1/v₀)``, ``h = g + m₀/v₀`` and

.. math::
   \\log p(y | σ, Σ) = -\\tfrac12 [n \\log 2π + \\sum_l \\log|V_l| + \\sum \\log v₀
       + \\log|P| + k + \\sum m₀²/v₀ - hᵀ P^{-1} h].

Given (σ, Σ), ``b ~ N(P⁻¹h, P⁻¹)`` and ``r_l | b ~ N(T B_l⁻¹ Tᵀ (c_l - D_l b)/σ², T B_l⁻¹ Tᵀ)``
exactly; :func:`draw_effects` draws them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..design.suffstats import SuffStats
from . import linalg
from .logdensity import constrain_scales, fixed_log_prior
from .priors import Normal


class CollapsedData(NamedTuple):
    """What the collapsed log density reads: statistics and priors."""

    stats: SuffStats
    priors: tuple


class CollapsedStructure(NamedTuple):
    """Static shape: ``(q, has_cor)`` per group term, and whether b is integrated out."""

    terms: tuple[tuple[int, bool], ...]
    integrate_fixed: bool


def gaussian_fixed_priors(priors: tuple) -> bool:
    """Whether every fixed effect has a Normal prior (so b can be integrated out)."""
    return all(isinstance(p, Normal) for p in priors[0])


def joint_factor(sds, chols) -> jax.Array:
    """``T`` with ``Σ = T Tᵀ``: block-diagonal over terms, each block ``diag(sd) L``."""
    blocks = [sd[:, None] * chol if chol is not None else jnp.diag(sd) for sd, chol in zip(sds, chols)]
    return jax.scipy.linalg.block_diag(*blocks)


class _Reduced(NamedTuple):
    """The pieces of the quadratic form in b, after integrating out r."""

    log_det_v: jax.Array
    A: jax.Array
    g: jax.Array
    k: jax.Array
    R: jax.Array  # (levels, Q, Q) Cholesky factors of B_l


def _t_products(stats: SuffStats, T: jax.Array):
    """``Tᵀ G_l T``, ``Tᵀ c_l`` and ``Tᵀ D_l`` for every level, each as one plain matrix
    product on reshaped arrays (batched tiny matmuls are slow on CPU)."""
    L, q, p = stats.D.shape
    TGT = (stats.G.reshape(L, q * q) @ jnp.kron(T, T)).reshape(L, q, q)
    Tc = stats.c @ T
    TD = jnp.swapaxes((jnp.swapaxes(stats.D, 1, 2).reshape(L * p, q) @ T).reshape(L, p, q), 1, 2)
    return TGT, Tc, TD


def _reduce(stats: SuffStats, sigma: jax.Array, T: jax.Array) -> _Reduced:
    s2 = sigma * sigma
    TGT, Tc, TD = _t_products(stats, T)
    R = linalg.cholesky(jnp.eye(T.shape[0]) + TGT / s2)
    w = linalg.solve_lower(R, Tc)
    W = linalg.solve_lower(R, TD)
    L, q, p = W.shape
    W_flat = W.reshape(L * q, p)
    log_det_v = stats.n * jnp.log(s2) + jnp.sum(linalg.log_det_from_cholesky(R))
    A = stats.XtX / s2 - (W_flat.T @ W_flat) / (s2 * s2)
    g = stats.Xty / s2 - (W_flat.T @ w.reshape(L * q)) / (s2 * s2)
    k = stats.yty / s2 - jnp.sum(w * w) / (s2 * s2)
    return _Reduced(log_det_v, A, g, k, R)


def _fixed_posterior(red: _Reduced, fixed_priors: tuple):
    """Precision P, its Cholesky factor and the mean of b given (σ, Σ)."""
    m0 = jnp.stack([p.mean for p in fixed_priors])
    v0 = jnp.stack([p.sd for p in fixed_priors]) ** 2
    P = red.A + jnp.diag(1.0 / v0)
    h = red.g + m0 / v0
    chol_p = jnp.linalg.cholesky(P)
    mean = jax.scipy.linalg.cho_solve((chol_p, True), h)
    return m0, v0, chol_p, h, mean


def log_marginal(stats: SuffStats, sigma: jax.Array, T: jax.Array, fixed_priors: tuple) -> jax.Array:
    """``log p(y | σ, Σ)`` with r and b integrated out (Normal priors on b)."""
    red = _reduce(stats, sigma, T)
    m0, v0, chol_p, h, mean = _fixed_posterior(red, fixed_priors)
    return -0.5 * (stats.n * jnp.log(2 * jnp.pi) + red.log_det_v + jnp.sum(jnp.log(v0))
                   + linalg.log_det_from_cholesky(chol_p) + red.k + jnp.sum(m0 * m0 / v0) - h @ mean)


def log_conditional(stats: SuffStats, sigma: jax.Array, T: jax.Array, b: jax.Array) -> jax.Array:
    """``log p(y | b, σ, Σ)`` with r integrated out."""
    red = _reduce(stats, sigma, T)
    return -0.5 * (stats.n * jnp.log(2 * jnp.pi) + red.log_det_v + b @ red.A @ b - 2 * b @ red.g + red.k)


@lru_cache(maxsize=None)
def make_collapsed_logdensity(struct: CollapsedStructure):
    """``f(position, data)``: log posterior of (σ, sds, correlations[, b]) with r (and b) integrated out."""

    def logdensity(position: dict, data: CollapsedData) -> jax.Array:
        aux, sds, chols, log_prior, log_jac = constrain_scales(position, data.priors, struct.terms)
        T = joint_factor(sds, chols)
        if struct.integrate_fixed:
            loglik = log_marginal(data.stats, aux[0], T, data.priors[0])
        else:
            b = position["b"]
            log_prior += fixed_log_prior(b, data.priors)
            loglik = log_conditional(data.stats, aux[0], T, b)
        return loglik + log_prior + log_jac

    return logdensity


def draw_effects(key: jax.Array, position: dict, data: CollapsedData, struct: CollapsedStructure):
    """One exact draw of (b, r) given a position of the variance parameters.

    Returns ``(b, aux, sds, chols, r)`` with ``r`` of shape (levels, Q).
    """
    aux, sds, chols, _, _ = constrain_scales(position, data.priors, struct.terms)
    T = joint_factor(sds, chols)
    s2 = aux[0] ** 2
    red = _reduce(data.stats, aux[0], T)
    key_b, key_r = jax.random.split(key)
    if struct.integrate_fixed:
        _, _, chol_p, _, mean = _fixed_posterior(red, data.priors[0])
        eps = jax.random.normal(key_b, mean.shape)
        b = mean + jax.scipy.linalg.solve_triangular(chol_p.T, eps, lower=False)
    else:
        b = position["b"]
    resid = (data.stats.c - data.stats.D @ b) @ T  # Tᵀ (c_l - D_l b), (levels, Q)
    mean_u = linalg.solve_upper_t(red.R, linalg.solve_lower(red.R, resid)) / s2  # B_l⁻¹ Tᵀ(...)/σ²
    eps = jax.random.normal(key_r, mean_u.shape)
    u = mean_u + linalg.solve_upper_t(red.R, eps)
    r = u @ T.T
    return b, aux, sds, chols, r


def split_effects(r: np.ndarray, terms) -> list[np.ndarray]:
    """Split side-by-side effects ``(..., levels, Q)`` into one array per group term."""
    edges = np.cumsum([q for q, *_ in terms])[:-1]
    return np.split(r, edges, axis=-1)
