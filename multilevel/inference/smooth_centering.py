r"""Centred or non-centred penalised coefficients of smooths under NUTS, from the pilot.

Notes
-----
A smooth's penalised coefficients are iid ``N(0, sds²)`` (:mod:`multilevel.model.penalties`),
a group term in all but name, and the rule of :mod:`multilevel.inference.centering`
applies: with ``κ = sds² I``, ``I`` the information the data carry about one coefficient
(``Σ_i w_i X_ij²``, ``w_i`` each row's information about its linear predictor), the
centred form mixes at rate ``1 / (1 + κ)`` and the non-centred at ``κ / (1 + κ)``. A block
starts non-centred (brms's form: no funnel as sds goes to 0) and is centred when, at the
pilot's median sds and last positions, the median ``κ`` over its columns is at least
:data:`~multilevel.inference.centering.CENTER_MIN_KAPPA` (a smooth of a count mean the
data pin down).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..model.layout import Layout
from ..model.logdensity import ModelData, Position, Structure, constrain
from ..model.penalties import penalised_effects
from .centering import CENTER_MIN_KAPPA, _pilot_statistics


def start_flags(layout: Layout) -> np.ndarray | None:
    """Every penalised coefficient non-centred (None without smooths)."""
    return np.zeros(len(layout.fixed)) if layout.penalties else None


def decide_penalties(positions: Position, data: ModelData, struct: Structure, layout: Layout
                     ) -> tuple[np.ndarray, dict[str, str]]:
    """Per fixed column the centring flag (1 centred) from a pilot's draws ``(chain, draw, ...)``,
    and per smooth sd the choice with its ``κ``."""
    half = jax.tree_util.tree_map(lambda a: a[:, a.shape[1] // 2:], positions)
    flat = jax.tree_util.tree_map(lambda a: a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:]), half)
    aux = np.median(np.asarray(jax.vmap(lambda p: constrain(p, data, struct)[0].aux)(flat)), axis=0)
    _, weights = jax.device_get(_pilot_statistics(positions, data, struct))
    X = np.asarray(data.X)
    names = ("",) + layout.dpars
    flags, reasons = np.zeros(len(layout.fixed)), {}
    for (name, _), penalty in zip(layout.smooths, layout.penalties):
        columns = list(penalty.columns)
        w = np.asarray(weights[names.index(layout.fixed_dpars[columns[0]])])
        kappa = float(np.median(aux[penalty.aux] ** 2 * (w[:, None] * X[:, columns] ** 2).sum(axis=0)))
        centred = kappa >= CENTER_MIN_KAPPA
        flags[columns] = float(centred)
        reasons[name] = f"{'centred' if centred else 'non-centred'}: pilot median sds² × information {kappa:.3g}"
    return flags, reasons


@partial(jax.jit, static_argnums=3)
def recentre_penalties(position: Position, data: ModelData, flags: jax.Array, struct: Structure) -> Position:
    """The same point as a position under the centring ``flags`` instead of
    ``data.penalty_centred``; ``position`` may carry leading batch axes (chains)."""
    def one(p):
        aux = constrain(p, data, struct)[0].aux
        b = penalised_effects(p.b, aux, struct.penalties, data.penalty_centred)
        scale = penalised_effects(jnp.ones_like(b), aux, struct.penalties, flags)
        return p._replace(b=b / scale)

    for _ in range(position.aux.ndim - 1):
        one = jax.vmap(one)
    return one(position)
