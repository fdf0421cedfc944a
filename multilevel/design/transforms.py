r"""R's stateful basis transforms: ``poly``, ``ns`` and ``bs``, with the state that
``predict`` reuses.

Each transform turns one numeric variable into a few columns, named as R names
them (``poly(x, 2)1``, ``poly(x, 2)2``, ``ns(x, df = 3)1`` ...). What it learns from the
fitting data (:func:`learn_basis`) is kept in the design's encoders and reapplied
unchanged to new data (:func:`apply_basis`), as R's ``predict`` does through
``makepredictcall``: new data never move the knots or the polynomials.

Notes
-----
``poly(x, degree)`` (``stats::poly``) holds the orthogonal polynomials of the fitting
values ``x_1..x_n``. R computes them by a QR decomposition of the centred powers and
keeps its ``coefs``: ``alpha`` and ``norm2``, with which the polynomials obey the
three-term recurrence (Kennedy & Gentle 1980)

.. math::
   p_{-1} = 0,\; p_0 = 1,\quad
   p_{j+1}(x) = (x - α_{j+1})\, p_j(x) - \frac{ν_{j+2}}{ν_{j+1}}\, p_{j-1}(x),
   \qquad \text{column } j = p_j / \sqrt{ν_{j+2}},

``ν = norm2 = (1, n, ‖p_1‖², ..., ‖p_d‖²)`` and ``α_{j+1} = Σ x p_j² / ‖p_j‖²``. On the
fitting data the columns are orthonormal and orthogonal to the constant. Here ``alpha``
and ``norm2`` are learned by R's QR algorithm and every evaluation, fitting data
included, uses the recurrence (the two agree to rounding), so the fitted columns
and those of ``predict`` on the same rows are identical. ``raw = TRUE`` gives the
powers ``x, x², ..., x^d`` and learns nothing.

``bs(x, df, knots, degree = 3, intercept = FALSE, Boundary.knots)`` (``splines::bs``) is
the B-spline basis of the given degree with the boundary knots (default the range of
x) repeated ``degree + 1`` times and the interior knots (default ``df - degree -
intercept`` of them at quantiles of x, R's type 7, spaced evenly in probability);
without an intercept the first B-spline is dropped. Beyond the boundary knots R
extends each basis function by its Taylor polynomial at a point inside the first (last)
polynomial piece, which is that piece continued: so is it here
(:class:`scipy.interpolate.BSpline` extrapolating its end pieces).

``ns(x, df, knots, intercept = FALSE, Boundary.knots)`` (``splines::ns``) is R's natural
cubic spline basis: the cubic B-splines ``B`` (``df - 1 - intercept`` interior knots at
quantiles), less the first without an intercept, times the last columns of the
orthogonal factor ``Q`` of the QR decomposition of ``Cᵀ``, ``C`` the second derivatives
of those B-splines at the two boundary knots: ``N = B Q[:, 2:]``. Every column then has
zero second derivative at both boundary knots, and the columns span the natural
cubic splines with those knots (vanishing at the left boundary knot, without an
intercept). Beyond the boundary knots R continues each column linearly, with its value
and slope at the knot: so is it here. LAPACK's Householder QR (NumPy) and R's LINPACK
one build the same reflectors, so the basis, not only its span, is R's.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DataError
from ..formula.signatures import basis_arguments
from ..formula.spec import Call

if TYPE_CHECKING:
    from scipy.interpolate import BSpline

#: The basis transforms, by R's name.
BASES = ("poly", "ns", "bs")

#: What a basis learned from the fitting data: named tuples of floats (JSON-ready).
BasisState = dict[str, tuple[float, ...]]


def learn_basis(call: Call, x: np.ndarray) -> BasisState:
    """What ``call`` (``poly``, ``ns`` or ``bs``) learns from the fitting values ``x``.

    Raises
    ------
    DataError
        For a degree the data cannot carry, or knots outside the boundary knots.
    """
    args = basis_arguments(call)
    if call.func == "poly":
        degree = _whole(args.get("degree", 1.0), "degree", call)
        if args.get("raw", False):
            return {}
        unique = len(np.unique(x))
        if degree >= unique:
            raise DataError(f"{call}: the degree ({degree}) must be less than the number of distinct values of "
                            f"{call.args[0]} ({unique}); lower the degree")
        return _poly_coefs(x, degree)
    return _spline_knots(call, args, x)


def apply_basis(call: Call, state: BasisState, x: np.ndarray) -> np.ndarray:
    """The columns of ``call`` at ``x`` (an ``n × k`` matrix), with the fitting ``state``."""
    args = basis_arguments(call)
    if call.func == "poly":
        degree = _whole(args.get("degree", 1.0), "degree", call)
        if args.get("raw", False):
            return x[:, None] ** np.arange(1, degree + 1)
        return _poly_columns(x, np.asarray(state["alpha"]), np.asarray(state["norm2"]))
    knots, boundary = np.asarray(state["knots"]), tuple(state["boundary"])
    intercept = bool(args.get("intercept", False))
    if call.func == "bs":
        return _bs(x, knots, boundary, _whole(args.get("degree", 3.0), "degree", call), intercept)
    return _ns(x, knots, boundary, intercept)


def _whole(value, name: str, call: Call) -> int:
    if isinstance(value, bool) or not isinstance(value, float) or value != int(value) or value < 1:
        raise DataError(f"{call}: {name} must be a whole number >= 1, got {value}")
    return int(value)


def polynomial_contrasts(num_levels: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """R's ``contr.poly(k)``: the ``k × (k - 1)`` orthonormal polynomials of the scores
    ``1..k`` (``poly(1:k, k - 1)``), and R's column suffixes ``.L``, ``.Q``, ``.C``,
    ``^4``, ``^5``, ... (linear, quadratic, cubic, higher powers)."""
    scores = np.arange(1.0, num_levels + 1.0)
    state = _poly_coefs(scores, num_levels - 1)
    columns = _poly_columns(scores, np.asarray(state["alpha"]), np.asarray(state["norm2"]))
    suffixes = (".L", ".Q", ".C") + tuple(f"^{d}" for d in range(4, num_levels))
    return columns, suffixes[:num_levels - 1]


def _poly_coefs(x: np.ndarray, degree: int) -> BasisState:
    """R's ``coefs`` of ``poly(x, degree)``: ``alpha`` (degree) and ``norm2`` (degree + 2)."""
    mean = float(np.mean(x))
    centred = x - mean
    Q, R = np.linalg.qr(centred[:, None] ** np.arange(degree + 1))
    Z = Q * np.diag(R)
    norm2 = np.sum(Z * Z, axis=0)
    alpha = (np.sum(centred[:, None] * Z * Z, axis=0) / norm2 + mean)[:degree]
    return {"alpha": tuple(map(float, alpha)), "norm2": (1.0, *map(float, norm2))}


