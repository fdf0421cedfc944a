r"""Convergence diagnostics of Vehtari et al. (2021), vectorised over parameters.

ArviZ computes these with a Python loop per parameter (about 15 ms each), which
takes minutes for models with thousands of group effects. Here the same
estimators run on blocks of parameters at once: arrays are ``(K, chain, draw)``
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

Notes
-----
The work is shared between the estimators, and only the columns asked for are
computed. One sort of each parameter's S draws gives its ranks, its median and
its 5% and 95% quantiles (NumPy's linear interpolation between order
statistics). Without ties the ranks are a permutation of ``1..S``, so the normal
scores are one table ``Φ⁻¹((i - 3/8)/(S + 1/4))`` put in sorted order; only the
draws in a run of ties need ``Φ⁻¹`` of their average rank. Sorted by x, the folded
draws ``|x - m|`` are two ascending runs (below the median, reversed, and
above it), which a stable sort merges in linear time. The ESS needs only the
autocovariance averaged over chains, ``ρ̂_t`` from ``(1/M) Σ_m γ̂_{m,t}``; as the
inverse FFT is linear this is one inverse transform of the chain-averaged power
spectrum ``(1/M) Σ_m |F_m|²``, not M of them. Blocks of parameters run on every
core (the results do not depend on how many).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import fft
from scipy.special import ndtri

#: The columns :func:`diagnostics` computes.
COLUMNS = ("mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat")

#: Parameters processed together (bounds the memory of the FFT).
BLOCK = 256


def diagnostics(values: np.ndarray, columns: tuple[str, ...] = COLUMNS) -> dict[str, np.ndarray]:
    """The ``columns`` (of :data:`COLUMNS`) of ``values`` (chain, draw, K), one value per K.

    NaN for every parameter when there are fewer than 4 draws per chain; ``r_hat`` is NaN
    with one chain.
    """
    values = np.asarray(values, dtype=np.float64)
    num_params = values.shape[2]
    out = {name: np.full(num_params, np.nan) for name in columns}
    if values.shape[1] < 4:
        return out

    def one_block(start: int) -> None:
        with np.errstate(invalid="ignore", divide="ignore"):
            block = np.ascontiguousarray(np.moveaxis(values[:, :, start:start + BLOCK], 2, 0))
            for name, result in _block(block, columns).items():
                out[name][start:start + BLOCK] = result

    starts = range(0, num_params, BLOCK)
    if len(starts) == 1:
        one_block(0)
    else:   # NumPy's sorts, FFTs and large ufuncs release the GIL: blocks run on every core
        with ThreadPoolExecutor(max_workers=min(len(starts), os.cpu_count() or 1)) as pool:
            list(pool.map(one_block, starts))
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


def _block(x: np.ndarray, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The ``columns`` of a ``(K, chain, draw)`` block (draws contiguous, for speed)."""
    num_params, num_chains = x.shape[:2]
    flat = x.reshape(num_params, -1)
    size = flat.shape[1]
    split = _split(x)
    out = {}
    if {"ess_bulk", "r_hat", "ess_tail"} & set(columns):
        # ranks over the split chains (a draw fewer per chain when the count is odd)
        rows = split.reshape(num_params, -1)
        places = _flat_order(rows)
        ordered = rows.ravel()[places]
        missing = np.isnan(ordered[:, -1])     # NaN sorts last
    if {"ess_bulk", "r_hat"} & set(columns):
        z = _unsort(_normal_scores(ordered, missing), places).reshape(split.shape)
        if "ess_bulk" in columns:
            out["ess_bulk"] = _ess(z)
        if "r_hat" in columns and num_chains > 1:
            folded = (_unsort(_folded_scores(ordered, missing), places) if size == ordered.shape[1]
                      else _scores(np.abs(split - np.median(flat, axis=1)[:, None, None]).reshape(num_params, -1)))
            out["r_hat"] = np.maximum(_rhat(z), _rhat(folded.reshape(split.shape)))
        elif "r_hat" in columns:
            out["r_hat"] = np.full(num_params, np.nan)
    if "ess_tail" in columns:
        quantiles = (sorted_quantiles(ordered, (0.05, 0.95)) if size == ordered.shape[1]
                     else np.quantile(flat, (0.05, 0.95), axis=1))
        q05, q95 = (q[:, None, None] for q in quantiles)
        out["ess_tail"] = np.minimum(_ess(_split((x <= q05).astype(float))), _ess(_split((x <= q95).astype(float))))
    if {"mcse_mean", "mcse_sd"} & set(columns):
        centred2 = x - flat.mean(axis=1)[:, None, None]
        np.square(centred2, out=centred2)
        if "mcse_mean" in columns:
            out["mcse_mean"] = np.sqrt(centred2.sum(axis=(1, 2)) / (size - 1) / _ess(split))
        if "mcse_sd" in columns:
            evar = centred2.mean(axis=(1, 2))
            varvar = ((centred2 ** 2).mean(axis=(1, 2)) - evar ** 2) / _ess(_split(centred2))
            out["mcse_sd"] = np.sqrt(varvar / evar / 4)
    return out


