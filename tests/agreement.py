"""Statistical assertions shared by the tests, each with its false-alarm rate.

A fixed seed does not fix the draws: floating point differs between CPUs, BLAS
builds and JAX versions, and a sampler's trajectories amplify the difference, so
another machine sees other draws. Every threshold below is therefore set from the
chance that a *correct* sampler fails it (its false-alarm rate), never from what
one run happened to give.

Family-wise rate
----------------
``FALSE_ALARM = 1e-3`` is the chance that a correct sampler fails one call of an
assertion below, over everything that call checks (or, where a module splits one
comparison into several tests, over the whole module: pass ``count``). It is split
evenly (Bonferroni) over the ``m`` quantities checked; the quantities are
positively correlated (same chains), so the true family-wise rate is lower still.

z-scores
--------
A difference of Monte Carlo estimates divided by its estimated standard error
(MCSE, from the estimated ESS) is not exactly standard normal: the MCSE is itself
an estimate, with a relative error of ~10% at a few hundred effective draws, so the
tails are heavier. Measured on 200,000 replicates of four AR(1) chains of 1000 draws
(bulk ESS ~450): one fit against the exact value, P(|z| > 4) = 1.1e-4 for means and
3.6e-4 for sds (normal: 6.3e-5); two fits against each other, 6.5e-5 and 7.0e-5.
The bounds below use Student-t tails, with ``T_DOF_EXACT = 30`` degrees of freedom
for one fit against an exact value (P(|t| > 4) = 3.8e-4, above every measured rate)
and ``T_DOF_TWO_FITS = 60`` for two fits (pooling two MCSEs halves their relative
variance; P(|t| > 4) = 1.8e-4). Real posteriors are skewed, so the margin is kept.

R-hat
-----
For a correct sampler, split R-hat over ``M = 2 × chains`` half-chains with ``ESS / M``
effective draws each is approximately ``1 + M χ²(M-1) / (2 (M-1) ESS)`` (the
between-chain variance of the half-chain means, relative to the within-chain
variance). ArviZ's ``r_hat`` is the larger of that on the rank-normalised draws and
on the folded draws, so each is allowed half the rate. Measured on AR(1) chains
(4 × 1000 draws, bulk ESS ~450, 20,000 replicates): 0.99 and 0.999 quantiles 1.023
and 1.031; this formula gives 1.026 and 1.033. A correct sampler at a few hundred
effective draws therefore routinely reaches R-hat 1.01 (29% of the time at ESS 450);
the limit applied to each parameter is the bound at its own bulk ESS, never below
the customary 1.01, with a floor on the bulk ESS asserted alongside (a sampler stuck
in different places per chain has both a large R-hat and a tiny ESS). A parameter's
R-hat and its estimated ESS move together (a chance excess of between-chain variance
lowers both), so the bound at the parameter's own ESS is conservative: measured on the
AR(1) chains above, a nominal rate of 1e-3 per parameter is 2.5e-5 in fact.

ESS floors
----------
A bulk ESS floor is a property of the sampler's efficiency, not a Monte Carlo
tolerance, but its estimate is noisy too: on the AR(1) chains above (true ESS
~450) the estimate's 5%-95% range was 353-533, a relative sd of ~12%. Each floor
in the tests is therefore set at about half the smallest ESS observed over the
parameters of that fit (each test states it), i.e. > 4 such sds below.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

import multilevel as ml

#: Chance that a correct sampler fails one call of an assertion, over all it checks.
FALSE_ALARM = 1e-3
#: Student-t degrees of freedom for the tails of a z-score (see the module docstring).
T_DOF_EXACT, T_DOF_TWO_FITS = 30, 60
#: R-hat limits are never below this (Vehtari et al. 2021).
RHAT_FLOOR = 1.01


def z_limit(count: int, two_fits: bool, false_alarm: float = FALSE_ALARM) -> float:
    """The |z| that a correct sampler exceeds on any of ``count`` z-scores with
    probability ``false_alarm`` (two-sided, Bonferroni).

    Examples at ``FALSE_ALARM``: one exact comparison 3.65, nine 4.44; two fits,
    12 quantities 4.22, 42 quantities 4.58, 500 quantities 5.26.
    """
    return float(stats.t.isf(false_alarm / (2 * count), T_DOF_TWO_FITS if two_fits else T_DOF_EXACT))


def rhat_limit(ess_bulk, chains: int, count: int = 1, false_alarm: float = FALSE_ALARM) -> np.ndarray:
    """Per parameter, the R-hat that a correct sampler with this bulk ESS exceeds on any
    of ``count`` parameters with probability ``false_alarm``, but at least 1.01.

    Examples at ``FALSE_ALARM`` with 4 chains: one parameter 1.037 at ESS 400, 1.015 at
    ESS 1000; 250 parameters 1.056 at ESS 400, 1.022 at ESS 1000, 1.011 at ESS 2000.
    """
    halves = 2 * chains
    spread = halves * stats.chi2.isf(false_alarm / (2 * count), halves - 1) / (2 * (halves - 1))
    return np.maximum(RHAT_FLOOR, 1 + spread / np.asarray(ess_bulk, dtype=float))


def num_chains(fit: ml.Fit) -> int:
    return int(fit.idata.posterior.sizes["chain"])


def convergence_failures(table: pd.DataFrame, chains: int, ess_min: float,
                         count: int | None = None, false_alarm: float = FALSE_ALARM) -> pd.DataFrame:
    """Rows of a summary table (``ess_bulk``, ``r_hat``) with bulk ESS below ``ess_min`` or
    R-hat above :func:`rhat_limit` (Bonferroni over ``count``, default the rows), with the limit."""
    limit = rhat_limit(table["ess_bulk"], chains, count or len(table), false_alarm)
    report = table[["ess_bulk", "r_hat"]].assign(rhat_limit=limit)
    return report[(table["ess_bulk"] < ess_min) | ~(table["r_hat"] <= limit)]


def assert_converged(table: pd.DataFrame, chains: int, ess_min: float, what: str = "fit",
                     count: int | None = None, false_alarm: float = FALSE_ALARM) -> None:
    """Every row has bulk ESS >= ``ess_min`` and R-hat <= its :func:`rhat_limit`."""
    bad = convergence_failures(table, chains, ess_min, count, false_alarm)
    worst = (table["r_hat"] - 1) / (rhat_limit(table["ess_bulk"], chains, count or len(table), false_alarm) - 1)
    print(f"{what}: min bulk ESS {table['ess_bulk'].min():.0f} ({table['ess_bulk'].idxmin()}), max R-hat "
          f"{table['r_hat'].max():.4f}, largest (R-hat - 1) / (limit - 1) {worst.max():.2f} ({worst.idxmax()})")
    assert bad.empty, (f"{what}: {len(bad)} of {len(table)} parameters have bulk ESS < {ess_min:g} or R-hat above "
                       f"the limit for their ESS:\n{bad.to_string()}")


def assert_within_mcse(estimate, exact, mcse, what: str = "estimate", count: int | None = None,
                       false_alarm: float = FALSE_ALARM) -> None:
    """Monte Carlo estimates (one fit) are within :func:`z_limit` MCSEs of exact values.

    ``count`` is the number of such comparisons the limit is shared over (default:
    the length of ``estimate``)."""
    estimate, exact, mcse = (pd.Series(np.atleast_1d(v)) if not isinstance(v, pd.Series) else v
                             for v in (estimate, exact, mcse))
    z = (estimate - exact).abs() / mcse
    limit = z_limit(count or len(z), two_fits=False, false_alarm=false_alarm)
    print(f"{what}: max z {z.max():.2f} of {len(z)}, limit {limit:.2f}")
    report = pd.DataFrame({"estimate": estimate, "exact": exact, "mcse": mcse, "z": z})
    assert (z <= limit).all(), f"{what} beyond {limit:.2f} MCSE of the exact value:\n{report[~(z <= limit)]}"


def assert_tables_agree(a: pd.DataFrame, b: pd.DataFrame, what: str = "fits", sds: bool = True,
                        sd_exclude: tuple[str, ...] = (), count: int | None = None,
                        false_alarm: float = FALSE_ALARM) -> None:
    """Two tables of Monte Carlo estimates of the same posterior (columns ``mean``,
    ``mcse_mean`` and, with ``sds``, ``sd``, ``mcse_sd``; rows the same quantities) agree:
    every difference is within :func:`z_limit` combined MCSEs ``sqrt(mcse_a² + mcse_b²)``.

    ``sd_exclude`` names rows whose sds are not compared: a posterior without a finite
    fourth moment has a sample sd of infinite variance, so its ``mcse_sd`` means nothing.
    ``count`` is the number of comparisons the limit is shared over (default: every
    mean and sd compared)."""
    assert list(a.index) == list(b.index)
    assert set(sd_exclude) <= set(a.index), f"unknown names in sd_exclude: {set(sd_exclude) - set(a.index)}"
    columns = [("mean", "mcse_mean")] + ([("sd", "mcse_sd")] if sds else [])
    compared = len(a) + (len(a) - len(sd_exclude) if sds else 0)
    limit = z_limit(count or compared, two_fits=True, false_alarm=false_alarm)
    report = pd.DataFrame(index=a.index)
    for value, mcse in columns:
        report[f"{value}_a"], report[f"{value}_b"] = a[value], b[value]
        report[f"z_{value}"] = (a[value] - b[value]).abs() / np.hypot(a[mcse], b[mcse])
    if sds:
        report.loc[list(sd_exclude), "z_sd"] = 0.0
    z = report[[f"z_{value}" for value, _ in columns]].max(axis=1)
    print(f"{what}: max z {z.max():.2f} ({z.idxmax()}) over {len(z)} quantities, limit {limit:.2f}")
    assert (z <= limit).all(), f"{what} differ beyond {limit:.2f} combined MCSE:\n{report[~(z <= limit)].to_string()}"


#: The bulk ESS floor of :func:`assert_agree`: below ~50 effective draws per chain an
#: MCSE is not worth comparing against. Set per fit well below the ESS the tests see.
AGREE_ESS_PER_CHAIN = 50


def assert_agree(a: ml.Fit, b: ml.Fit, group_effects: bool = True, sd_exclude: tuple[str, ...] = ()) -> None:
    """Two fits of the same model agree: both converged (bulk ESS >= 50 per chain and
    R-hat within :func:`rhat_limit` on every parameter, group effects included), and every
    posterior mean and sd (but the sds of ``sd_exclude``) is within :func:`z_limit`
    combined MCSEs (about 2m comparisons for m parameters). False alarm < 1e-3 for each
    of the three checks.
    """
    sa, sb = a.summary(group_effects=group_effects), b.summary(group_effects=group_effects)
    for name, fit, table in (("first fit", a, sa), ("second fit", b, sb)):
        assert_converged(table, num_chains(fit), AGREE_ESS_PER_CHAIN * num_chains(fit), what=name)
    assert_tables_agree(sa, sb, sd_exclude=sd_exclude)
