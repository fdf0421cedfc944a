"""Centred or non-centred group effects, per group term: a guess from the data, a
decision from a short pilot run of NUTS.

Notes
-----
A centred term holds each level's total effect around its parent's total (or
the fixed effects), :mod:`multilevel.model.hierarchy`. In the Gaussian
hierarchy the centred form mixes at rate ``1 / (1 + kappa)`` and the
non-centred at ``kappa / (1 + kappa)`` (Papaspiliopoulos, Roberts & Sköld
2007), where ``kappa = s² I`` is the ratio of the prior variance ``s²`` of a
level's effect to the variance the data alone would give it (``1 / I``); the
centred one wins when ``kappa > 1``. A term is centred when the median
``kappa`` over its levels is at least 1 for every column (and its columns are
linearly independent: a redundant column is pinned by no data).

The information ``I`` must be what the data say about the level's effect
*given the other terms' prior variances* (its ancestors, on which a centred
level sits, held fixed), not given their values: the rows of a location
inform the sum of its brood and location effects, and a brood with prior
variance ``s_B²`` and data information ``A`` passes up only ``1 / (s_B² + 1/A)``,
small when ``s_B²`` is large. With per-row information ``w_i`` (``-d² log
p(y_i | eta_i) / d eta_i²``), :func:`effective_information` integrates the
other terms out one at a time: for a term o with effect variance ``c`` shared
by the rows of a cell (a level of o, within a level of the term assessed), the
rows' precisions become ``a_i / (1 + c S_cell)`` with ``S_cell = sum_cell a_k
u_k²`` (``u``: o's column), which sums to ``S / (1 + c S) = 1 / (c + 1/S)``,
the exact marginal information of the cell when ``u`` is constant within it.
Terms nested in the assessed one are integrated from the finest up at their
prior variance ``s²`` (exact for nested random intercepts: chick, then brood,
for a location); crossed terms at their conditional posterior variance ``1 /
(1/s² + sum w u²)`` (a well-informed crossed effect hardly blurs the rows,
as in Papaspiliopoulos, Roberts & Zanella 2020; an approximation). O(rows)
per pair of terms, no dense matrices.

The rule from the data alone (:func:`choose_centering`, the pilot's start)
assumes the sd ``GUESS_SD`` for every term; the pilot run gives the sds and
the ``eta`` at which ``w`` is evaluated. On grouseticks (chicks in broods in
locations, Poisson) the pilot's kappas are about 0.4 (LOCATION), 3 (BROOD) and
0.9 (INDEX): BROOD alone is centred, on its location's total.
"""

from __future__ import annotations

from functools import partial
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ..design import Design
from ..model.families import Family
from ..model.logdensity import ModelData, Position, Structure, constrain, weighted

#: A term is centred when the median over its levels of sd² × information is at least this.
CENTER_MIN_KAPPA = 1.0
#: The sd the data-only guess assumes for every term column (link scale; Gaussian: in residual sds).
GUESS_SD = 20 ** -0.5


def independent_columns(design: Design) -> tuple[bool, ...]:
    """Whether each group term's columns are linearly independent (within each linear
    predictor: a term joined across formulas may hold the intercept of each)."""
    def independent(z: np.ndarray) -> bool:
        return bool(np.linalg.matrix_rank(z.T @ z) == z.shape[1])

    return tuple(all(independent(g.z[:, [j for j, e in enumerate(g.dpars) if e == d]]) for d in set(g.dpars))
                 for g in design.groups)


def nested_terms(design: Design) -> np.ndarray:
    """``inside[t, o]``: term o is nested in term t and has more levels (o lies below t)."""
    within = [design.structure.terms_within(o) for o in range(len(design.groups))]
    return np.array([[t in within[o] for o in range(len(within))] for t in range(len(within))],
                    dtype=bool).reshape(len(within), len(within))


Weights = np.ndarray | Mapping[str, np.ndarray]


def _weights(weights: Weights) -> Mapping[str, np.ndarray]:
    """Per-row information by linear predictor ("" the mean's; an array alone is the mean's)."""
    return weights if isinstance(weights, Mapping) else {"": weights}


