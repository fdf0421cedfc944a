r"""The penalised coefficients of smooth terms: fixed-effect columns with the prior
``N(0, sds²)``, ``sds`` a parameter of the model.

mgcv's mixed-model form of a smooth (:mod:`multilevel.design.smooths`) leaves, per
penalty, a block of columns whose coefficients are iid ``N(0, sds²)``: given the sds they
are Gaussian, exactly as fixed effects with Normal priors, so every sampler treats them
as fixed effects whose prior sd is not a number but the parameter ``sds``, held after the
family's parameters in the position's ``aux`` (:attr:`~multilevel.model.layout.Layout.smooths`).
Where the coefficients are sampled (NUTS), the position holds them non-centred, as brms
does: standard normals ``u_j`` with ``b_j = sds · u_j``, so that a small sds makes no funnel;
the exact samplers integrate them out or draw them given sds.

.. math::
   \log p(b_j \mid \mathrm{sds}) = -\tfrac12 \log(2π\,\mathrm{sds}^2) - b_j^2 / (2\,\mathrm{sds}^2) .
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp


class Penalty(NamedTuple):
    """One penalised block: the index of its sd in ``aux`` and its fixed-effect columns."""

    aux: int
    columns: tuple[int, ...]


def prior_moments(fixed_priors: tuple, aux, penalties: tuple[Penalty, ...]) -> tuple:
    """``(m₀, v₀)`` of the fixed effects' Normal priors, each penalised column's variance
    being its block's ``sds²`` (``aux``: the constrained auxiliary parameters)."""
    m0 = jnp.stack([p.mean for p in fixed_priors])
    v0 = jnp.stack([p.sd for p in fixed_priors]) ** 2
    for penalty in penalties:
        columns = jnp.asarray(penalty.columns)
        m0 = m0.at[columns].set(0.0)
        v0 = v0.at[columns].set(aux[penalty.aux] ** 2)
    return m0, v0


def penalised_effects(b, aux, penalties: tuple[Penalty, ...], centred=None):
    """The fixed effects from a position's ``b``, whose penalised entries are standard
    normals ``u_j`` (non-centred): ``b_j = sds · u_j`` there, as given elsewhere.
    ``centred`` (per column, 1 or 0; None: all 0) keeps a block's entries as the
    coefficients themselves (centred), as NUTS chooses after its pilot."""
    if not penalties:
        return b
    scale = jnp.ones(b.shape[-1])
    for penalty in penalties:
        scale = scale.at[jnp.asarray(penalty.columns)].set(aux[penalty.aux])
    if centred is not None:
        scale = centred + (1.0 - centred) * scale
    return b * scale


def fixed_log_prior(b, fixed_priors: tuple, penalties: tuple[Penalty, ...] = (), aux=None, centred=None):
    """Sum of the fixed effects' prior log densities at a position's ``b``: the penalised
    entries are the standard normals ``u_j`` of :func:`penalised_effects`, whose map to
    ``N(0, sds²)`` coefficients has no Jacobian left over (it cancels ``sds⁻ᴷ``); centred
    ones (``centred``, with the sds in ``aux``) are the coefficients, ``N(0, sds²)``."""
    penalised = {j for penalty in penalties for j in penalty.columns}
    total = sum((p.log_prob(b[j]) for j, p in enumerate(fixed_priors) if j not in penalised), jnp.zeros(()))
    for penalty in penalties:
        u = b[jnp.asarray(penalty.columns)]
        log_normal = -0.5 * (jnp.log(2 * jnp.pi) + u * u)
        if centred is not None:
            s = aux[penalty.aux]
            on = centred[jnp.asarray(penalty.columns)]
            log_normal = on * (-0.5 * (jnp.log(2 * jnp.pi * s * s) + (u / s) ** 2)) + (1.0 - on) * log_normal
        total += jnp.sum(log_normal)
    return total
