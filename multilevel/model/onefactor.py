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
``custom_vjp``). With cotangents ``ḡ`` of ld and Γ̄ of Q (``Γ = (Γ̄ + Γ̄ᵀ)/2``):

.. math::
   \bar M_l = ḡ M_l^{-1} - Y_l Γ Y_lᵀ, \qquad
   \bar σ^2 = \sum_l \mathrm{tr}\, \bar M_l, \qquad
   \bar T = 2 \sum_l G_l T \bar M_l + 2 \sum_l J_l Γ Y_lᵀ .

Each pass is one loop over the levels that keeps nothing per level: with
``M_l = R_l R_lᵀ`` and ``W_l = R_l^{-1} Tᵀ J_l``, the forward pass sums
``ld = -2 Σ_l Σ_i log d_{l,i}`` (d the reciprocals of R's diagonal) and
``Q = Σ_l W_lᵀ W_l`` in one reduction; the backward pass recomputes R, W and
``Y_l = R_l^{-T} W_l`` from G and J (cheaper than storing them) and sums
``tr M̄_l`` and the entries of ``T̄`` in another.
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


def _factor(T, s2, g, j):
    """Per level, in element form: the factor ``(L, d)`` of M
    (:func:`~multilevel.model.linalg.cholesky_reciprocal_elements`) and ``W = R⁻¹ Tᵀ J``."""
    q, m = len(j), len(j[0])
    L, d = linalg.cholesky_reciprocal_elements(_scaled_precision(T, s2, g))
    U = [[sum(T[a, b] * j[a][c] for a in range(q)) for c in range(m)] for b in range(q)]
    return L, d, linalg.solve_lower_reciprocal_elements(L, d, U)


def _sum_levels(parts: list[jax.Array]) -> list[jax.Array]:
    """The sums over the levels of several (levels,) arrays as one variadic reduction: one loop
    over the levels, in which their common intermediates are computed once."""
    totals = jax.lax.reduce(tuple(parts), tuple(jnp.zeros((), p.dtype) for p in parts),
                            lambda a, b: tuple(x + y for x, y in zip(a, b)), (0,))
    return list(totals)


def _cross_products(W: list[list[jax.Array]], extra: list[jax.Array] = ()):
    """``Σ_l W_lᵀ W_l`` (m × m) for W in element form, and the sums of the ``extra`` (levels,)
    arrays, all in one reduction. Returns ``(sums of extra, Σ WᵀW)``."""
    q, m = len(W), len(W[0])
    pairs = [(c, e) for c in range(m) for e in range(c + 1)]
    sums = _sum_levels(list(extra) + [sum(W[i][c] * W[i][e] for i in range(q)) for c, e in pairs])
    entries = dict(zip(pairs, sums[len(extra):]))
    Q = jnp.stack([jnp.stack([entries[max(c, e), min(c, e)] for e in range(m)]) for c in range(m)])
    return sums[:len(extra)], Q


def _forward(T, s2, G, J):
    q = J.shape[1]
    g, j = linalg.elements(G), linalg.elements(J)
    L, d, W = _factor(T, s2, g, j)
    (ld,), Q = _cross_products(W, [sum(jnp.log(d[i]) for i in range(q))])
    R = [[1.0 / d[i] if i == k else L[i][k] for k in range(q)] for i in range(q)]
    Y = linalg.solve_upper_t_reciprocal_elements(L, d, W)
    return OneFactor(linalg.stack_elements(R), linalg.stack_elements(Y), -2.0 * ld, Q)


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
    _, _, W = _factor(T, s2, linalg.elements(G), linalg.elements(J))
    return _cross_products(W)[1]


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
    L, d = linalg.cholesky_reciprocal_elements(_scaled_precision(T, s2, g))
    resid = [j[a][p] - sum(j[a][c] * b[c] for c in range(p)) for a in range(q)]  # c_l - D_l b
    v = [[sum(T[a, i] * resid[a] for a in range(q))] for i in range(q)]
    w = linalg.solve_lower_reciprocal_elements(L, d, v)
    u = linalg.solve_upper_t_reciprocal_elements(L, d, [[w[i][0] + sigma * eps[..., i]] for i in range(q)])
    r = [sum(T[a, k] * u[k][0] for k in range(q)) for a in range(q)]
    rss = jnp.sum(sum(r[a] * (sum(g[a][c] * r[c] for c in range(q)) - 2.0 * resid[a]) for a in range(q)))
    return r, rss


@jax.custom_vjp
def level_sums(T: jax.Array, s2: jax.Array, G: jax.Array, J: jax.Array) -> OneFactor:
    """R, Y, ld and Q of the module docstring for scales ``T`` (q × q) and ``s2 = σ²``.

    Only ld and Q may be differentiated (R and Y are for the exact draws; unused, XLA
    drops them).
    """
    return _forward(T, s2, G, J)


def _level_sums_fwd(T, s2, G, J):
    return _forward(T, s2, G, J), (T, s2, G, J)


def _level_sums_bwd(residuals, cotangents):
    T, s2, G, J = residuals
    ld_bar, Q_bar = cotangents.ld, cotangents.Q
    q, m = J.shape[1:]
    Gamma = 0.5 * (Q_bar + Q_bar.T)
    g, j = linalg.elements(G), linalg.elements(J)
    L, d, W = _factor(T, s2, g, j)
    y = linalg.solve_upper_t_reciprocal_elements(L, d, W)
    eye = [[jnp.ones_like(d[0]) if i == k else jnp.zeros_like(d[0]) for k in range(q)] for i in range(q)]
    M_inv = linalg.solve_upper_t_reciprocal_elements(L, d, linalg.solve_lower_reciprocal_elements(L, d, eye))
    YG = [[sum(y[i][c] * Gamma[c, e] for c in range(m)) for e in range(m)] for i in range(q)]
    M_bar = [[ld_bar * M_inv[i][k] - sum(YG[i][e] * y[k][e] for e in range(m)) for k in range(q)]
             for i in range(q)]
    GT = [[sum(g[a][c] * T[c, e] for c in range(q)) for e in range(q)] for a in range(q)]
    sums = _sum_levels([sum(M_bar[i][i] for i in range(q))]
                       + [sum(GT[a][e] * M_bar[e][b] for e in range(q)) + sum(j[a][c] * YG[b][c] for c in range(m))
                          for a in range(q) for b in range(q)])
    T_bar = 2.0 * jnp.stack(sums[1:]).reshape(q, q)
    return T_bar, sums[0], jnp.zeros_like(G), jnp.zeros_like(J)


level_sums.defvjp(_level_sums_fwd, _level_sums_bwd)