def effective_information(design: Design, weights: Weights, sds: list[np.ndarray]) -> list[np.ndarray | None]:
    """Per term, the ``(levels, q, q)`` information of each level's effects from its rows,
    with the other terms' columns in the same linear predictor integrated out (see the
    module notes); ``weights``: per-row information about each linear predictor (by the
    name of the parameter it predicts, "" for the mean; an array alone: the mean's),
    ``sds``: each term's sds. A term that joins formulas by an ID gets a block per linear
    predictor (no information joins two predictors: none does for the mean and the scale
    of a Gaussian). None for a term whose linear predictors lack weights."""
    groups = design.groups
    inside = nested_terms(design)
    weights = _weights(weights)
    out = []
    for t, g in enumerate(groups):
        if any(d not in weights for d in g.dpars):
            out.append(None)
            continue
        info = np.zeros((g.num_levels, g.q, g.q))
        for dpar in dict.fromkeys(g.dpars):
            columns = [j for j, d in enumerate(g.dpars) if d == dpar]
            block = _predictor_information(groups, inside, t, dpar, np.asarray(weights[dpar], dtype=float), sds)
            info[np.ix_(range(g.num_levels), columns, columns)] = block[:, columns][:, :, columns]
        out.append(info)
    return out


def _predictor_information(groups, inside: np.ndarray, t: int, dpar: str, row_weights: np.ndarray,
                           sds: list[np.ndarray]) -> np.ndarray:
    """The ``(levels, q, q)`` information of term t's effects about linear predictor ``dpar``,
    the columns of the other terms in that predictor integrated out."""
    g = groups[t]
    same = [o for o in range(len(groups)) if dpar in groups[o].dpars]
    below = sorted((o for o in same if inside[t, o]), key=lambda o: -groups[o].num_levels)
    crossed = [o for o in same if o != t and not inside[t, o] and not inside[o, t]]
    a = row_weights.copy()
    for o in below + crossed:
        h = groups[o]
        if o in crossed:
            cells = np.unique(g.refs.astype(np.int64) * h.num_levels + h.refs, return_inverse=True)[1].ravel()
        else:
            cells = h.refs
        for j in (j for j in range(h.q) if h.dpars[j] == dpar):
            u2 = h.z[:, j] ** 2
            variance = float(sds[o][j]) ** 2
            if o in crossed:        # conditional posterior variance of the crossed level
                precision = 1 / max(variance, 1e-300) + np.bincount(h.refs, row_weights * u2, h.num_levels)
                variance = (1 / precision)[h.refs]
            shared = np.bincount(cells, a * u2)[cells]
            a = a / (1 + variance * shared)
    zz = g.z[:, :, None] * g.z[:, None, :]
    return np.stack([np.bincount(g.refs, a * zz[:, i, k], g.num_levels)
                     for i in range(g.q) for k in range(g.q)], axis=-1).reshape(g.num_levels, g.q, g.q)


def median_kappa(design: Design, weights: Weights, sds: list[np.ndarray]) -> list[np.ndarray | None]:
    """Per term, per column: the median over levels of ``sd² / [I⁻¹]_jj`` (``I``:
    :func:`effective_information`; the inverse gives each column the information
    left given the level's other columns); None without weights for its predictor."""
    out = []
    for sd, info in zip(sds, effective_information(design, weights, sds)):
        if info is None:
            out.append(None)
            continue
        variance = np.diagonal(np.linalg.pinv(info, hermitian=True), axis1=1, axis2=2)
        kappa = np.asarray(sd) ** 2 * np.where(variance > 0, 1 / np.maximum(variance, 1e-300), 0.0)
        out.append(np.median(kappa, axis=0))
    return out


def decide_from_sds(design: Design, weights: Weights, sds: list[np.ndarray], source: str = "given sds"
                    ) -> tuple[tuple[bool, ...], tuple[str, ...]]:
    """``(centred per term, reason per term)``: centred when the median over levels of
    sd² × :func:`effective_information` is at least ``CENTER_MIN_KAPPA`` in every
    column and the columns are independent; ``weights`` and ``sds`` as there."""
    choice, reasons = [], []
    for g, sd, kappa, independent in zip(design.groups, sds, median_kappa(design, weights, sds),
                                         independent_columns(design)):
        if kappa is None:
            choice.append(False)
            other = next(d for d in g.dpars if d)
            reasons.append(f"{source}: non-centred (the term predicts {other}, on which only a pilot run informs)")
            continue
        sd_text = ", ".join(f"{s:.3g}" for s in np.atleast_1d(sd))
        least = float(np.min(kappa))
        what = f"{source}: sd ≈ {sd_text}, median over levels of sd² × information {least:.3g}"
        if not independent:
            choice.append(False)
            reasons.append(f"{what}; non-centred: the term's columns are linearly dependent")
        elif least >= CENTER_MIN_KAPPA:
            choice.append(True)
            reasons.append(f"{what} >= {CENTER_MIN_KAPPA:g}: the data pin the effects")
        else:
            choice.append(False)
            reasons.append(f"{what} < {CENTER_MIN_KAPPA:g}: the prior dominates the effects")
    return tuple(choice), tuple(reasons)


