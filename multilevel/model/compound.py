r"""Compound symmetry: lme4's ``cs(x | g)``, one sd and one correlation for all of a
term's q effects.

The term's covariance is ``Σ = s² R(ρ)`` with ``R(ρ) = (1 - ρ) I + ρ 11ᵀ``, positive
definite for ``-1/(q-1) < ρ < 1`` (its eigenvalues are ``1 - ρ``, q - 1 times, and
``1 + (q - 1) ρ``). The unconstrained position holds ``log``-scale ``s`` (through the sd
prior's map, as any sd) and ``u`` with

.. math::
   ρ = ρ_0 + (1 - ρ_0)\, \mathrm{logistic}(u), \qquad ρ_0 = -1/(q-1), \qquad
   \log |dρ/du| = \log(1 - ρ_0) + \log λ(u) + \log(1 - λ(u)) .

The correlation's prior is the LKJ(η) density restricted to compound-symmetric
matrices, ``p(ρ) ∝ |R(ρ)|^{η-1} = [(1-ρ)^{q-1} (1 + (q-1)ρ)]^{η-1}``: uniform on
``(ρ_0, 1)`` for the default η = 1, and, for η > 1, pulled towards 0.
Downstream every sampler sees the term as a correlated one, with sds ``(s, ..., s)``
and the Cholesky factor of ``R(ρ)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from . import linalg


def lower_bound(q: int) -> float:
    """The smallest correlation of a positive-definite compound-symmetric q × q matrix."""
    return -1.0 / (q - 1)


def correlation(u: jax.Array, q: int) -> tuple[jax.Array, jax.Array]:
    """``(ρ, log|dρ/du|)`` from the unconstrained ``u`` (module notes)."""
    lo = lower_bound(q)
    rho = lo + (1.0 - lo) * jax.nn.sigmoid(u)
    return rho, jnp.log(1.0 - lo) + jax.nn.log_sigmoid(u) + jax.nn.log_sigmoid(-u)


def unconstrained(rho: jax.Array, q: int) -> jax.Array:
    """The inverse of :func:`correlation`: ``u = log(ρ - ρ_0) - log(1 - ρ)``."""
    return jnp.log(rho - lower_bound(q)) - jnp.log1p(-rho)


def cholesky(rho: jax.Array, q: int) -> jax.Array:
    """The lower Cholesky factor of ``R(ρ)`` (q × q)."""
    R = (1.0 - rho) * jnp.eye(q) + rho * jnp.ones((q, q))
    return linalg.cholesky(R)


def log_prior(rho: jax.Array, q: int, eta) -> jax.Array:
    """``(η - 1) log|R(ρ)|``: the LKJ(η) density on the compound-symmetric line, unnormalised."""
    return (eta - 1.0) * ((q - 1) * jnp.log1p(-rho) + jnp.log1p((q - 1) * rho))


def sample(rng: np.random.Generator, eta: float, q: int, shape: tuple) -> np.ndarray:
    """Independent draws of ρ from :func:`log_prior` (η >= 1), by rejection from the uniform
    on ``(ρ_0, 1)``: ``|R(ρ)| <= 1``, with equality at ρ = 0, bounds the density's ratio."""
    lo = lower_bound(q)
    out = np.empty(int(np.prod(shape)))
    filled = 0
    while filled < out.size:
        rho = rng.uniform(lo, 1.0, out.size)
        det = (1.0 - rho) ** (q - 1) * (1.0 + (q - 1) * rho)
        keep = rho[rng.uniform(size=out.size) < det ** (eta - 1.0)][: out.size - filled]
        out[filled:filled + keep.size] = keep
        filled += keep.size
    return out.reshape(shape)
