r"""The design columns of a smooth term, in mgcv's mixed-model form (as brms fits them).

A smooth ``s(x)`` (or ``t2(x, z)``) becomes fixed-effect columns of two kinds: its
unpenalised part, ordinary fixed effects named ``sx_1, sx_2, ...``, and one or more
penalised blocks ``s_sx_1[1..K]`` whose coefficients are iid ``N(0, sds²)`` with one sd per
penalty, ``sds(sx_1)``. The state learned from the fitting data (:class:`SmoothState`:
knots, eigenvectors, constraint and reparameterisation) is kept in the design's encoders,
so new data (``predict``, conditional effects, margins) get the basis of the fitting data.

Notes
-----
``s(x)`` (mgcv's ``smoothCon`` then ``smooth2random``): the raw basis ``X`` (n × k) and
penalty ``S`` of :mod:`multilevel.design.splines`, ``S`` scaled as mgcv does (on every
row, before a ``by`` factor splits them). The
sum-to-zero constraint ``1ᵀ X β = 0`` is absorbed by ``β = Z_c β_c`` with ``Z_c`` the last
k-1 columns of the complete QR factor of ``Xᵀ1``. With ``Z_cᵀ S Z_c = U diag(d) Uᵀ`` (d
descending), the null space ``U_0`` (one eigenvector, the linear trend: the constraint
removed the constant) gives the fixed columns ``X Z_c U_0`` and the range
``U_+`` the penalised columns ``X Z_c U_+ diag(d_+)^{-1/2}``, so that the penalty
``λ βᵀSβ`` is ``Σ u_j² / sds²`` with ``sds² = 1/λ``.

``t2(x, z)`` (the structure of mgcv's ``t2``; its margins' normalisation may differ):
each margin's basis is split by its own penalty into a range part
``R = X U_+ diag(d_+)^{-1/2}`` and a null part ``N = X U_0``; the row-wise tensor
products ``R⊗R``, ``R⊗N``, ``N⊗R`` are three penalised blocks (an identity penalty, one
sd each) and ``N⊗N`` the unpenalised part. Every column is centred at its mean over
the fitting data and the constant direction of ``N⊗N`` is dropped (the model's intercept
carries it), which is the sum-to-zero constraint.

``s(x, by = f)``: one such smooth per level of ``f``, its constraint and centring over
that level's rows, its columns zero on the other rows (mgcv's factor ``by``; the
formula needs ``f`` itself for the level means).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError
from ..formula.spec import Smooth
from .columns import column, is_numeric, level_labels, sorted_levels
from .splines import Margin, fit_margin, raw_basis, scale_penalty

#: mgcv's default basis dimension of ``s()`` and of each margin of ``t2()``.
DEFAULT_K = {"s": 10, "t2": 5}


@dataclass(frozen=True, eq=False)
class SmoothState:
    """What a smooth term learned from the fitting data.

    ``margins``: the one-dimensional bases (one for ``s``, one per variable for ``t2``);
    ``levels``: the levels of the ``by`` factor ("" alone without one); per level,
    ``maps[l]`` takes the raw basis (the row-wise tensor product of the margins' bases) to
    the term's columns, from which ``means[l]`` is subtracted; ``fixed`` columns come first,
    then the penalised blocks of ``blocks`` columns each.
    """

    margins: tuple[Margin, ...]
    levels: tuple[str, ...]
    maps: tuple[np.ndarray, ...]
    means: tuple[np.ndarray, ...]
    fixed: int
    blocks: tuple[int, ...]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SmoothState) and self.to_dict() == other.to_dict()

    __hash__ = None

    def to_dict(self) -> dict:
        return {"margins": [m.to_dict() for m in self.margins], "levels": list(self.levels),
                "maps": [m.tolist() for m in self.maps], "means": [m.tolist() for m in self.means],
                "fixed": self.fixed, "blocks": list(self.blocks)}

    @classmethod
    def from_dict(cls, data: dict) -> "SmoothState":
        return cls(tuple(Margin.from_dict(m) for m in data["margins"]), tuple(data["levels"]),
                   tuple(np.asarray(m, dtype=float).reshape(len(m), -1) for m in data["maps"]),
                   tuple(np.asarray(m, dtype=float) for m in data["means"]), int(data["fixed"]),
                   tuple(int(b) for b in data["blocks"]))


@dataclass(frozen=True)
class SmoothColumns:
    """The names of a smooth's columns: its fixed columns, and per penalised block the name
    of its sd and of its columns, in the order of the design."""

    fixed: tuple[str, ...]
    penalised: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return self.fixed + tuple(n for _, cols in self.penalised for n in cols)


def smooth_names(term: Smooth, state: SmoothState) -> SmoothColumns:
    """brms's names: ``sx_1`` (fixed), ``s_sx_1[1]`` (penalised), ``sds(sx_1)`` (sd); with
    ``by = f`` the label carries the level, ``sx:fA_1``."""
    fixed, penalised = [], []
    for level in state.levels:
        label = f"{term.label}:{term.by}{level}" if term.by else term.label
        fixed += [f"{label}_{j + 1}" for j in range(state.fixed)]
        for b, size in enumerate(state.blocks):
            penalised.append((f"sds({label}_{b + 1})", tuple(f"s_{label}_{b + 1}[{i + 1}]" for i in range(size))))
    return SmoothColumns(tuple(fixed), tuple(penalised))


def _numeric(data: pd.DataFrame, term: Smooth, name: str) -> np.ndarray:
    series = column(data, name)
    if not is_numeric(series):
        raise FormulaError(f"{term} smooths column {name!r}, which is categorical; a smooth needs a numeric "
                           f"column (for a smooth per level of a factor write s(x, by = {name}))")
    return series.to_numpy(dtype=np.float64)


def _raw(margins: tuple[Margin, ...], xs: list[np.ndarray]) -> np.ndarray:
    """The row-wise tensor product of the margins' bases (the basis itself for one margin)."""
    out = raw_basis(margins[0], xs[0])
    for margin, x in zip(margins[1:], xs[1:]):
        basis = raw_basis(margin, x)
        out = (out[:, :, None] * basis[:, None, :]).reshape(len(x), -1)
    return out


def _split(S: np.ndarray, null: int) -> tuple[np.ndarray, np.ndarray]:
    """``(U_+ diag(d_+)^{-1/2}, U_0)`` of a penalty with a null space of dimension ``null``."""
    d, U = np.linalg.eigh(S)
    d, U = d[::-1], U[:, ::-1]
    rank = S.shape[0] - null
    U = U * np.where(U[np.argmax(np.abs(U), axis=0), np.arange(U.shape[1])] < 0, -1.0, 1.0)
    return U[:, :rank] / np.sqrt(d[:rank]), U[:, rank:]


def _s_map(X: np.ndarray, S: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, tuple[int, ...]]:
    """mgcv's constraint and random-effects form of a one-margin smooth on the rows of X."""
    Q, _ = np.linalg.qr(X.sum(axis=0)[:, None], mode="complete")
    Zc = Q[:, 1:]
    ranged, null = _split(Zc.T @ S @ Zc, 1)
    W = Zc @ np.hstack([null, ranged])
    return W, np.zeros(W.shape[1]), null.shape[1], (ranged.shape[1],)


def _t2_map(margins_X: list[np.ndarray], penalties: list[np.ndarray]):
    """mgcv's t2 form on the rows of the margins' bases (see the module notes)."""
    parts = []
    for X, S in zip(margins_X, penalties):
        ranged, null = _split(scale_penalty(X, S), 2)
        parts.append({"R": ranged, "N": null})
    blocks = []
    for kinds in product("RN", repeat=len(parts)):
        W = parts[0][kinds[0]]
        for part, kind in zip(parts[1:], kinds[1:]):
            W = np.kron(W, part[kind])
        blocks.append((kinds, W))
    raw = margins_X[0]
    for X in margins_X[1:]:
        raw = (raw[:, :, None] * X[:, None, :]).reshape(len(raw), -1)
    null_kinds = ("N",) * len(parts)
    W_null = dict(blocks)[null_kinds]
    centred = raw @ W_null - (raw @ W_null).mean(axis=0)
    _, _, Vt = np.linalg.svd(centred, full_matrices=False)
    W_null = W_null @ Vt[:-1].T
    penalised = [W for kinds, W in blocks if kinds != null_kinds]
    W = np.hstack([W_null] + penalised)
    return W, (raw @ W).mean(axis=0), W_null.shape[1], tuple(p.shape[1] for p in penalised)


def fit_smooth(term: Smooth, data: pd.DataFrame) -> SmoothState:
    """Learn the basis of ``term`` from the fitting data.

    Raises
    ------
    FormulaError
        When a smoothed column is categorical, or ``by`` names a numeric column.
    DataError
        When a column has fewer distinct values than the basis dimension needs.
    """
    xs = [_numeric(data, term, name) for name in term.variables]
    k = term.k or DEFAULT_K[term.func]
    bs = term.bs or ("tp" if term.func == "s" else "cr")
    margins, penalties = [], []
    for name, x in zip(term.variables, xs):
        distinct = len(np.unique(x))
        if distinct < k:
            raise DataError(f"{term}: column {name!r} has {distinct} distinct values, fewer than the basis "
                            f"dimension k = {k}; lower k (as in {term.func}({name}, k = {max(3, distinct)})) or "
                            "use the column as a linear or categorical predictor")
        margin, S = fit_margin(x, bs, k)
        margins.append(margin)
        penalties.append(S)
    raw_all = [raw_basis(m, x) for m, x in zip(margins, xs)]
    rows = {"": np.ones(len(data), dtype=bool)}
    if term.by:
        by = column(data, term.by)
        if is_numeric(by):
            raise FormulaError(f"{term}: by = {term.by} must be a factor (strings or a Categorical), but it is "
                               "numeric; convert it, as in df[col].astype(str)")
        labels = level_labels(by)
        rows = {level: (labels == level).to_numpy() for level in sorted_levels(by)}
        for level, mask in rows.items():
            for name, x in zip(term.variables, xs):
                if len(np.unique(x[mask])) < k:
                    raise DataError(f"{term}: at level {level!r} of {term.by}, column {name!r} has "
                                    f"{len(np.unique(x[mask]))} distinct values, fewer than the basis dimension "
                                    f"k = {k}; lower k or drop that level's rows")
    maps, means = [], []
    for level, mask in rows.items():
        if term.func == "s":     # mgcv scales the penalty on all rows, before a by factor splits them
            W, mean, fixed, blocks = _s_map(raw_all[0][mask], scale_penalty(raw_all[0], penalties[0]))
        else:
            W, mean, fixed, blocks = _t2_map([X[mask] for X in raw_all], penalties)
        maps.append(W)
        means.append(mean)
    return SmoothState(tuple(margins), tuple(rows), tuple(maps), tuple(means), fixed, blocks)


def smooth_columns(term: Smooth, state: SmoothState, data: pd.DataFrame) -> np.ndarray:
    """The columns of ``term`` on ``data`` with the fitting data's basis: fixed, then penalised."""
    raw = _raw(state.margins, [_numeric(data, term, name) for name in term.variables])
    if not term.by:
        return raw @ state.maps[0] - state.means[0]
    labels = level_labels(column(data, term.by)).to_numpy()
    unseen = sorted(set(labels) - set(state.levels))
    if unseen:
        raise DataError(f"{term}: {term.by} has levels never seen in fitting: {', '.join(map(repr, unseen[:10]))}")
    blocks = []
    for level, W, mean in zip(state.levels, state.maps, state.means):
        blocks.append((raw @ W - mean) * (labels == level)[:, None])
    fixed = np.hstack([b[:, :state.fixed] for b in blocks])
    penalised = [b[:, state.fixed + start:state.fixed + start + size] for b in blocks
                 for start, size in zip(np.cumsum((0,) + state.blocks[:-1]), state.blocks)]
    return np.hstack([fixed] + penalised)


def penalised_blocks(spec, encoders) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Every penalised block of a model's smooths: ``(sds name, column names)``, the mean's
    smooths first, then each predicted parameter's (``sds(sigma_sx_1)`` and ``sigma_s_sx_1[1]``
    for ``sigma ~ s(x)``, as brms names them)."""
    out = []
    for prefix, terms in [("", spec.fixed)] + [(f"{d.name}_", d.fixed) for d in spec.dpars]:
        for term in terms.terms:
            if isinstance(term[0], Smooth):
                for sds, names in smooth_names(term[0], encoders.smooths[str(term[0])]).penalised:
                    out.append((f"sds({prefix}{sds[4:]}", tuple(prefix + n for n in names)))
    return tuple(out)
