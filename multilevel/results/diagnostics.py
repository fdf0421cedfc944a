"""Convergence diagnostics of Vehtari et al. (2021), vectorised over parameters.

ArviZ computes these with a Python loop per parameter (about 15 ms each), which
takes minutes for models with thousands of group effects. Here the same
estimators run on blocks of parameters at once: arrays are ``(chain, draw, K)``
and every step is a NumPy operation over the K parameters. The definitions
follow ArviZ's ``summary`` exactly, and a test checks agreement with it:

* split chains: the first and last ``⌊N/2⌋`` draws of each chain;
* rank normalisation: ``z = Φ⁻¹((r - 3/8) / (S + 1/4))`` of the average ranks;
* R-hat: the larger of split R-hat on the rank-normalised draws and on the
  rank-normalised folded draws ``|x - median|``;
* ESS: Geyer's initial positive and monotone sequences on the FFT autocovariance;
  bulk on rank-normalised split chains, tail the smaller ESS of the indicators
  ``x <= q₀.₀₅`` and ``x <= q₀.₉₅``;
* ``mcse_mean = sqrt(var / ess_mean)``, ``mcse_sd`` from the ESS of ``(x - x̄)²``.
"""

from __future__ import annotations

import numpy as np
from scipy import fft
from scipy.special import ndtri

#: Parameters processed together (bounds the memory of the FFT).
BLOCK = 1024


def diagnostics(values: np.ndarray) -> dict[str, np.ndarray]:
    """``mcse_mean, mcse_sd, ess_bulk, ess_tail, r_hat`` of ``values`` (chain, draw, K)."""
    values = np.asarray(values, dtype=np.float64)
    num_params = values.shape[2]
    out = {name: np.full(num_params, np.nan) for name in ("mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat")}
    if values.shape[1] < 4:
        return out
    with np.errstate(invalid="ignore", divide="ignore"):
        for start in range(0, num_params, BLOCK):
            block = np.ascontiguousarray(np.moveaxis(values[:, :, start:start + BLOCK], 2, 0))
            for name, result in _block(block).items():
                out[name][start:start + BLOCK] = result
    return out


