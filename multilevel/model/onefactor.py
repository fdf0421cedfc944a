r"""The collapsed Gaussian algebra of one grouping factor, as a few fused passes over the levels.

With one factor, the sums over levels that :mod:`multilevel.model.marginal`
needs reduce to two quantities. For level l with ``G_l = Σ z zᵀ`` (q × q) and
``J_l = [D_l, c_l] = Σ z [xᵀ, y]`` (q × m, m = p + 1), and ``Σ = T Tᵀ``, let

.. math::
   M_l = σ^2 I + Tᵀ G_l T = σ^2 B_l, \qquad Y_l = M_l^{-1} Tᵀ J_l, \qquad
   \mathrm{ld} = \sum_l \log|M_l|, \qquad
   Q = \sum_l J_lᵀ T Y_l = \sum_l J_lᵀ T M_l^{-1} Tᵀ J_l .

Then, with ``Φ = [[XᵀX, Xᵀy], [yᵀX, yᵀy]]``, the quadratic form in b left
after integrating out r is ``[[A, g], [gᵀ, k]] = (Φ - Q) / σ²`` and
``log|V| = n log σ² + ld - L q log σ²``.

The reverse-mode derivative is written by hand (:func:`level_sums` is a
``custom_vjp``), so that the backward pass is one elementwise pass and one
matrix product instead of XLA's many unfused per-level intermediates. With
cotangents ``ḡ`` of ld and Γ̄ of Q (``Γ = (Γ̄ + Γ̄ᵀ)/2``):

.. math::
   \bar M_l = ḡ M_l^{-1} - Y_l Γ Y_lᵀ, \qquad
   \bar σ^2 = \sum_l \mathrm{tr}\, \bar M_l, \qquad
   \bar T = 2 \sum_l G_l T \bar M_l + 2 \sum_l J_l Γ Y_lᵀ .

Both sums over levels are single matrix products: ``Σ_l G_l ⊗ M̄_l`` and
``Σ_l J_l ⊗ Y_l``, the latter also giving Q in the forward pass.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import linalg


class OneFactor(NamedTuple):
    """Per level: the Cholesky factor of M and ``Y``; and the two sums ld and Q."""

    R: jax.Array  # (levels, q, q)
    Y: jax.Array  # (levels, q, m)
    ld: jax.Array
    Q: jax.Array  # (m, m)


def _scaled_precision(T, s2, g):
    """``M = σ² I + Tᵀ G T`` in element form, for G in element form."""
    q = T.shape[0]
    GT = [[sum(g[a][c] * T[c, d] for c in range(q)) for d in range(q)] for a in range(q)]
    return [[sum(T[a, i] * GT[a][k] for a in range(q)) + (s2 if i == k else 0.0) for k in range(q)]
            for i in range(q)]


def _forward(T, s2, G, J):
    """Every per-level quantity is written out element by element (scalar T entries times
    batches of levels), so that XLA fuses them into a few loops over the levels."""
    q = T.shape[0]
    g, j = linalg.elements(G), linalg.elements(J)
    R = linalg.cholesky_elements(_scaled_precision(T, s2, g))
    U = [[sum(T[a, b] * j[a][c] for a in range(q)) for c in range(len(j[0]))] for b in range(q)]
    Y = linalg.solve_upper_t_elements(R, linalg.solve_lower_elements(R, U))
    ld = 2.0 * jnp.sum(sum(jnp.log(R[i][i]) for i in range(q)))
    Y = linalg.stack_elements(Y)
    JY = _outer_sum(J, Y)  # [a, c, b, d] = Σ_l J[l, a, c] Y[l, b, d]
    Q = jnp.einsum("ab,acbd->cd", T, JY)
    return OneFactor(linalg.stack_elements(R), Y, ld, Q), JY


def _outer_sum(a: jax.Array, b: jax.Array) -> jax.Array:
    """``Σ_l a_l ⊗ b_l``, indexed ``[i, j, k, m] = Σ_l a[l, i, j] b[l, k, m]``: one matrix product.

    ``b`` (which varies with the parameters; ``a`` is data) is its left operand: vmapped over
    draws, XLA then multiplies without transposing the batch, several times faster.
    """
    num_levels = a.shape[0]
    out = b.reshape(num_levels, -1).T @ a.reshape(num_levels, -1)
    return out.T.reshape(a.shape[1:] + b.shape[1:])


def draw_effects(eps: jax.Array, sums: OneFactor, T: jax.Array, sigma: jax.Array, b: jax.Array) -> jax.Array:
    """One exact draw of the group effects ``r_l = T u_l`` (levels, q) given b, from standard
    normals ``eps`` (levels, q): ``u_l ~ N(M_l⁻¹ Tᵀ (c_l - D_l b), σ² M_l⁻¹)``, whose mean is
    ``Y_l [-b, 1]``."""
    p = b.shape[0]
    y, R = linalg.elements(sums.Y), linalg.elements(sums.R)
    q = len(R)
    noise = linalg.solve_upper_t_elements(R, [[eps[..., i]] for i in range(q)])
    u = [y[i][p] - sum(y[i][c] * b[c] for c in range(p)) + sigma * noise[i][0] for i in range(q)]
    return jnp.stack([sum(T[a, k] * u[k] for k in range(q)) for a in range(q)], axis=-1)


def cross_sum(T: jax.Array, s2: jax.Array, G: jax.Array, J: jax.Array) -> jax.Array:
    """Q of the module docstring as ``Σ_l W_lᵀ W_l`` with ``W_l = R_l⁻¹ Tᵀ J_l`` (M = R Rᵀ).

    One fused reduction over the levels that keeps no per-level array: what the exact
    draws need, where :func:`level_sums` would store R and Y for every level of every draw.
    """
    q, m = J.shape[1:]
    g, j = linalg.elements(G), linalg.elements(J)
    R = linalg.cholesky_elements(_scaled_precision(T, s2, g))
    U = [[sum(T[a, b] * j[a][c] for a in range(q)) for c in range(m)] for b in range(q)]
    W = linalg.solve_lower_elements(R, U)
    entries = {(c, d): jnp.sum(sum(W[i][c] * W[i][d] for i in range(q))) for c in range(m) for d in range(c + 1)}
    return jnp.stack([jnp.stack([entries[max(c, d), min(c, d)] for d in range(m)]) for c in range(m)])


def draw_level_effects(eps: jax.Array, T: jax.Array, s2: jax.Array, sigma: jax.Array, b: jax.Array,
                       G: jax.Array, J: jax.Array) -> tuple[list[jax.Array], jax.Array]:
    r"""One exact draw of the group effects given b, one fused pass over the levels.

    With ``v_l = Tᵀ J_l [-b, 1]`` (``= Tᵀ (c_l - D_l b)``) and ``M_l = R_l R_lᵀ``:
    ``u_l = R_l^{-T} (R_l^{-1} v_l + σ ε_l) ~ N(M_l⁻¹ v_l, σ² M_l⁻¹)`` and ``r_l = T u_l``.
    Also returns the levels' part of the residual sum of squares,
    ``Σ_l r_lᵀ (G_l r_l - 2 J_l [-b, 1])``.

    ``eps`` (levels, q) standard normals. Returns the q columns of r, each (levels,), and
    that sum. Nothing per level is kept but r: M and R are recomputed from G, which costs
    less than storing them.
    """
    q, m = J.shape[1:]
    p = m - 1
    g, j = linalg.elements(G), linalg.elements(J)
    R = linalg.cholesky_elements(_scaled_precision(T, s2, g))
    resid = [j[a][p] - sum(j[a][c] * b[c] for c in range(p)) for a in range(q)]  # c_l - D_l b
    v = [[sum(T[a, i] * resid[a] for a in range(q))] for i in range(q)]
    w = linalg.solve_lower_elements(R, v)
    u = linalg.solve_upper_t_elements(R, [[w[i][0] + sigma * eps[..., i]] for i in range(q)])
    r = [sum(T[a, k] * u[k][0] for k in range(q)) for a in range(q)]
    rss = jnp.sum(sum(r[a] * (sum(g[a][c] * r[c] for c in range(q)) - 2.0 * resid[a]) for a in range(q)))
    return r, rss


@jax.custom_vjp
def level_sums(T: jax.Array, s2: jax.Array, G: jax.Array, J: jax.Array) -> OneFactor:
    """R, Y, ld and Q of the module docstring for scales ``T`` (q × q) and ``s2 = σ²``.

    Only ld and Q may be differentiated (R and Y are for the exact draws).
    """
    return _forward(T, s2, G, J)[0]


def _level_sums_fwd(T, s2, G, J):
    out, JY = _forward(T, s2, G, J)
    return out, (T, G, J, out.R, out.Y, JY)


def _level_sums_bwd(residuals, cotangents):
    T, G, J, R, Y, JY = residuals
    ld_bar, Q_bar = cotangents.ld, cotangents.Q
    q, m = Y.shape[1:]
    Gamma = 0.5 * (Q_bar + Q_bar.T)
    r, y = linalg.elements(R), linalg.elements(Y)
    eye = [[jnp.ones_like(r[0][0]) if i == k else jnp.zeros_like(r[0][0]) for k in range(q)] for i in range(q)]
    M_inv = linalg.solve_upper_t_elements(r, linalg.solve_lower_elements(r, eye))
    YG = [[sum(y[i][c] * Gamma[c, d] for c in range(m)) for d in range(m)] for i in range(q)]
    M_bar = [[ld_bar * M_inv[i][k] - sum(YG[i][d] * y[k][d] for d in range(m)) for k in range(q)]
             for i in range(q)]
    s2_bar = jnp.sum(sum(M_bar[i][i] for i in range(q)))
    GM = _outer_sum(G, linalg.stack_elements(M_bar))  # [a, c, d, b] = Σ_l G[l, a, c] M̄[l, d, b]
    T_bar = 2.0 * jnp.einsum("cd,acdb->ab", T, GM) + 2.0 * jnp.einsum("cd,acbd->ab", Gamma, JY)
    return T_bar, s2_bar, jnp.zeros_like(G), jnp.zeros_like(J)


level_sums.defvjp(_level_sums_fwd, _level_sums_bwd)
