r"""Updates of a group term's covariance and of its translation against the fixed effects,
for the Metropolis-within-Gibbs sampler (:mod:`.mwg`).

A term of ``q`` columns has effects ``r_l ~ N(0, Σ)`` per level ``l = 1..L``, with
``Σ = D C Cᵀ D``, ``D = diag(s)`` its sds and ``C`` the Cholesky factor of its
correlation matrix (the identity for an independent ``||`` term), whose LKJ prior
the model gives; ``C`` is kept as its unconstrained coordinates ``u``
(:class:`numpyro.distributions.transforms.CorrCholeskyTransform`, as in the NUTS log
density).

**Centred update.** Given the effects, with ``S = Σ_l r_l r_lᵀ``,

.. math::

    \log p(u_s, u \mid r) = \sum_j [\log π(s_j) + \log J_j] + \log π_{LKJ}(C) + \log J_C
        - L \sum_j \log s_j - L \sum_j \log C_{jj} - ½ \operatorname{tr}(Σ^{-1} S) + c,

``u_s`` the sds on their priors' unconstrained scales (``J`` the Jacobians). Each of the
``q + q(q-1)/2`` coordinates is updated in turn by slice sampling (exact, no pass over
the rows).

**Non-centred update of an sd.** With ``w_l = (DC)⁻¹ r_l`` held fixed, ``r_{l,j} = s_j (C w_l)_j``
moves with ``s_j`` alone (column ``j`` of the effects scales by ``s_j' / s_j``) and, the
density of ``(s, w)`` being ``π(s) N(w; 0, I) p(y | η)``, ``s_j``'s conditional is
``π(s_j) p(y | η(s_j))``: slice sampled, one pass over the rows per evaluation. So is
each coordinate of ``u`` given ``w`` (``r_l = D C(u) w_l``; conditional
``π_{LKJ}(C(u)) J_C(u) p(y | η(u))``). With the centred updates these interweave the two
parameterisations (Yu & Meng 2011): the centred one mixes where the levels are well
informed, the non-centred one where they are not.

**Translation.** For fixed-effect columns ``T`` (m of them) and a per-level map
``A_l`` (q × m) with ``Σ_c z_{ic} (A_{l(i)} δ)_c = Σ_{j∈T} X_{ij} δ_j`` for every row, the move
``(b_T, r_l) → (b_T + δ, r_l - A_l δ)`` leaves η unchanged. Without the priors of
``b_T`` δ's conditional is Gaussian with precision ``P = Σ_l A_lᵀ Σ⁻¹ A_l`` and mean
``P⁻¹ Σ_l A_lᵀ Σ⁻¹ r_l``; drawn from it, δ is accepted with the ratio of the priors of
``b_T`` (an independence Metropolis–Hastings step on the translation group). Rows of
``A_l``: the intercept column's holds the level's values of the level-constant columns;
a column that repeats a fixed column ``j`` (a random slope of ``x`` with ``x`` in the
fixed part) holds a 1 at ``δ_j``.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from numpyro.distributions.transforms import CorrCholeskyTransform

from ..model import linalg
from ..model.prior_table import PriorValues
from ..model.priors import Prior
from .conditionals import slice_sample

_CORR = CorrCholeskyTransform()


def correlation_cholesky(u: jax.Array, q: int) -> jax.Array:
    """``C`` from its unconstrained coordinates (the identity for an independent term)."""
    return _CORR(u) if q > 1 and u.shape[0] else jnp.eye(q)


def precision(sd: jax.Array, chol: jax.Array) -> jax.Array:
    """``Σ⁻¹ = (C⁻¹ D⁻¹)ᵀ (C⁻¹ D⁻¹)``."""
    inverse = linalg.solve_lower(chol, jnp.eye(sd.shape[0])) / sd[None, :]
    return inverse.T @ inverse


def _log_scales(v: jax.Array, q: int, count, scatter: jax.Array, sd_priors: tuple[Prior, ...],
                cor_prior: Prior | None) -> jax.Array:
    """The centred conditional of the unconstrained ``v = (u_s, u)`` (module notes)."""
    sd, log_density = [], jnp.zeros(())
    for j, prior in enumerate(sd_priors):
        value, log_jac = prior.to_positive(v[j])
        sd.append(value)
        log_density += prior.log_prob(value) + log_jac
    sd = jnp.stack(sd)
    u = v[q:]
    chol = correlation_cholesky(u, q)
    if cor_prior is not None:
        log_density += cor_prior.log_prob(chol) + _CORR.log_abs_det_jacobian(u, chol)
    log_det = jnp.sum(jnp.log(sd)) + jnp.sum(jnp.log(jnp.diagonal(chol)))
    return log_density - count * log_det - 0.5 * jnp.sum(precision(sd, chol) * scatter)


def slice_covariance(key: jax.Array, effects: jax.Array, sd: jax.Array, u: jax.Array,
                     sd_priors: tuple[Prior, ...], cor_prior: Prior | None) -> tuple[jax.Array, jax.Array]:
    """The centred update: each unconstrained coordinate of ``(s, C)`` in turn by slice
    sampling given the effects (levels, q); returns ``(sd, u)``."""
    count, q = effects.shape
    scatter = effects.T @ effects
    v = jnp.concatenate([jnp.stack([p.from_positive(s) for p, s in zip(sd_priors, sd)]), u])
    width = 3.0 / jnp.sqrt(2.0 * count + 1.0)
    for k, sub in enumerate(jax.random.split(key, v.shape[0])):
        def log_density(x, k=k, v=v):
            return _log_scales(v.at[k].set(x), q, count, scatter, sd_priors, cor_prior)
        v = v.at[k].set(slice_sample(sub, log_density, v[k], width))
    sd = jnp.stack([p.to_positive(v[j])[0] for j, p in enumerate(sd_priors)])
    return sd, v[q:]


def scale_noncentred(key: jax.Array, loglik: Callable, eta: jax.Array, column: jax.Array, sd: jax.Array,
                     prior: Prior) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The non-centred update of one sd ``s`` whose effects contribute ``column`` to η
    (per row: ``z_ij r_{l(i),j}``); ``(s', ratio s'/s, η')``."""
    unit = column / sd
    base = eta - column

    def log_density(u):
        s, log_jac = prior.to_positive(u)
        return jnp.sum(loglik(base + s * unit)) + prior.log_prob(s) + log_jac

    s = prior.to_positive(slice_sample(key, log_density, prior.from_positive(sd), 0.5))[0]
    return s, s / sd, base + s * unit


