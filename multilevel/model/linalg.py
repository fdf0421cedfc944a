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
    """Lower Cholesky factor ``L`` with ``A = L Lᵀ`` of a batch ``(..., q, q)``."""
    q = A.shape[-1]
    if q > UNROLL_MAX:
        return jnp.linalg.cholesky(A)
    return stack_elements(cholesky_elements(elements(A)))


def elements(A: jax.Array) -> list[list[jax.Array]]:
    """``(..., q, k)`` as nested lists ``[i][j]`` of batch arrays (the element form)."""
    return [[A[..., i, j] for j in range(A.shape[-1])] for i in range(A.shape[-2])]


def stack_elements(E: list[list[jax.Array]]) -> jax.Array:
    """The inverse of :func:`elements`; None entries (above a diagonal) are zeros."""
    zero = jnp.zeros_like(E[0][0])
    return jnp.stack([jnp.stack([zero if e is None else e for e in row], axis=-1) for row in E], axis=-2)


def cholesky_elements(A: list[list[jax.Array]]) -> list[list[jax.Array | None]]:
    """:func:`cholesky` in element form (only the lower triangle of A is read).

    .. math:: L_{jj} = \\sqrt{A_{jj} - \\sum_{k<j} L_{jk}^2}, \\quad
              L_{ij} = (A_{ij} - \\sum_{k<j} L_{ik} L_{jk}) / L_{jj}
    """
    q = len(A)
    L = [[None] * q for _ in range(q)]
    for j in range(q):
        s = A[j][j]
        for k in range(j):
            s = s - L[j][k] ** 2
        L[j][j] = jnp.sqrt(s)
        for i in range(j + 1, q):
            s = A[i][j]
            for k in range(j):
                s = s - L[i][k] * L[j][k]
            L[i][j] = s / L[j][j]
    return L


def cholesky_reciprocal_elements(A: list[list[jax.Array]]) -> tuple[list[list], list[jax.Array]]:
    """:func:`cholesky_elements` as the strictly lower part of L and the reciprocals of its diagonal.

    .. math:: d_j = 1 / L_{jj} = \\left(A_{jj} - \\sum_{k<j} L_{jk}^2\\right)^{-1/2}, \\quad
              L_{ij} = (A_{ij} - \\sum_{k<j} L_{ik} L_{jk})\\, d_j

    The factorisation and the solves below then take q reciprocal square roots and
    otherwise only multiplications and additions. XLA fuses those into their consumers,
    but stores the result of every division or square root that several consumers
    read as its own array over the batch: fewer such operations, fewer passes.
    Returns ``(L, d)``: ``L[i][k]`` for ``i > k`` (None on and above the diagonal), ``d[j]``.
    """
    q = len(A)
    L = [[None] * q for _ in range(q)]
    d = [None] * q
    for j in range(q):
        s = A[j][j]
        for k in range(j):
            s = s - L[j][k] ** 2
        d[j] = jax.lax.rsqrt(s)
        for i in range(j + 1, q):
            s = A[i][j]
            for k in range(j):
                s = s - L[i][k] * L[j][k]
            L[i][j] = s * d[j]
    return L, d


def solve_lower_reciprocal_elements(L: list[list], d: list, b: list[list]) -> list[list[jax.Array]]:
    """Solve ``L x = b`` in element form, ``b`` with any number of columns, for the factor ``(L, d)``
    of :func:`cholesky_reciprocal_elements`."""
    x = []
    for i in range(len(d)):
        row = []
        for c in range(len(b[i])):
            s = b[i][c]
            for k in range(i):
                s = s - L[i][k] * x[k][c]
            row.append(s * d[i])
        x.append(row)
    return x


def solve_upper_t_reciprocal_elements(L: list[list], d: list, b: list[list]) -> list[list[jax.Array]]:
    """:func:`solve_upper_t_elements` for the factor ``(L, d)`` of :func:`cholesky_reciprocal_elements`."""
    q = len(d)
    x = [None] * q
    for i in reversed(range(q)):
        row = []
        for c in range(len(b[i])):
            s = b[i][c]
            for k in range(i + 1, q):
                s = s - L[k][i] * x[k][c]
            row.append(s * d[i])
        x[i] = row
    return x


def solve_upper_t_elements(L: list[list], b: list[list]) -> list[list[jax.Array]]:
    """Solve ``Lᵀ x = b`` in element form for lower-triangular ``L``."""
    return solve_upper_t_reciprocal_elements(L, [1.0 / L[i][i] for i in range(len(L))], b)


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


def log_det_from_cholesky(L: jax.Array) -> jax.Array:
    """``log |A|`` from the Cholesky factor of A, per batch element."""
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(L, axis1=-2, axis2=-1)), axis=-1)
