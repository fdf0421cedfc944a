"""Batched linear algebra of tiny (q × q) symmetric positive-definite matrices.

Group terms have q = 1, 2, 3 (rarely more) columns, and the collapsed sampler
factorises one q × q matrix per level, for thousands of levels, at every
gradient evaluation. Batched ``jnp.linalg`` on such matrices is an order of
magnitude slower on CPU than the loops written out element by element, which
is what these functions do: the Python loops run over the q indices at trace
time, and every operation is vectorised over the batch of levels.

Above ``UNROLL_MAX`` the batched ``jnp.linalg`` routines are used.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

#: Largest q for which the factorisation is written out element by element.
UNROLL_MAX = 6


def cholesky(A: jax.Array) -> jax.Array:
    """Lower Cholesky factor ``L`` with ``A = L Lᵀ`` of a batch ``(..., q, q)``.

    .. math:: L_{jj} = \\sqrt{A_{jj} - \\sum_{k<j} L_{jk}^2}, \\quad
              L_{ij} = (A_{ij} - \\sum_{k<j} L_{ik} L_{jk}) / L_{jj}
    """
    q = A.shape[-1]
    if q > UNROLL_MAX:
        return jnp.linalg.cholesky(A)
    A = _elements_first(A)
    L = [[None] * q for _ in range(q)]
    for j in range(q):
        s = A[j, j]
        for k in range(j):
            s = s - L[j][k] ** 2
        L[j][j] = jnp.sqrt(s)
        for i in range(j + 1, q):
            s = A[i, j]
            for k in range(j):
                s = s - L[i][k] * L[j][k]
            L[i][j] = s / L[j][j]
    zero = jnp.zeros_like(A[0, 0])
    return _elements_last(jnp.stack([jnp.stack([L[i][j] if j <= i else zero for j in range(q)])
                                     for i in range(q)]))


def solve_lower(L: jax.Array, b: jax.Array) -> jax.Array:
    """Solve ``L x = b`` for lower-triangular ``L`` (..., q, q) and ``b`` (..., q) or (..., q, k)."""
    q = L.shape[-1]
    vector = b.ndim == L.ndim - 1
    if vector:
        b = b[..., None]
    if q > UNROLL_MAX:
        x = jax.scipy.linalg.solve_triangular(L, b, lower=True)
    else:
        Lt, bt = _elements_first(L), jnp.moveaxis(b, -2, 0)
        rows = []
        for i in range(q):
            s = bt[i]
            for k in range(i):
                s = s - Lt[i, k][..., None] * rows[k]
            rows.append(s / Lt[i, i][..., None])
        x = jnp.stack(rows, axis=-2)
    return x[..., 0] if vector else x


def solve_upper_t(L: jax.Array, b: jax.Array) -> jax.Array:
    """Solve ``Lᵀ x = b`` for lower-triangular ``L`` (..., q, q) and ``b`` (..., q) or (..., q, k)."""
    q = L.shape[-1]
    vector = b.ndim == L.ndim - 1
    if vector:
        b = b[..., None]
    if q > UNROLL_MAX:
        x = jax.scipy.linalg.solve_triangular(jnp.swapaxes(L, -1, -2), b, lower=False)
    else:
        Lt, bt = _elements_first(L), jnp.moveaxis(b, -2, 0)
        rows = [None] * q
        for i in reversed(range(q)):
            s = bt[i]
            for k in range(i + 1, q):
                s = s - Lt[k, i][..., None] * rows[k]
            rows[i] = s / Lt[i, i][..., None]
        x = jnp.stack(rows, axis=-2)
    return x[..., 0] if vector else x


def _elements_first(A: jax.Array) -> jax.Array:
    """``(..., q, q)`` as ``(q, q, ...)``: each element a contiguous batch (cheap slices)."""
    return jnp.moveaxis(A, (-2, -1), (0, 1))


def _elements_last(A: jax.Array) -> jax.Array:
    return jnp.moveaxis(A, (0, 1), (-2, -1))


def log_det_from_cholesky(L: jax.Array) -> jax.Array:
    """``log |A|`` from the Cholesky factor of A, per batch element."""
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(L, axis1=-2, axis2=-1)), axis=-1)
