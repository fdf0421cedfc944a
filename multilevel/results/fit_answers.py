"""Answers from a fit on the response scale: hypotheses, R², conditional effects and
marginaleffects-style predictions, comparisons and slopes.

:class:`AnswersMixin` is a base of :class:`~multilevel.results.fit.Fit`; it uses the fit's
``predict``, ``idata`` and ``info``.
"""

from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np
import pandas as pd

from ..design import build_design
from ..errors import DataError
from ..model.layout import SE_KNOWN
from . import margins, r2
from .effects import (RESOLUTION, ConditionalEffects, conditional_effects, effect_grid, is_categorical,
                      levels_of, typical_value)
from .hypothesis import hypothesis_table
from .hypothesis_levels import check_scope, hypothesis_by_level
from .posterior import select_draws
from .predict import design_draws
from .summary import check_prob


class AnswersMixin:
    """The Fit's methods that turn draws into answers."""

    def hypothesis(self, hypotheses: str | list[str] | dict[str, str], prob: float = 0.95,
                   summary: bool = True, prior: "AnswersMixin | None" = None, scope: str = "standard",
                   group: str | None = None) -> pd.DataFrame:
        """Test hypotheses about the parameters, as brms's ``hypothesis()``.

        Parameters
        ----------
        hypotheses
            One hypothesis (``"x > 0"``), a list of them
            (``["cheese[B] - cheese[A] = 0", "2 * x + Intercept < 1"]``) or a dict
            name -> hypothesis. Each compares two expressions with ``<``, ``>`` or ``=``:
            parameters named as in :meth:`summary` (``Intercept``, ``diam:trt``, ``sigma``,
            ``sd(Intercept|g)``, ``cor(Intercept,x|g)``, a group effect ``Intercept|g[level]``;
            any name may be backquoted, ```name```), numbers, ``+ - * / ^``, parentheses and
            ``exp``, ``log``, ``sqrt``, ``abs``.
        prob
            Probability of the interval.
        summary
            False: the draws of ``left - right`` instead, one column per hypothesis.
        prior
            A fit of the same model with ``prior_only=True``: its draws give a hypothesis
            of equality brms's Savage-Dickey evidence ratio (posterior over prior density
            at 0) and posterior probability.
        scope, group
            As brms: ``"standard"`` tests the parameters; ``"ranef"`` or ``"coef"`` test the
            hypothesis at each level of the grouping factor ``group``, its names being the
            factor's effect columns (``"x > 0"``: level by level, the deviation ``r[level, x]``,
            or the coefficient ``x + r[level, x]``); see :mod:`.hypothesis_levels`.

        Returns
        -------
        pandas.DataFrame
            One row per hypothesis (indexed by its name, or its text), columns
            ``hypothesis`` (the text), ``estimate`` and ``error`` (posterior mean and sd of
            ``left - right``), the interval's bounds ``lower`` and ``upper`` (brms's
            ``CI.Lower``, ``CI.Upper``), ``evid_ratio`` and ``post_prob``. With a
            ``group``, one row per level and hypothesis, with columns ``group`` and ``level``
            first (``summary=False``: MultiIndex columns ``(level, hypothesis)``).

        Notes
        -----
        As in brms, a one-sided hypothesis (``<``, ``>``) has a one-sided interval: for
        ``>``, ``lower`` is the ``1 - prob`` quantile and ``upper`` is ``inf``; for ``<``,
        ``lower`` is ``-inf`` and ``upper`` the ``prob`` quantile. ``post_prob`` is the share of draws in
        which it holds and ``evid_ratio`` ``post_prob / (1 - post_prob)`` (``inf`` when every
        draw agrees). A hypothesis of equality (``=``) has the central interval, and
        ``evid_ratio`` and ``post_prob`` NaN unless ``prior`` is given. A name the fit does not have, or an
        expression that does not parse, raises DataError with a caret under the fault.
        See :func:`.hypothesis.hypothesis_table`.
        """
        if prior is not None and not isinstance(prior, AnswersMixin):
            raise DataError(f"prior must be a fit of the same model with prior_only=True, got {type(prior).__name__}")
        check_scope(scope, group, self.info.layout)
        prior_draws = None if prior is None else prior.idata.posterior
        if scope != "standard":
            return hypothesis_by_level(self.idata.posterior, self.info.layout, hypotheses, group, scope, prob,
                                       summary, prior_draws)
        return hypothesis_table(self.idata.posterior, hypotheses, prob, summary, prior_draws)

    def r2(self, summary: bool = True, prob: float = 0.95, loo: bool = False, seed: int = 0) -> pd.DataFrame:
        """Bayesian R² (Gelman, Goodrich, Gabry & Vehtari 2019), or LOO-R² with ``loo=True``.

        For draw s, ``R² = var(mu_s) / (var(mu_s) + var_res_s)``, with ``mu_s`` the expected
        response at each fitted row (the family's mean, group effects included; for a
        binomial model a count of successes) and ``var_res_s`` the expected residual
        variance: ``sigma_s²`` for a Gaussian model (its mean over rows when ``sigma`` has a
        formula), and for every other family the variance of the residuals ``y - mu_s``
        (the "residual draws" version, as brms's ``bayes_R2``). Variances over rows have
        divisor n - 1. An ordinal model's expected category numbers are treated as
        numbers, with a warning (as brms).

        ``loo=True`` gives brms's ``loo_R2``: ``1 - var(y - mu_loo) / var(y)``, with
        ``mu_loo`` each row's leave-one-out expected response (PSIS weights of the stored
        log-likelihood), its uncertainty from Bayesian-bootstrap weights of the rows
        (``seed``); a warning when some Pareto k are too large.

        Returns
        -------
        pandas.DataFrame
            ``summary=True``: one row (``R2``, or ``loo_R2``) with ``estimate``, ``error`` and
            the central ``prob`` interval (``q2.5``, ``q97.5``). ``summary=False``: the
            draws, one column of that name.

        Raises
        ------
        DataError
            For a fit without its rows (of a Dask DataFrame), or ``loo=True`` for a fit
            that stored no pointwise log-likelihood.
        """
        prob = check_prob(prob)
        data, y = self._fitted_data("r2")
        family, posterior = self.info.family, self.idata.posterior
        if hasattr(family, "category_log_probs"):
            warnings.warn("r2 treats the expected category numbers of an ordinal model as numbers, which is "
                          "likely not meaningful (as brms warns)", UserWarning, stacklevel=2)

        design = build_design(self.info.spec, data, na_action="error", encoders=self.info.encoders,
                              with_response=False)

        def predict(index: np.ndarray, dpar: str | None) -> np.ndarray:
            return design_draws(select_draws(posterior, index), self.info.layout, family, design, kind="mean",
                                new_groups="error", dpar=dpar)

        num_draws = posterior.sizes["chain"] * posterior.sizes["draw"]
        if loo:
            mu_loo, pareto_k = r2.loo_expectation(predict, r2.stored_log_likelihood(self.idata))
            r2.warn_pareto_k(pareto_k, num_draws)
            draws, label = r2.loo_r2(mu_loo, y, num_draws, seed), "loo_R2"
        else:
            draws, label = r2.fitted_bayes_r2(predict, y, family, num_draws, design.se,
                                              self.info.layout.se != SE_KNOWN), "R2"
        return r2.summarise_r2(draws, label, prob) if summary else pd.DataFrame({label: draws})

    # -- information criteria --------------------------------------------------------

    def conditional_effects(self, effect: str, *, kind: str = "mean", categorical: bool = False,
                            conditions: Mapping[str, object] | pd.DataFrame | None = None,
                            re_formula: str | None = "~ 0",
                            resolution: int = RESOLUTION, prob: float = 0.95, dpar: str | None = None,
                            seed: int = 0) -> ConditionalEffects:
        """The expected response over a grid of ``effect`` (``"x"``, or ``"x:z"`` for one line
        per value of z), the other predictors at their means or reference levels (or at
        ``conditions``), as brms's ``conditional_effects``; see
        :mod:`multilevel.results.effects`.

        ``kind`` as in :meth:`predict` (``"linear"`` for the link scale); ``categorical=True``
        for an ordinal model's category probabilities; ``re_formula`` which group effects
        to include (default none: brms's ``NA``); ``dpar`` a distributional parameter
        instead of the response. Returns ``(data, figure)``: the grid with ``mean``, ``sd``
        and interval columns, and its plot.

        ``conditions`` holds columns at values: one value each (``{"w": 0}``), or several
        (``{"g": ["a", "b"]}``, or a DataFrame of one condition per row) for one panel per
        condition, labelled in the column ``condition``; with ``re_formula=None`` and a
        grouping column, the effect within each of its levels (brms's ``conditions``).
        """
        prob = check_prob(prob)
        data, _ = self._fitted_data("conditional_effects")
        info = self.info
        grid = effect_grid(data, info.spec, info.encoders, effect, resolution=resolution, conditions=conditions)
        categories = None
        if categorical:
            categories = getattr(info.family, "categories", None)
            if not categories:
                raise DataError(f"categorical=True gives the category probabilities of an ordinal model; the "
                                f"{info.family.name} family has no categories")
            kind = "probs"
        draws = self._predict(self.idata.posterior, grid, kind=kind, new_groups="zero", seed=seed, dpar=dpar,
                              re_formula=re_formula)
        response = dpar or str(info.spec.response)
        return conditional_effects(grid, draws, effect, prob, categories, response)

    # -- marginaleffects-style summaries (see multilevel.results.margins) -----------

    def datagrid(self, **values) -> pd.DataFrame:
        """A grid of new rows, as marginaleffects' ``datagrid``: every combination of the
        values given (``x=[0, 1], f=["a", "b"]``), every other column of the formula at its
        mean (numeric) or reference level (categorical) over the fitted rows."""
        data, _ = self._fitted_data("datagrid")
        info = self.info
        columns = [c for c in dict.fromkeys(info.spec.variables(response=False) + info.spec.trials_variables())
                   if c in data]
        unknown = [k for k in values if k not in columns]
        if unknown:
            raise DataError(f"datagrid: {', '.join(map(repr, unknown))} is not a column of the formula; "
                            f"the columns are {', '.join(map(repr, columns))}")
        axes = {k: list(np.atleast_1d(v)) for k, v in values.items()}
        grid = pd.MultiIndex.from_product(list(axes.values()), names=list(axes)).to_frame(index=False) \
            if axes else pd.DataFrame(index=[0])
        for name in columns:
            if name not in axes:
                grid[name] = typical_value(data[name], info.encoders, name)
        return grid

    def predictions(self, newdata: pd.DataFrame | None = None, by=None, kind: str = "mean",
                    re_formula: str | None = None, prob: float = 0.95) -> pd.DataFrame:
        """Predictions per row of ``newdata`` (default: the fitted rows), or averaged over
        them (``by=True``) or within groups (``by="f"`` or a list of columns), draw by draw,
        as marginaleffects' ``predictions``/``avg_predictions``; columns ``estimate`` (mean),
        ``sd`` and the interval."""
        frame = self._margins_data(newdata)
        return margins.table(self._margins_predict(kind, re_formula), frame, by, check_prob(prob),
                             self._num_draws)

    def comparisons(self, variables, newdata: pd.DataFrame | None = None, by=True,
                    comparison: str = "difference", kind: str = "mean", re_formula: str | None = None,
                    prob: float = 0.95) -> pd.DataFrame:
        """Contrasts of predictions, as marginaleffects' ``comparisons``: for each variable
        (a name, a list, or a dict name -> step or ``"reference"``/``"pairwise"``) the change
        in the prediction when a numeric variable grows by its step (default 1), or between a
        categorical one's levels (default each against the first; ``"pairwise"``: every pair,
        as emmeans' pairwise contrasts). ``comparison="ratio"`` divides instead. Averaged over
        the rows of ``newdata`` (default the fitted rows; ``by=True``), within groups (``by=``
        columns) or per row (``by=False``). One row per variable, contrast (and group)."""
        prob, frame = check_prob(prob), self._margins_data(newdata)
        combine = margins.comparison_function(comparison)
        predict = self._margins_predict(kind, re_formula)
        wanted = variables if isinstance(variables, Mapping) else \
            {v: None for v in ([variables] if isinstance(variables, str) else variables)}
        data, _ = self._fitted_data("comparisons")
        parts = []
        for variable, values in wanted.items():
            if variable not in data or variable not in frame:
                raise DataError(f"comparisons: {variable!r} is not a predictor in the data; the columns are "
                                f"{', '.join(map(repr, frame.columns))}")
            levels = levels_of(data[variable], self.info.encoders, variable) \
                if is_categorical(data[variable], self.info.encoders, variable) else None
            for label, high, low in margins.contrasts(variable, values, frame, levels):
                high_frame, low_frame = frame.assign(**high), frame.assign(**low)

                def contrast(rows, high_frame=high_frame, low_frame=low_frame):
                    return combine(predict(high_frame.loc[rows.index]), predict(low_frame.loc[rows.index]))

                part = margins.table(contrast, frame, by, prob, self._num_draws)
                part.insert(0, "contrast", label)
                part.insert(0, "term", variable)
                parts.append(part)
        return pd.concat(parts, ignore_index=True)

    def slopes(self, variable: str, newdata: pd.DataFrame | None = None, by=True, kind: str = "mean",
               re_formula: str | None = None, prob: float = 0.95) -> pd.DataFrame:
        """The derivative of the prediction with respect to a numeric ``variable``, as
        marginaleffects' ``slopes``: a centred difference with a step of a ten-thousandth of
        the variable's fitted range, averaged (``by``) as in :meth:`comparisons`."""
        prob, frame = check_prob(prob), self._margins_data(newdata)
        data, _ = self._fitted_data("slopes")
        if variable not in data or is_categorical(data[variable], self.info.encoders, variable):
            raise DataError(f"slopes: {variable!r} is not a numeric predictor of the model; "
                            "use comparisons for a categorical one")
        step = margins.SLOPE_STEP * float(np.ptp(data[variable])) or margins.SLOPE_STEP
        x = frame[variable].to_numpy(dtype=np.float64)
        high_frame, low_frame = frame.assign(**{variable: x + step / 2}), frame.assign(**{variable: x - step / 2})
        predict = self._margins_predict(kind, re_formula)

        def slope(rows):
            return (predict(high_frame.loc[rows.index]) - predict(low_frame.loc[rows.index])) / step

        out = margins.table(slope, frame, by, prob, self._num_draws)
        out.insert(0, "term", variable)
        return out

    @property
    def _num_draws(self) -> int:
        return self.idata.posterior.sizes["chain"] * self.idata.posterior.sizes["draw"]

    def _margins_data(self, newdata: pd.DataFrame | None) -> pd.DataFrame:
        frame = self._fitted_data("predictions, comparisons and slopes without newdata")[0] if newdata is None \
            else pd.DataFrame(newdata)
        return frame.reset_index(drop=True)

    def _margins_predict(self, kind: str, re_formula: str | None):
        posterior = self.idata.posterior
        return lambda rows: self._predict(posterior, rows, kind=kind, re_formula=re_formula, seed=0)

    # -- plots (each returns a matplotlib Figure; see multilevel.results.plots) ---------
