"""Plots of a fit: traces, fitted lines, group effects and posterior predictive checks.

:class:`PlotsMixin` is a base of :class:`~multilevel.results.fit.Fit`; it uses the fit's
``predict``, ``idata`` and ``info``.
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import DataError
from ..formula.spec import FormulaSpec, Terms, Var
from ..model.layout import GroupLayout, Layout
from .posterior import parameter_draws, select_draws, stack_draws


#: The kinds of posterior predictive check, and the draws each uses by default (LOO-PIT: all).
PPC_KINDS = {"density": 50, "bars": 200, "stat": 500, "loo_pit": None}


class PlotsMixin:
    """The Fit's plotting methods."""

    def plot_trace(self, var_names: list[str] | None = None):
        """Density and trace of each parameter, chains coloured.

        ``var_names`` defaults to the fixed effects, auxiliary parameters, group sds and
        correlations; group effects can be named as in the summary (``Intercept|tree[3]``).
        """
        from . import plots  # matplotlib, imported at first use
        names = self.info.layout.scalar_names() if var_names is None else var_names
        return plots.plot_trace({name: parameter_draws(self.idata.posterior, name) for name in names})

    def plot_lines(self, x: str, color: str | None = None, group: str | None = None):
        """The data against ``x``, each group's fitted line over its own range of ``x`` (by
        default of the first grouping factor) and the population line of each ``color`` level.

        Lines are predictions (the family mean) at the posterior means of the parameters;
        a population line sets every grouping factor to a new level with no effect. The
        response is on the scale fitted (``log(dnow)``, not ``dnow``).
        """
        from . import plots  # matplotlib, imported at first use
        data, y = self._fitted_data("plot_lines")
        layout = self.info.layout
        term = _pick_group(layout, group) if (group is not None or layout.groups) else None
        means = select_draws(self.idata.posterior)
        return plots.plot_lines(
            data, y, x, lambda frame: self._predict(means, frame, kind="mean", new_groups="zero"),
            response=str(self.info.spec.response), color=color,
            groups=None if term is None else self._group_codes(data, term),
            group_name=None if term is None else term.name,
            grouping_columns=_grouping_only_columns(self.info.spec))

    def plot_effects(self, group: str | None = None, column: str | None = None):
        """Caterpillar plot of the group effects (sorted posterior means, 95% intervals)."""
        from . import plots  # matplotlib, imported at first use
        term = _pick_group(self.info.layout, group)
        if column is not None and column not in term.columns:
            raise DataError(f"column={column!r} is not an effect of {term.name}; "
                                  f"it has {', '.join(term.columns)}")
        columns = term.columns if column is None else (column,)
        effects = {name: stack_draws(self.idata.posterior, f"{name}|{term.name}") for name in columns}
        return plots.plot_effects(effects, term.levels, term.name)

    def plot_ppc(self, num_draws: int | None = None, seed: int = 0, kind: str | None = None,
                 stat: str | Callable = "mean", group: str | None = None):
        """A posterior predictive check: replicates of y at the fitted rows, for draws
        chosen at random (``seed``), against the observed y.

        ``kind``: ``"density"`` (densities of ``num_draws`` replicates over y's; default for
        continuous responses, 50 draws), ``"bars"`` (the count of each response value, observed
        and the replicates' median and 90% interval; default for counts, binary and ordinal
        responses, 200 draws) or ``"stat"`` (the histogram of a test statistic over the
        replicates and its observed value, with ``P(T(y_rep) >= T(y))``; ``stat`` is
        ``"mean"``, ``"sd"``, ``"min"``, ``"max"``, ``"median"``, ``"zeros"`` (the share of
        zeros) or a function of the response; 500 draws) or ``"loo_pit"`` (ArviZ's LOO-PIT:
        each row's probability integral transform under its leave-one-out predictive
        distribution, from the stored log-likelihood and replicates of every draw; see
        :func:`.ppc.plot_loo_pit`).

        ``group``: a column of the formula; one panel per level (at most
        :data:`.ppc.MAX_PANELS`) comparing its rows with theirs in the replicates, as
        bayesplot's ``ppc_bars_grouped`` and ``ppc_stat_grouped`` (kinds ``"density"``,
        ``"bars"``, ``"stat"``)."""
        from . import plots, ppc  # matplotlib, imported at first use
        data, y = self._fitted_data("plot_ppc")
        kind = kind or ("bars" if self.info.family.discrete else "density")
        if kind not in PPC_KINDS:
            raise DataError(f"kind must be one of {', '.join(PPC_KINDS)}, got {kind!r}")
        if group is not None and group not in data:
            raise DataError(f"group={group!r} is not a column of the formula; give one of "
                            f"{', '.join(map(repr, data.columns))}")
        if group is not None and kind == "loo_pit":
            raise DataError(f"group={group!r}: LOO-PIT is one check of all rows; group= takes kind 'density', "
                            "'bars' or 'stat'")
        if kind == "loo_pit":
            return self._plot_loo_pit(data, y, seed)
        num_draws = PPC_KINDS[kind] if num_draws is None else num_draws
        posterior = self.idata.posterior
        if isinstance(num_draws, bool) or not isinstance(num_draws, (int, np.integer)) or num_draws < 1:
            raise DataError(f"num_draws must be a whole number >= 1, got {num_draws!r}")
        total = posterior.sizes["chain"] * posterior.sizes["draw"]
        chosen = np.sort(np.random.default_rng(seed).choice(total, size=min(num_draws, total), replace=False))
        subset = select_draws(posterior, chosen)

        def replicate(rows, key):
            return self._predict(subset, rows, kind="posterior_predictive", new_groups="error", seed=key)

        response = str(self.info.spec.response)
        if group is not None:
            return ppc.plot_ppc_grouped(y, replicate(data, seed), data[group].to_numpy(), kind=kind, group=group,
                                        response=response, stat=stat)
        if kind == "density":
            return plots.plot_ppc(y, data, replicate, num_draws=len(chosen), response=response, seed=seed)
        replicates = replicate(data, seed)
        if kind == "bars":
            return plots.plot_ppc_bars(y, replicates, response=response)
        return plots.plot_ppc_stat(y, replicates, stat, response=response)

    def _plot_loo_pit(self, data: pd.DataFrame, y: np.ndarray, seed: int):
        """LOO-PIT from the stored log-likelihood and the stored replicates (or new ones of
        every draw, ``seed``), without changing ``self.idata``."""
        from . import ppc  # matplotlib, imported at first use
        if "log_likelihood" not in self.idata.groups():
            raise DataError("kind='loo_pit' needs the pointwise log-likelihood, and this fit stored none (too "
                            "many draws x rows, or a Dask DataFrame): use kind='density', 'bars' or 'stat'")
        if self.info.family.discrete:
            warnings.warn("LOO-PIT of a discrete response is not uniform even for a calibrated model (its PIT "
                          "values sit on steps): read it with care, or check with kind='bars'",
                          UserWarning, stacklevel=3)
        posterior = self.idata.posterior
        if "posterior_predictive" in self.idata.groups():
            replicates = self.idata.posterior_predictive["y"].values
        else:
            draws = self._predict(posterior, data, kind="posterior_predictive", new_groups="error", seed=seed)
            replicates = draws.reshape(posterior.sizes["chain"], posterior.sizes["draw"], len(data))
        return ppc.plot_loo_pit(y, replicates, self.idata.log_likelihood["y"], posterior,
                                response=str(self.info.spec.response))


def _pick_group(layout: Layout, group: str | None) -> GroupLayout:
    names = [g.name for g in layout.groups]
    if not names:
        raise DataError("the model has no group terms, so there are no group effects to plot")
    if group is None:
        return layout.groups[0]
    if group not in names:
        raise DataError(f"group={group!r} is not a grouping factor of the model; it has {', '.join(names)}")
    return layout.groups[names.index(group)]


def _grouping_only_columns(spec: FormulaSpec) -> list[str]:
    """The columns that only name groups (``g`` of ``(1 | g)``), not predictors or effects."""
    effects = Terms(False, spec.fixed.terms + tuple(t for g in spec.groups for t in g.effects.terms))
    predictors = set(FormulaSpec(spec.formula, spec.response, effects, ()).variables(response=False))
    columns: dict[str, None] = {}
    for term in spec.groups:
        for factor in term.group:
            name = factor.name if isinstance(factor, Var) else factor.args[0].name
            if name not in predictors:
                columns.setdefault(name, None)
    return list(columns)