def correlation_noncentred(key: jax.Array, loglik: Callable, eta: jax.Array, refs: jax.Array, z: jax.Array,
                           effects: jax.Array, sd: jax.Array, u: jax.Array,
                           cor_prior: Prior) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The non-centred update of the correlation factor: each coordinate of ``u`` in turn
    by slice sampling given the standardised effects ``w_l = (DC)⁻¹ r_l``, the effects
    ``r_l = D C(u) w_l`` moving with it; ``(u', effects', η')``. The term adds
    ``Σ_{j≥k} C_jk(u) z_ij s_j w_{l(i),k}`` to row i's η: those products are formed once,
    so that a slice evaluation is one elementwise pass without gathers."""
    q = effects.shape[1]
    w = linalg.solve_lower(correlation_cholesky(u, q), (effects / sd).T).T
    pairs = [(j, k) for j in range(q) for k in range(j + 1)]
    parts = [z[:, j] * sd[j] * w[refs, k] for j, k in pairs]

    def row_part(chol):
        return sum(chol[j, k] * part for (j, k), part in zip(pairs, parts))

    base = eta - row_part(correlation_cholesky(u, q))
    width = 3.0 / jnp.sqrt(2.0 * effects.shape[0] + 1.0)
    for k, sub in enumerate(jax.random.split(key, u.shape[0])):
        def log_density(x, k=k, u=u):
            v = u.at[k].set(x)
            chol = correlation_cholesky(v, q)
            return (jnp.sum(loglik(base + row_part(chol))) + cor_prior.log_prob(chol)
                    + _CORR.log_abs_det_jacobian(v, chol))
        u = u.at[k].set(slice_sample(sub, log_density, u[k], width))
    chol = correlation_cholesky(u, q)
    return u, (w @ chol.T) * sd, base + row_part(chol)


def translate(key: jax.Array, b: jax.Array, effects: jax.Array, term_precision: jax.Array, shift: jax.Array,
              columns: tuple[int, ...], priors: PriorValues) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The translation of the fixed columns ``columns`` against the effects (levels, q),
    ``shift`` the maps ``A_l`` (levels, q, m); ``(b, effects, accepted)``."""
    k_prop, k_acc = jax.random.split(key)
    weighted = jnp.einsum("qr,lrm->lqm", term_precision, shift)
    chol = jnp.linalg.cholesky(jnp.einsum("lqm,lqn->mn", shift, weighted))
    mean = jax.scipy.linalg.cho_solve((chol, True), jnp.einsum("lqm,lq->m", weighted, effects))
    delta = mean + jax.scipy.linalg.solve_triangular(chol.T, jax.random.normal(k_prop, mean.shape), lower=False)
    cols = jnp.asarray(columns)

    def log_prior(values):
        return sum(priors.fixed[j].log_prob(values[m]) for m, j in enumerate(columns))

    accepted = jnp.log(jax.random.uniform(k_acc)) < log_prior(b[cols] + delta) - log_prior(b[cols])
    delta = jnp.where(accepted, delta, 0.0)
    return b.at[cols].add(delta), effects - jnp.einsum("lqm,m->lq", shift, delta), accepted