def _split(x: np.ndarray) -> np.ndarray:
    """``(K, chain, draw)`` as ``(K, 2·chain, ⌊draw/2⌋)``: each chain's halves as two chains
    (a view when the draws are even; the middle draw of an odd count dropped)."""
    k, m, n = x.shape
    half = n // 2
    if n % 2 == 0 and x.flags.c_contiguous:
        return x.reshape(k, 2 * m, half)
    return np.concatenate([x[:, :, :half], x[:, :, n - half:]], axis=2).reshape(k, 2 * m, half)


def sorted_quantiles(ordered: np.ndarray, probs: tuple[float, ...]) -> list[np.ndarray]:
    """``np.quantile(row, p)`` (linear interpolation, NumPy's arithmetic) of each row of
    ``ordered``, rows sorted ascending; NaN for a row with a NaN."""
    n = ordered.shape[1]
    out = []
    for p in probs:
        virtual = (n - 1) * p
        below = min(max(int(np.floor(virtual)), 0), n - 1)
        above = min(below + 1, n - 1)
        gamma = virtual - np.floor(virtual)
        a, b = ordered[:, below], ordered[:, above]
        diff = b - a
        value = b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma
        out.append(np.where(np.isnan(ordered[:, -1]), np.nan, value))
    return out


def _score_table(size: int) -> np.ndarray:
    return ndtri((np.arange(1.0, size + 1.0) - 3 / 8) / (size + 1 / 4))


