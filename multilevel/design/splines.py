r"""One-dimensional penalised spline bases as mgcv builds them: the thin plate regression
spline (``bs = "tp"``, mgcv's default) and the cubic regression spline (``bs = "cr"``).

Each is a :class:`Margin`, the state learned from the fitting data (knots and, for
``tp``, the truncated eigenvectors), from which :func:`raw_basis` evaluates the ``n × k``
basis at any x, and whose penalty matrix :func:`fit_margin` returns.

Notes
-----
Thin plate regression spline (Wood 2003; mgcv's ``smooth.construct.tp.smooth.spec``,
``m = 2`` in one dimension). With knots ``κ`` (the distinct x of the fitting data, at most
:data:`MAX_KNOTS` of them evenly spread), ``E_ij = η(|κ_i - κ_j|)``, ``η(r) = r³/12``, and the
null space ``T = [1, κ]``. Of ``E = U D Uᵀ`` the k eigenpairs of largest ``|D|`` are kept
(``U_k``, ``D_k``); ``Z`` (``k × (k-2)``) spans the δ with ``Tᵀ U_k δ = 0``. The basis at x
is ``[η(|x - κ|) U_k Z, 1, x]`` and the penalty ``blockdiag(Zᵀ D_k Z, 0₂)``; at the knots
``η(|κ - κ|) U_k = U_k D_k``, mgcv's fitting basis, so the basis at new x continues the
fitting one.

Cubic regression spline (mgcv's ``cr``): k knots at evenly spaced quantiles of the distinct
x (mgcv's ``place.knots``); the basis functions are the natural cubic splines through
the k unit vectors (:class:`scipy.interpolate.CubicSpline`, ``bc_type="natural"``),
linear beyond the end knots, and the penalty ``S_ij = ∫ b_i''(x) b_j''(x) dx``, exact from
the piecewise-linear second derivatives:
``∫_h (a_i + (b_i - a_i)t)(a_j + (b_j - a_j)t) = h (2a_ia_j + a_ib_j + b_ia_j + 2b_ib_j)/6``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: At most this many distinct x are the knots of a thin plate spline (mgcv's ``max.knots``).
MAX_KNOTS = 2000
#: Above this many knots the k eigenpairs come from Lanczos iterations, not a full decomposition.
LANCZOS_ABOVE = 200


@dataclass(frozen=True)
class Margin:
    """A one-dimensional basis learned from the fitting data: ``bs`` ("tp" or "cr"), its
    ``knots`` and, for ``tp``, ``features`` (``U_k Z``: knots × (k-2))."""

    bs: str
    knots: np.ndarray
    features: np.ndarray | None = None

    @property
    def k(self) -> int:
        return len(self.knots) if self.features is None else self.features.shape[1] + 2

    def to_dict(self) -> dict:
        return {"bs": self.bs, "knots": self.knots.tolist(),
                "features": None if self.features is None else self.features.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> "Margin":
        features = data["features"]
        return cls(data["bs"], np.asarray(data["knots"], dtype=float),
                   None if features is None else np.asarray(features, dtype=float))


def _eta(r: np.ndarray) -> np.ndarray:
    """The thin plate radial function of ``m = 2`` in one dimension."""
    return np.abs(r) ** 3 / 12.0


def _spread(values: np.ndarray, count: int) -> np.ndarray:
    """``count`` values interpolated evenly through the sorted ``values`` (mgcv's ``place.knots``)."""
    positions = np.linspace(0.0, len(values) - 1.0, count)
    return np.interp(positions, np.arange(len(values)), values)


def fit_margin(x: np.ndarray, bs: str, k: int) -> tuple[Margin, np.ndarray]:
    """The basis ``bs`` of dimension ``k`` on the distinct values of ``x``, and its ``k × k``
    penalty (unscaled). The caller checks that x has at least k distinct values."""
    unique = np.unique(x)
    if bs == "cr":
        knots = _spread(unique, k)
        return Margin("cr", knots), _cr_penalty(knots)
    knots = unique if len(unique) <= MAX_KNOTS else _spread(unique, MAX_KNOTS)
    E = _eta(knots[:, None] - knots[None, :])
    if len(knots) > LANCZOS_ABOVE:     # the k extreme eigenpairs alone, by Lanczos (as mgcv)
        from scipy.sparse.linalg import eigsh

        values, vectors = eigsh(E, k, which="LM", v0=np.ones(len(knots)))
    else:
        values, vectors = np.linalg.eigh(E)
    order = np.argsort(-np.abs(values), kind="stable")[:k]
    D, U = values[order], vectors[:, order]
    U = U * np.where(U[np.argmax(np.abs(U), axis=0), np.arange(k)] < 0, -1.0, 1.0)
    T = np.column_stack([np.ones_like(knots), knots])
    Q, _ = np.linalg.qr(U.T @ T, mode="complete")
    Z = Q[:, 2:]
    penalty = np.zeros((k, k))
    penalty[:k - 2, :k - 2] = Z.T @ (D[:, None] * Z)
    return Margin("tp", knots, U @ Z), penalty


def raw_basis(margin: Margin, x: np.ndarray) -> np.ndarray:
    """The ``n × k`` basis of ``margin`` at ``x``."""
    x = np.asarray(x, dtype=float)
    if margin.bs == "tp":
        radial = _eta(x[:, None] - margin.knots[None, :]) @ margin.features
        return np.column_stack([radial, np.ones_like(x), x])
    from scipy.interpolate import CubicSpline   # 0.2 s to import: only where used

    knots = margin.knots
    spline = CubicSpline(knots, np.eye(len(knots)), bc_type="natural")
    inside = np.clip(x, knots[0], knots[-1])
    basis = spline(inside)
    slope = spline.derivative(1)
    below, above = x < knots[0], x > knots[-1]
    if below.any():
        basis[below] += (x[below] - knots[0])[:, None] * slope(knots[0])[None, :]
    if above.any():
        basis[above] += (x[above] - knots[-1])[:, None] * slope(knots[-1])[None, :]
    return basis


def _cr_penalty(knots: np.ndarray) -> np.ndarray:
    """``∫ b_i'' b_j''`` of the natural cubic cardinal splines on ``knots``."""
    from scipy.interpolate import CubicSpline

    second = CubicSpline(knots, np.eye(len(knots)), bc_type="natural").derivative(2)(knots)
    h = np.diff(knots)
    a, b = second[:-1], second[1:]
    return (np.einsum("l,li,lj->ij", h, 2 * a, a) + np.einsum("l,li,lj->ij", h, a, b)
            + np.einsum("l,li,lj->ij", h, b, a) + np.einsum("l,li,lj->ij", h, 2 * b, b)) / 6.0


def scale_penalty(X: np.ndarray, S: np.ndarray) -> np.ndarray:
    """mgcv's penalty scaling (``smoothCon(scale.penalty = TRUE)``): ``S`` divided by
    ``‖S‖₁ / ‖X‖∞²``, so that the smoothing parameter is on the scale of the data."""
    norm_x = np.max(np.sum(np.abs(X), axis=1)) ** 2
    norm_s = np.max(np.sum(np.abs(S), axis=0))
    return S * (norm_x / norm_s) if norm_s > 0 else S
