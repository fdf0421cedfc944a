"""Centred or non-centred group effects, per group term: a guess from the data, a
decision from a short pilot run of NUTS.

Notes
-----
For a level l of a term with sd ``s_j`` of column j, whose effects get the Fisher
information matrix ``I_l = sum_i w_i z_i z_iᵀ`` from its rows (``w_i = -d² log
p(y_i | eta_i) / d eta_i²``), the ratio ``kappa_lj = s_j² / [I_l⁻¹]_jj`` of the
prior variance to the posterior variance the data alone would give (given the
level's other effects: an uncentred slope column leaves its intercept little
information of its own) decides which parameterisation mixes better: in the
Gaussian hierarchy the centred form mixes at rate ``1 / (1 + kappa)`` and the
non-centred at ``kappa / (1 + kappa)`` (Papaspiliopoulos, Roberts & Sköld 2007),
so the centred one wins when ``kappa > 1``. A term is centred when the median
``kappa`` over its levels is at least 1 for every column (and its columns are
linearly independent: a redundant column is pinned by no data). A rule from the
data alone cannot know ``s``: it fails when ``s ≈ 0`` (centred, the sampler then
falls into the funnel's neck) or when ``s`` is large and the rows are few. The
pilot run gives ``s`` and the ``eta`` at which ``w`` is evaluated.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..design import Design
from ..model.family import Family
from ..model.logdensity import ModelData, Structure, constrain, linear_predictor

#: Median informative rows per level and column above which the data-only guess centres a term.
CENTER_MIN_ROWS = 20
#: A term is centred when the median over its levels of sd² × information is at least this.
CENTER_MIN_KAPPA = 1.0


def independent_columns(design: Design) -> tuple[bool, ...]:
    """Whether each group term's columns are linearly independent."""
    return tuple(bool(np.linalg.matrix_rank(g.z.T @ g.z) == g.q) for g in design.groups)


def choose_centering(design: Design, family: Family | None = None) -> tuple[bool, ...]:
    """Centred or non-centred, per group term, from the data alone (the pilot's start).

    A term is centred when its columns are linearly independent and every column
    has a median of at least ``CENTER_MIN_ROWS`` informative rows (non-zero z) per
    level; for a family other than the Gaussian, rows count by the information each
    carries on the link scale (:meth:`Family.information`).
    """
    weights = np.ones(design.num_rows) if family is None else family.information(design.y, design.trials)
    choice = []
    for g, independent in zip(design.groups, independent_columns(design)):
        rows = np.stack([np.bincount(g.refs, weights=(g.z[:, j] != 0) * weights, minlength=g.num_levels)
                         for j in range(g.q)])
        choice.append(bool(independent and np.median(rows, axis=1).min() >= CENTER_MIN_ROWS))
    return tuple(choice)


@partial(jax.jit, static_argnums=2)
def _pilot_statistics(positions: dict, data: ModelData, struct: Structure):
    """From pilot draws ``(chain, draw, ...)``: the median sd of every term column (over
    the second half of the draws), and
    the ``(levels, q, q)`` information matrices per term at the chains' last positions (averaged)."""
    half = jax.tree_util.tree_map(lambda a: a[:, a.shape[1] // 2:], positions)  # past the first moves
    flat = jax.tree_util.tree_map(lambda a: a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:]), half)
    sds = jax.vmap(lambda p: constrain(p, data, struct)[0].sd)(flat)
    median_sd = tuple(jnp.median(s, axis=0) for s in sds)

    def row_information(p):
        params = constrain(p, data, struct)[0]

        def total(eta):
            return jnp.sum(struct.family.log_likelihood(data.y, eta, params.aux, data.trials))

        eta = linear_predictor(params.b, params.effects, data.X, data.refs, data.z, data.offset)
        # log p(y | eta) is a sum over rows, so its Hessian is diagonal: H·1 is the diagonal.
        second = jax.jvp(jax.grad(total), (eta,), (jnp.ones_like(eta),))[1]
        return jnp.maximum(-second, 0.0)

    last = jax.tree_util.tree_map(lambda a: a[:, -1], positions)
    weights = jnp.mean(jax.vmap(row_information)(last), axis=0)
    information = tuple(jax.ops.segment_sum(weights[:, None, None] * z[:, :, None] * z[:, None, :], refs,
                                            num_segments=positions[f"z{t}"].shape[-2])
                        for t, (z, refs) in enumerate(zip(data.z, data.refs)))
    return median_sd, information


def decide_centering(positions: dict, data: ModelData, struct: Structure, design: Design
                     ) -> tuple[tuple[bool, ...], tuple[str, ...]]:
    """``(centred per term, reason per term)`` from the draws of a pilot run (see the Notes)."""
    sds, information = jax.device_get(_pilot_statistics(positions, data, struct))
    choice, reasons = [], []
    for g, sd, info, independent in zip(design.groups, sds, information, independent_columns(design)):
        variance = np.diagonal(np.linalg.pinv(np.asarray(info), hermitian=True), axis1=1, axis2=2)
        kappa = float(np.min(np.median(np.asarray(sd) ** 2 * np.where(variance > 0, 1 / np.maximum(variance, 1e-300), 0.0), axis=0)))
        sd_text = ", ".join(f"{s:.3g}" for s in np.atleast_1d(sd))
        what = f"pilot run: sd ≈ {sd_text}, median over levels of sd² × conditional information {kappa:.3g}"
        if not independent:
            choice.append(False)
            reasons.append(f"{what}; non-centred: the term's columns are linearly dependent")
        elif kappa >= CENTER_MIN_KAPPA:
            choice.append(True)
            reasons.append(f"{what} >= {CENTER_MIN_KAPPA:g}: the data pin the effects")
        else:
            choice.append(False)
            reasons.append(f"{what} < {CENTER_MIN_KAPPA:g}: the prior dominates the effects")
    return tuple(choice), tuple(reasons)