def _poly_columns(x: np.ndarray, alpha: np.ndarray, norm2: np.ndarray) -> np.ndarray:
    """The three-term recurrence of the module notes: columns ``p_1..p_d`` normalised."""
    degree = len(alpha)
    Z = np.ones((len(x), degree + 1))
    Z[:, 1] = x - alpha[0]
    for i in range(1, degree):
        Z[:, i + 1] = (x - alpha[i]) * Z[:, i] - (norm2[i + 1] / norm2[i]) * Z[:, i - 1]
    return Z[:, 1:] / np.sqrt(norm2[2:])


def _spline_knots(call: Call, args: dict, x: np.ndarray) -> BasisState:
    """The interior and boundary knots of ``ns``/``bs`` from the fitting values, as R places them."""
    degree = 3 if call.func == "ns" else _whole(args.get("degree", 3.0), "degree", call)
    intercept = bool(args.get("intercept", False))
    given = args.get("Boundary.knots")
    if given is not None and (not isinstance(given, tuple) or len(given) != 2):
        raise DataError(f"{call}: Boundary.knots takes two numbers, as in Boundary.knots = c(0, 10)")
    boundary = tuple(sorted(given)) if given is not None else (float(np.min(x)), float(np.max(x)))
    inside = (x >= boundary[0]) & (x <= boundary[1])
    if "knots" in args:
        knots = args["knots"]
        knots = np.sort(np.atleast_1d(np.asarray(knots, dtype=float)))
    elif "df" in args:
        df = _whole(args["df"], "df", call)
        count = df - 1 - intercept if call.func == "ns" else df - (degree + 1) + (1 - intercept)
        if count < 0:
            warnings.warn(f"{call}: df was too small; used {df - count}", stacklevel=4)
            count = 0
        probs = np.linspace(0.0, 1.0, count + 2)[1:-1]
        knots = np.quantile(x[inside], probs) if count else np.zeros(0)
    else:
        knots = np.zeros(0)
    if np.any((knots <= boundary[0]) | (knots >= boundary[1])):
        raise DataError(f"{call}: the interior knots ({', '.join(f'{k:g}' for k in knots)}) must lie strictly "
                        f"between the boundary knots ({boundary[0]:g}, {boundary[1]:g})")
    return {"knots": tuple(map(float, knots)), "boundary": tuple(map(float, boundary))}


def _bspline(knots: np.ndarray, boundary: tuple, degree: int, extrapolate: bool) -> BSpline:
    """Every B-spline of the knot sequence at once: a vector-valued spline with identity coefficients."""
    from scipy.interpolate import BSpline   # scipy.interpolate costs 0.2 s to import: only where used

    order = degree + 1
    t = np.concatenate([[boundary[0]] * order, knots, [boundary[1]] * order])
    return BSpline(t, np.eye(len(t) - order), degree, extrapolate=extrapolate)


def _bs(x: np.ndarray, knots: np.ndarray, boundary: tuple, degree: int, intercept: bool) -> np.ndarray:
    basis = _bspline(knots, boundary, degree, extrapolate=True)(x)
    return basis if intercept else basis[:, 1:]


def _ns(x: np.ndarray, knots: np.ndarray, boundary: tuple, intercept: bool) -> np.ndarray:
    spline = _bspline(knots, boundary, 3, extrapolate=False)
    a, b = boundary
    inside = (x >= a) & (x <= b)
    basis = np.zeros((len(x), spline.c.shape[1]))
    basis[inside] = spline(x[inside])
    slope = spline.derivative(1)
    for edge, rows in ((a, x < a), (b, x > b)):
        if rows.any():
            basis[rows] = spline(edge)[None, :] + (x[rows] - edge)[:, None] * slope(edge)[None, :]
    const = spline.derivative(2)(np.array([a, b]))
    if not intercept:
        basis, const = basis[:, 1:], const[:, 1:]
    Q, _ = np.linalg.qr(const.T, mode="complete")
    return basis @ Q[:, 2:]
