r"""How each row's Gaussian error enters the exact samplers: precision weights.

A Gaussian-marginal model's working response ``z_i = η_i + e_i`` (y itself, or log y
for the lognormal), with row weights ``w_i`` (``weights(w)``; 1 without) and known
standard errors ``s_i`` (``se(s)``), has the log-likelihood

.. math::
   \sum_i w_i \log N(z_i \mid η_i, σ_i)
   = -\tfrac12 \Big[\sum_i w_i \log 2π + \sum_i w_i \log σ_i^2
                    + \sum_i w_i (z_i - η_i)^2 / σ_i^2\Big],

with ``σ_i = σ`` (the parameter) or ``σ_i = s_i`` (``se()`` without sigma: no
parameter, ``σ ≡ 1`` below). Both are the algebra of an unweighted model,
exactly, with

* precision weights ``λ_i = w_i`` (or ``w_i / s_i²``) in every sum over rows:
  ``XᵀΛX``, ``XᵀΛz``, ``zᵀΛz`` and each level's ``G``, ``D``, ``c``
  (:func:`~multilevel.design.suffstats.sufficient_statistics` with ``weights=λ``);
* the count ``n_w = Σ w_i`` in place of the number of rows, as the power of ``σ²``
  and of ``2π``;
* the constant ``Σ w_i log s_i²`` (:attr:`RowNoise.log_det`) added to the deviance.

No ``Σ log w_i`` term appears: a weight multiplies a row's log-likelihood (brms's
``weights``; integer weights are repeated rows), it does not divide its variance.
``se(s, sigma = TRUE)`` has no such form (the variance ``σ² + s_i²`` is not ``σ²``
times a known factor): the exact samplers leave it to NUTS.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..design import Design
from .layout import SE_KNOWN, Layout


class RowNoise(NamedTuple):
    """The rows' share of a Gaussian model's error, for the exact samplers (module notes).

    ``precision`` is None when every row has precision ``1/σ²`` (no weights, no se).
    """

    precision: np.ndarray | None
    count: float
    known_sd: bool
    log_det: float


def row_noise(design: Design, layout: Layout) -> RowNoise:
    """The :class:`RowNoise` of a design's rows under the layout's use of ``se()``."""
    weights = design.weights
    count = float(design.num_rows if weights is None else np.sum(weights))
    if layout.se != SE_KNOWN:
        return RowNoise(weights, count, False, 0.0)
    variance = np.asarray(design.se, dtype=float) ** 2
    w = np.ones_like(variance) if weights is None else np.asarray(weights, dtype=float)
    return RowNoise(w / variance, count, True, float(np.sum(w * np.log(variance))))