def _normal_scores(ordered: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """``Φ⁻¹((r - 3/8)/(S + 1/4))`` of the average ranks r, in the sorted order of each row
    of ``ordered``; a row with a NaN is all NaN (as ``rankdata``'s ranks).

    Positions ``f .. f + l - 1`` (0-based) of a run of l equal values share the rank
    ``f + (l + 1) / 2``; every other position i has rank i + 1, whose score is the table's."""
    m, n = ordered.shape
    scores = np.empty((m, n))
    scores[:] = _score_table(n)
    same = np.zeros((m, n), dtype=bool)      # same[i]: the value at i + 1 equals that at i
    np.equal(ordered[:, 1:], ordered[:, :-1], out=same[:, :-1])
    tied = np.flatnonzero(same)              # the last column is False: no run spans two rows
    if tied.size:
        opens = np.ones(tied.size, dtype=bool)
        opens[1:] = np.diff(tied) != 1
        firsts = tied[opens]
        lengths = np.diff(np.append(np.flatnonzero(opens), tied.size)) + 1
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        ranks = firsts % n + (lengths + 1) / 2
        scores.flat[np.repeat(firsts, lengths) + offsets] = np.repeat(ndtri((ranks - 3 / 8) / (n + 1 / 4)), lengths)
    scores[missing] = np.nan
    return scores


def _flat_order(rows: np.ndarray, kind: str | None = None) -> np.ndarray:
    """The positions in ``rows.ravel()`` of each row's values in ascending order (``argsort``
    per row, of that ``kind``, offset by the row's start: flat indices gather and scatter
    faster than ``take_along_axis``)."""
    m, n = rows.shape
    places = np.argsort(rows, axis=1, kind=kind)
    places += np.arange(0, m * n, n)[:, None]
    return places


def _unsort(values: np.ndarray, places: np.ndarray) -> np.ndarray:
    """``values`` given in sorted order (``places`` from :func:`_flat_order`), put back in the
    original order."""
    out = np.empty(values.size)
    out[places] = values
    return out.reshape(values.shape)


def _scores(rows: np.ndarray) -> np.ndarray:
    """The normal scores of each row of ``rows``, in its order."""
    places = _flat_order(rows)
    ordered = rows.ravel()[places]
    return _unsort(_normal_scores(ordered, np.isnan(ordered[:, -1])), places)


def _folded_scores(ordered: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """The normal scores of the folded draws ``|x - median|``, in the sorted order of the
    draws (``ordered``), for an even count of draws per chain (where the split chains hold
    every draw, whose median ArviZ folds around).

    ``np.median`` of the sorted row is the mean of its two middle values; below it
    ``|x - m| = m - x`` exactly, so the folded row, taken in the sorted order with the
    lower half reversed, is two ascending runs, which a stable sort merges."""
    m, n = ordered.shape
    half = n // 2
    median = (ordered[:, half - 1] + ordered[:, half]) / 2
    runs = np.empty((m, n))
    np.subtract(median[:, None], ordered[:, half - 1::-1], out=runs[:, :half])
    np.subtract(ordered[:, half:], median[:, None], out=runs[:, half:])
    places = _flat_order(runs, "stable")
    in_runs = _unsort(_normal_scores(runs.ravel()[places], missing), places)
    in_runs[:, :half] = in_runs[:, half - 1::-1].copy()
    return in_runs


def _rhat(x: np.ndarray) -> np.ndarray:
    num_draws = x.shape[2]
    between = num_draws * np.var(x.mean(axis=2), axis=1, ddof=1)
    within = np.mean(np.var(x, axis=2, ddof=1), axis=1)
    return np.sqrt((between / within + num_draws - 1) / num_draws)


def _mean_autocov(x: np.ndarray, chain_means: np.ndarray) -> np.ndarray:
    """``(1/M) Σ_m γ̂_{m,t}``, t < n, of (K, M, n) draws: each chain's autocovariance (FFT,
    zero-padded to avoid wrap-around), averaged over the chains in the frequency domain."""
    n = x.shape[2]
    length = fft.next_fast_len(2 * n)
    padded = np.zeros(x.shape[:2] + (length,))
    np.subtract(x, chain_means[:, :, None], out=padded[:, :, :n])
    spectrum = fft.rfft(padded, axis=2)
    parts = spectrum.view(np.float64)
    np.square(parts, out=parts)
    summed = parts.sum(axis=1)     # (K, 2F): the real and imaginary parts' squares, interleaved
    power = (summed[:, 0::2] + summed[:, 1::2]) / x.shape[1]
    return fft.irfft(power, n=length, axis=1)[:, :n] / n


def _ess(x: np.ndarray) -> np.ndarray:
    """ESS of (K, chain, draw) draws: Geyer's initial monotone sequence estimator."""
    num_params, num_chains, n = x.shape
    chain_means = x.mean(axis=2)
    acov = _mean_autocov(x, chain_means)
    mean_var = acov[:, 0] * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if num_chains > 1:
        var_plus = var_plus + np.var(chain_means, axis=1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (1.0 - (mean_var[:, None] - acov) / var_plus[:, None]).T  # (n, K)
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
