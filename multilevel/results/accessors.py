"""Reading a fit as brms and lme4 do: ``fixef``, ``ranef``, ``coef`` and ``varcorr``.

Each accessor gathers draws from the posterior into a ``(chain*draw, K)`` array with
one key per column, and either summarises every column (a tidy DataFrame, one row
per key) or returns the draws themselves (a DataFrame with one column per key).
The summaries use the definitions of :func:`~multilevel.results.summary.summary_table`
(mean, standard deviation with ``ddof=1``, ``numpy.quantile``), so a row here and
the row of the same parameter in ``fit.summary()`` agree to rounding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..model.layout import GroupLayout, Layout
from .posterior import stack_draws
from .summary import check_prob, column_quantiles, quantile_label

#: The row that ``varcorr`` gives the residual standard deviation, as lme4 names it.
RESIDUAL = "Residual"
#: Key columns of the tables of ``ranef`` and ``coef``, and of ``varcorr``.
LEVEL_KEYS = ["group", "level", "term"]
VARCORR_KEYS = ["group", "term1", "term2", "kind"]


def summarise(draws: np.ndarray, prob: float) -> pd.DataFrame:
    """``mean``, ``sd`` and the central ``prob`` interval of each column of ``draws``.

    Notes
    -----
    For the column :math:`\\theta^{(1)}, \\dots, \\theta^{(S)}` of S stacked draws:
    ``mean`` is :math:`\\bar\\theta = S^{-1} \\sum_s \\theta^{(s)}`, ``sd`` is
    :math:`\\sqrt{(S-1)^{-1} \\sum_s (\\theta^{(s)} - \\bar\\theta)^2}`, and the interval
    is the :math:`(1 \\mp p)/2` quantiles (``numpy.quantile``, linear interpolation).
    """
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    quantiles = column_quantiles(np.asarray(draws, dtype=np.float64), [lo, hi])
    return pd.DataFrame({"mean": draws.mean(axis=0), "sd": draws.std(axis=0, ddof=1),
                         quantile_label(lo): quantiles[0], quantile_label(hi): quantiles[1]})


def _columns(posterior: xr.Dataset, blocks: list[np.ndarray]) -> np.ndarray:
    """The ``(chain*draw, k)`` blocks side by side; ``(chain*draw, 0)`` when there are none."""
    if not blocks:
        return np.empty((posterior.sizes["chain"] * posterior.sizes["draw"], 0))
    return np.concatenate([block.reshape(len(block), -1) for block in blocks], axis=1)


def _tidy(keys: list[tuple], names: list[str], draws: np.ndarray, summary: bool,
          prob: float) -> pd.DataFrame:
    """Long summary (key columns ``names`` then statistics) or wide draws (MultiIndex columns)."""
    if not summary:
        columns = pd.MultiIndex.from_tuples(keys, names=names) if keys else pd.MultiIndex.from_arrays(
            [[] for _ in names], names=names)
        return pd.DataFrame(draws, columns=columns)
    return pd.concat([pd.DataFrame.from_records(keys, columns=names), summarise(draws, prob)], axis=1)


def fixef(posterior: xr.Dataset, layout: Layout, summary: bool = True, prob: float = 0.95) -> pd.DataFrame:
    """The population-level (fixed) effects :math:`\\beta`.

    Returns
    -------
    pandas.DataFrame
        ``summary=True``: indexed by effect name (``Intercept``, ``x``, ``cheese[B]``,
        in design order) with columns ``mean``, ``sd`` and the interval (``q2.5``,
        ``q97.5`` for ``prob=0.95``). ``summary=False``: the draws, one row per draw
        (chains stacked, ``chain*draw`` rows) and one column per effect.
    """
    prob = check_prob(prob)
    names = list(layout.fixed)
    draws = _columns(posterior, [stack_draws(posterior, name) for name in names])
    if not summary:
        return pd.DataFrame(draws, columns=pd.Index(names, name="parameter"))
    return summarise(draws, prob).set_axis(pd.Index(names, name="parameter"))


def _effect_draws(posterior: xr.Dataset, term: GroupLayout, column: str) -> np.ndarray:
    """Draws ``(chain*draw, levels)`` of the deviations ``r[level, column]`` of a group term."""
    return stack_draws(posterior, f"{column}|{term.name}")


def _by_level(posterior: xr.Dataset, layout: Layout, draws_of) -> tuple[list[tuple], np.ndarray]:
    """Keys ``(group, level, term)`` and the ``(chain*draw, K)`` draws of ``draws_of(term, column)``."""
    keys, blocks = [], []
    for term in layout.groups:
        for column in term.columns:
            keys += [(term.name, level, column) for level in term.levels]
            blocks.append(draws_of(term, column))
    return keys, _columns(posterior, blocks)


def ranef(posterior: xr.Dataset, layout: Layout, summary: bool = True, prob: float = 0.95) -> pd.DataFrame:
    """The group-level effects: each level's deviation :math:`r_{g,l,c}` from the population.

    Returns
    -------
    pandas.DataFrame
        ``summary=True``: the tidy long form, one row per grouping factor, level and
        effect column, with columns ``group``, ``level``, ``term``, ``mean``, ``sd`` and
        the interval; terms in formula order, levels in the order of the fit.
        ``summary=False``: the draws, ``chain*draw`` rows and MultiIndex columns
        ``(group, level, term)`` in the order of the summary's rows.

    Notes
    -----
    This is brms's ``ranef`` (lme4's conditional modes become posterior draws): for a
    term ``(1 + x | g)`` the linear predictor of a row in level ``l`` of ``g`` is
    :math:`\\dots + (\\beta_0 + r_{g,l,0}) + (\\beta_x + r_{g,l,x})\\, x`, and ``ranef``
    gives the :math:`r`. Use :func:`coef` for :math:`\\beta + r`.
    """
    prob = check_prob(prob)
    keys, draws = _by_level(posterior, layout, lambda term, column: _effect_draws(posterior, term, column))
    return _tidy(keys, LEVEL_KEYS, draws, summary, prob)


def coef(posterior: xr.Dataset, layout: Layout, summary: bool = True, prob: float = 0.95) -> pd.DataFrame:
    """Each level's coefficients: population effect plus the level's deviation, draw by draw.

    Returns
    -------
    pandas.DataFrame
        The shape of :func:`ranef` (tidy long form, or draws with MultiIndex columns
        ``(group, level, term)``).

    Notes
    -----
    For draw :math:`s`, level :math:`l` of factor :math:`g` and effect column :math:`c`
    of a group term, :math:`\\beta^{(s)}_c + r^{(s)}_{g,l,c}` when :math:`c` is also a
    population-level effect, and :math:`r^{(s)}_{g,l,c}` alone when it is not (a
    ``(0 + x | g)`` term without ``x`` in the fixed part). Summaries are of these sums,
    so the mean of ``coef`` is the sum of the means but its interval is not the sum of
    intervals. As brms's ``coef``, only the columns with group effects appear; lme4's
    ``coef`` also repeats the fixed effects that do not vary by group.
    """
    prob = check_prob(prob)

    def total(term: GroupLayout, column: str) -> np.ndarray:
        deviation = _effect_draws(posterior, term, column)
        return deviation + stack_draws(posterior, column)[:, None] if column in layout.fixed else deviation

    keys, draws = _by_level(posterior, layout, total)
    return _tidy(keys, LEVEL_KEYS, draws, summary, prob)


def varcorr(posterior: xr.Dataset, layout: Layout, summary: bool = True, prob: float = 0.95) -> pd.DataFrame:
    """The group-level standard deviations, correlations and covariances, and the residual sd.

    Returns
    -------
    pandas.DataFrame
        ``summary=True``: tidy, one row per quantity, with columns ``group``, ``term1``,
        ``term2``, ``kind`` (``"sd"``, ``"cor"`` or ``"cov"``), ``mean``, ``sd`` and the
        interval. Per group term: an ``sd`` row per column (``term2`` missing), a
        ``cor`` row per pair of a correlated term, then the ``cov`` rows: the variance
        of each column (``term1 == term2``) and the covariance of each correlated pair.
        Last, when the family has a scalar ``sigma``, group ``"Residual"``: its ``sd``
        and variance (``cov``). ``summary=False``: the draws, MultiIndex columns
        ``(group, term1, term2, kind)`` in the order of the summary's rows.

    Notes
    -----
    For a term with standard deviations :math:`\\sigma_i` and correlations
    :math:`\\rho_{ij}` (the variables ``sd(a|g)`` and ``cor(a,b|g)``), the covariance is
    :math:`\\Sigma_{ij} = \\sigma_i \\sigma_j \\rho_{ij}` and the variance
    :math:`\\Sigma_{ii} = \\sigma_i^2`, computed draw by draw before summarising (so the
    mean of a covariance is not the product of the means). Uncorrelated columns
    (``||``, or separate terms) have :math:`\\Sigma_{ij} = 0` by the model and no row.
    A family parameter ``sigma`` that is predicted (``sigma ~ x``) varies by row and
    has no residual row.
    """
    prob = check_prob(prob)
    keys, columns = [], []
    for term in layout.groups:
        sds = [stack_draws(posterior, name) for name in term.sd_names]
        pairs = [(j, i) for i in range(term.q) for j in range(i)] if term.has_cor else []
        cors = [stack_draws(posterior, name) for name in term.cor_names]
        for column, draws in zip(term.columns, sds):
            keys.append((term.name, column, pd.NA, "sd"))
            columns.append(draws)
        for (a, b), draws in zip(pairs, cors):
            keys.append((term.name, term.columns[a], term.columns[b], "cor"))
            columns.append(draws)
        for column, draws in zip(term.columns, sds):
            keys.append((term.name, column, column, "cov"))
            columns.append(draws ** 2)
        for (a, b), draws in zip(pairs, cors):
            keys.append((term.name, term.columns[a], term.columns[b], "cov"))
            columns.append(sds[a] * sds[b] * draws)
    if "sigma" in layout.aux and "sigma" in posterior:
        sigma = stack_draws(posterior, "sigma")
        keys += [(RESIDUAL, "sigma", pd.NA, "sd"), (RESIDUAL, "sigma", "sigma", "cov")]
        columns += [sigma, sigma ** 2]
    return _tidy(keys, VARCORR_KEYS, _columns(posterior, columns), summary, prob)