def ess_mean(values: np.ndarray) -> np.ndarray:
    """The ESS of the mean of each of the K columns of ``values`` (chain, draw, K), on split
    chains without rank normalisation (the ESS behind ``mcse_mean``); NaN below 4 draws."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape[2], np.nan)
    if values.shape[1] < 4:
        return out
    with np.errstate(invalid="ignore", divide="ignore"):
        for start in range(0, values.shape[2], BLOCK):
            out[start:start + BLOCK] = _ess(_split(np.ascontiguousarray(np.moveaxis(values[:, :, start:start + BLOCK],
                                                                                     2, 0))))
    return out


def _block(x: np.ndarray) -> dict[str, np.ndarray]:
    """Diagnostics of a ``(K, chain, draw)`` block (draws contiguous, for speed)."""
    num_params, num_chains = x.shape[:2]
    flat = x.reshape(num_params, -1)
    z_split = _z_scale(_split(x))
    q05, q95 = np.quantile(flat, [0.05, 0.95], axis=1)[..., None, None]
    ess_tail = np.minimum(_ess(_split((x <= q05).astype(float))), _ess(_split((x <= q95).astype(float))))
    if num_chains > 1:
        folded = np.abs(x - np.median(flat, axis=1)[:, None, None])
        r_hat = np.maximum(_rhat(z_split), _rhat(_z_scale(_split(folded))))
    else:
        r_hat = np.full(num_params, np.nan)
    size = flat.shape[1]
    centred2 = (x - flat.mean(axis=1)[:, None, None]) ** 2
    mcse_mean = np.sqrt(centred2.sum(axis=(1, 2)) / (size - 1) / _ess(_split(x)))
    evar = centred2.mean(axis=(1, 2))
    varvar = ((centred2 ** 2).mean(axis=(1, 2)) - evar ** 2) / _ess(_split(centred2))
    return {"mcse_mean": mcse_mean, "mcse_sd": np.sqrt(varvar / evar / 4), "ess_bulk": _ess(z_split),
            "ess_tail": ess_tail, "r_hat": r_hat}


def _split(x: np.ndarray) -> np.ndarray:
    half = x.shape[2] // 2
    return np.concatenate([x[:, :, :half], x[:, :, -half:]], axis=1)


def _z_scale(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(x.shape[0], -1)
    return ndtri((_ranks(flat) - 3 / 8) / (flat.shape[1] + 1 / 4)).reshape(x.shape)


def _ranks(flat: np.ndarray) -> np.ndarray:
    """Ranks along each row, ties averaged (``rankdata(method="average")``): by one
    argsort, then the rows that have ties (a draw repeated when a proposal is
    rejected) by :func:`_average_ranks`."""
    order = np.argsort(flat, axis=1)
    ranks = np.empty(flat.shape)
    np.put_along_axis(ranks, order, np.arange(1.0, flat.shape[1] + 1.0)[None, :], axis=1)
    tied = (np.diff(np.take_along_axis(flat, order, axis=1), axis=1) == 0).any(axis=1)
    if tied.any():
        ranks[tied] = _average_ranks(flat[tied])
    return ranks


def _average_ranks(rows: np.ndarray) -> np.ndarray:
    """Ranks along each row of a 2-D array, each run of equal values given the mean of
    the ranks it spans: positions ``f .. f + l - 1`` (0-based) of a sorted row share
    ``f + (l + 1) / 2``. A row with a NaN is all NaN, as ``rankdata``'s."""
    m, n = rows.shape
    order = np.argsort(rows, axis=1, kind="stable")
    ordered = np.take_along_axis(rows, order, axis=1)
    starts = np.ones((m, n), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    first = np.flatnonzero(starts)
    lengths = np.diff(np.append(first, m * n))
    shared = (first % n + (lengths + 1) / 2)[np.cumsum(starts.ravel()) - 1]
    ranks = np.empty((m, n))
    np.put_along_axis(ranks, order, shared.reshape(m, n), axis=1)
    ranks[np.isnan(rows).any(axis=1)] = np.nan
    return ranks


def _rhat(x: np.ndarray) -> np.ndarray:
    num_draws = x.shape[2]
    between = num_draws * np.var(x.mean(axis=2), axis=1, ddof=1)
    within = np.mean(np.var(x, axis=2, ddof=1), axis=1)
    return np.sqrt((between / within + num_draws - 1) / num_draws)


def _autocov(x: np.ndarray) -> np.ndarray:
    n = x.shape[2]
    centred = x - x.mean(axis=2, keepdims=True)
    spectrum = fft.rfft(centred, n=fft.next_fast_len(2 * n), axis=2, workers=-1)
    return fft.irfft(spectrum * np.conjugate(spectrum), axis=2, workers=-1)[:, :, :n] / n


def _ess(x: np.ndarray) -> np.ndarray:
    """ESS of (K, chain, draw) draws: Geyer's initial monotone sequence estimator."""
    num_params, num_chains, n = x.shape
    acov = _autocov(x)
    mean_var = acov[:, :, 0].mean(axis=1) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if num_chains > 1:
        var_plus = var_plus + np.var(x.mean(axis=2), axis=1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (1.0 - (mean_var[:, None] - acov.mean(axis=1)) / var_plus[:, None]).T  # (n, K)
    rho[0] = 1.0
    cols = np.arange(num_params)

    # Initial positive sequence: pairs P_k = rho[2k] + rho[2k+1]; the sum runs over
    # pairs k = 1..k_end, where k_end is the first non-positive pair (P_0 counted),
    # capped at (n - 3) // 2.
    num_pairs = (n - 1) // 2 + 1
    padded = np.vstack([rho, np.zeros((2 * num_pairs - n + 1, num_params))])
    pairs = padded[0:2 * num_pairs:2] + padded[1:2 * num_pairs:2]
    non_positive = pairs <= 0
    first = np.where(non_positive.any(axis=0), non_positive.argmax(axis=0), num_pairs)
    k_end = np.minimum(first, (n - 3) // 2)
    lags = np.arange(n)[:, None]
    kept = lags <= 2 * k_end + 1
    last_pair_kept = pairs[k_end, cols] >= 0
    kept &= ~((lags >= 2 * k_end) & (k_end > 0) & ~last_pair_kept)
    rho_t = np.where(kept, rho, 0.0)
    even = np.where(k_end > 0, rho[np.minimum(2 * k_end, n - 1), cols], 1.0)
    improve = (even > 0) & (k_end > 0)
    rho_t[np.minimum(2 * k_end, n - 1)[improve], cols[improve]] = even[improve]

    # Initial monotone sequence: pair sums of pairs 1..k_end-1 capped by their running minimum.
    evens, odds = rho_t[0::2], rho_t[1::2]
    m = len(odds)
    sums = evens[:m] + odds
    previous_min = np.minimum.accumulate(sums, axis=0)[np.maximum(np.arange(m) - 1, 0)]
    j = np.arange(m)[:, None]
    capped = (j >= 1) & (j <= k_end - 1) & (sums > previous_min)
    rho_t[0:2 * m:2] = np.where(capped, previous_min / 2.0, evens[:m])
    rho_t[1:2 * m:2] = np.where(capped, previous_min / 2.0, odds)

    max_t = 2 * k_end - 1
    tau = -1.0 + 2.0 * np.where(lags <= max_t, rho_t, 0.0).sum(axis=0) \
        + np.where(max_t + 1 < n, rho_t[np.minimum(max_t + 1, n - 1), cols], 0.0)
    size = num_chains * n
    ess = size / np.maximum(tau, 1.0 / np.log10(size))
    ess = np.where(np.isnan(rho_t).any(axis=0), np.nan, ess)
    constant = (x.max(axis=(1, 2)) - x.min(axis=(1, 2))) < np.finfo(float).resolution
    return np.where(constant, float(size), ess)