def choose_centering(design: Design, family: Family | None = None) -> tuple[bool, ...]:
    """Centred or non-centred, per group term, from the data alone (the pilot's start).

    The rule of :func:`decide_centering` with every sd ``GUESS_SD`` and the per-row
    information :meth:`Family.information` (1 per row without a family).
    """
    return guess_centering(design, family)[0]


def guess_centering(design: Design, family: Family | None = None) -> tuple[tuple[bool, ...], tuple[str, ...]]:
    """:func:`choose_centering` with the reasons."""
    weights = np.ones(design.num_rows) if family is None else family.information(design.y, design.trials)
    weights = weights * row_precision(design)
    sds = [np.full(g.q, GUESS_SD) for g in design.groups]
    return decide_from_sds(design, weights, sds, "data only (warmup too short for a pilot), assumed")


def row_precision(design: Design) -> np.ndarray | float:
    """Each row's information relative to an unweighted row: its weight, over its known
    variance relative to the median one (``se()``: a row measured twice as precisely
    informs four times as much, in units of a typical row)."""
    out = 1.0 if design.weights is None else np.asarray(design.weights, dtype=float)
    if design.se is not None:
        variance = np.maximum(np.asarray(design.se, dtype=float) ** 2, 1e-300)
        out = out * np.median(variance) / variance
    return out


@partial(jax.jit, static_argnums=2)
def _pilot_statistics(positions: Position, data: ModelData, struct: Structure):
    """From pilot draws ``(chain, draw, ...)``: the median sd of every term column (over
    the second half of the draws), and the information of each row about each linear
    predictor (the others held) at the chains' last positions (averaged)."""
    half = jax.tree_util.tree_map(lambda a: a[:, a.shape[1] // 2:], positions)  # past the first moves
    flat = jax.tree_util.tree_map(lambda a: a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:]), half)
    sds = jax.vmap(lambda p: constrain(p, data, struct)[0].sd)(flat)
    median_sd = tuple(jnp.median(s, axis=0) for s in sds)

    predictors, family = struct.predictors, struct.family

    def row_information(p):
        params = constrain(p, data, struct)[0]
        etas = predictors.etas(params.b, params.effects, data.X, data.refs, data.z, data.offset)

        def information(k):
            def total(eta_k):
                eta, aux = predictors.family_arguments(family, etas[:k] + (eta_k,) + etas[k + 1:], params.aux,
                                                       data.se)
                return jnp.sum(weighted(family.log_likelihood(data.y, eta, aux, data.trials), data))

            # log p(y | etas) is a sum over rows, so its Hessian in eta_k is diagonal: H·1 is the diagonal.
            second = jax.jvp(jax.grad(total), (etas[k],), (jnp.ones_like(etas[k]),))[1]
            return jnp.maximum(jnp.nan_to_num(-second, nan=0.0, posinf=0.0), 0.0)   # a tail's NaN: no information

        return tuple(information(k) for k in range(len(etas)))

    last = jax.tree_util.tree_map(lambda a: a[:, -1], positions)
    return median_sd, tuple(jnp.mean(w, axis=0) for w in jax.vmap(row_information)(last))


def decide_centering(positions: Position, data: ModelData, struct: Structure, design: Design
                     ) -> tuple[tuple[bool, ...], tuple[str, ...], list[np.ndarray]]:
    """``(centred per term, reason per term, sds per term)`` from the draws of a pilot
    run (see the Notes)."""
    sds, weights = jax.device_get(_pilot_statistics(positions, data, struct))
    sds = [np.asarray(s) for s in sds]
    names = ("",) + tuple(d.name for d in design.spec.dpars)
    return (*decide_from_sds(design, dict(zip(names, map(np.asarray, weights))), sds, "pilot run"), sds)
