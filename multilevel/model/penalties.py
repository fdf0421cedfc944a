r"""The penalised coefficients of smooth terms: fixed-effect columns with the prior
``N(0, sds²)``, ``sds`` a parameter of the model.

mgcv's mixed-model form of a smooth (:mod:`multilevel.design.smooths`) leaves, per
penalty, a block of columns whose coefficients are iid ``N(0, sds²)``: given the sds they
are Gaussian, exactly as fixed effects with Normal priors, so every sampler treats them
as fixed effects whose prior sd is not a number but the parameter ``sds``, held after the
family's parameters in the position's ``aux`` (:attr:`~multilevel.model.layout.Layout.smooths`).

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


def fixed_log_prior(b, fixed_priors: tuple, aux=None, penalties: tuple[Penalty, ...] = ()):
    """Sum of the fixed effects' prior log densities, ``N(0, sds²)`` for the penalised ones."""
    penalised = {j for penalty in penalties for j in penalty.columns}
    total = sum((p.log_prob(b[j]) for j, p in enumerate(fixed_priors) if j not in penalised), jnp.zeros(()))
    for penalty in penalties:
        s, coefficients = aux[penalty.aux], b[jnp.asarray(penalty.columns)]
        total += -0.5 * (len(penalty.columns) * jnp.log(2 * jnp.pi * s * s) + jnp.sum(coefficients ** 2) / (s * s))
    return total
