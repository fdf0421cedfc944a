"""The Fit: an ArviZ InferenceData plus what is needed to summarise and predict.

A Fit is ``fit.idata`` (the draws) and ``fit.info`` (formula spec, encoders,
parameter layout, family, priors used, sampler information); neither is changed
after the Fit is built. ``save`` writes ``fit.info`` as JSON into the posterior's
attributes of the file written, so ``load`` restores a fit that can summarise and
predict without the original data frame.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from ..design import Encoders, build_design
from ..errors import DataError
from ..formula.spec import FormulaSpec, Terms, Var, spec_from_dict, spec_to_dict
from ..model.families import Family, get_family
from ..model.layout import SE_KNOWN, GroupLayout, Layout
from . import accessors, criteria, margins, plots, ppc, r2
from . import kfold as kfold_module
from .display import as_html, as_text, make_report
from .effects import (RESOLUTION, ConditionalEffects, conditional_effects, effect_grid, is_categorical,
                      levels_of, typical_value)
from .hypothesis import hypothesis_table
from .hypothesis_levels import check_scope, hypothesis_by_level
from .posterior import parameter_draws, select_draws, stack_draws
from .predict import design_draws, predict_draws, summarise_predictions, summarise_probabilities
from .response_levels import modelled_level
from .storage import META_KEY, read_fit_file, write_fit_file
from .summary import check_prob, coda_table, convergence_messages, summary_table


@dataclass(frozen=True)
class FitInfo:
    """What a Fit needs besides the draws; serialised with the InferenceData."""

    spec: FormulaSpec
    encoders: Encoders
    layout: Layout
    family: Family
    priors: pd.DataFrame
    sampler_info: dict
    num_rows: int
    deviance_at_mean: float | None = None  # D(θ̄), for DIC; None without the rows
    #: The ``priors=`` that gives a refit exactly these priors (PriorSet.arguments); None in older files.
    prior_arguments: dict[str, str] | None = None

    def to_json(self) -> str:
        return json.dumps({
            "spec": spec_to_dict(self.spec),
            "encoders": self.encoders.to_dict(),
            "layout": {"fixed": list(self.layout.fixed), "aux": list(self.layout.aux),
                       "groups": [asdict(g) for g in self.layout.groups], "dpars": list(self.layout.dpars),
                       "fixed_dpars": list(self.layout.fixed_dpars), "se": self.layout.se,
                       "smooths": [[name, list(columns)] for name, columns in self.layout.smooths]},
            "family": self.family.to_dict(),
            "priors": self.priors.to_dict(orient="records"),
            "sampler_info": self.sampler_info,
            "num_rows": self.num_rows,
            "deviance_at_mean": self.deviance_at_mean,
            "prior_arguments": self.prior_arguments,
        })

    @classmethod
    def from_json(cls, text: str) -> "FitInfo":
        data = json.loads(text)
        saved = data["layout"]
        layout = Layout(tuple(saved["fixed"]), tuple(saved["aux"]),
                        tuple(GroupLayout(g["name"], tuple(g["columns"]), tuple(g["levels"]), g["correlated"],
                                          tuple(g.get("dpars", ())), g.get("structure", "")) for g in saved["groups"]),
                        tuple(saved.get("dpars", ())), tuple(saved.get("fixed_dpars", ())), saved.get("se", ""),
                        tuple((name, tuple(columns)) for name, columns in saved.get("smooths", ())))
        return cls(spec_from_dict(data["spec"]), Encoders.from_dict(data["encoders"]), layout,
                   get_family(data["family"]), pd.DataFrame.from_records(data["priors"]),
                   data["sampler_info"], data["num_rows"], data.get("deviance_at_mean"),
                   data.get("prior_arguments"))


#: The kinds of posterior predictive check, and the draws each uses by default (LOO-PIT: all).
PPC_KINDS = {"density": 50, "bars": 200, "stat": 500, "loo_pit": None}


class Fit:
    """A fitted multilevel model, immutable once built.

    Attributes
    ----------
    idata : arviz.InferenceData
        ``posterior`` (named parameters, group effects with level coordinates),
        ``sample_stats``, ``log_likelihood`` and ``observed_data``. The Fit does not
        change it (it is the caller's object: do not change it either).
    info : FitInfo
        What summaries and predictions need besides the draws.
    priors : pandas.DataFrame
        The prior of every parameter and where it came from (default or user key).
    sampler_info : dict
        Which sampler ran and why, its settings and timings.
    """

    def __init__(self, idata: az.InferenceData, info: FitInfo):
        self._idata = idata
        self._info = info

    @property
    def idata(self) -> az.InferenceData:
        """The draws (read-only attribute)."""
        return self._idata

    @property
    def info(self) -> FitInfo:
        """Formula spec, encoders, layout, family, priors and sampler information (read-only)."""
        return self._info

    # -- descriptive ------------------------------------------------------------
    @property
    def formula(self) -> str:
        """The formula, and those of the predicted parameters after it: ``"y ~ x; sigma ~ x"``."""
        return str(self.info.spec)

    @property
    def priors(self) -> pd.DataFrame:
        return self.info.priors.copy()

    @property
    def sampler_info(self) -> dict:
        return dict(self.info.sampler_info)

    @property
    def seconds(self) -> float:
        """Wall time of all warmup and sampling iterations (compilation excluded)."""
        return float(self.info.sampler_info.get("sampling_seconds", np.nan))

    @property
    def num_divergent(self) -> int:
        stats = self.idata.sample_stats
        return int(stats["diverging"].sum()) if "diverging" in stats else 0

    def summary(self, prob: float = 0.95, group_effects: bool = True,
                style: str = "default") -> pd.DataFrame:
        """The posterior summary, one row per parameter (per level for group effects).

        Parameters
        ----------
        prob
            Probability of the central interval (columns ``q2.5`` and ``q97.5`` for 0.95).
        group_effects
            Include the group effects (``Intercept|tree[1]`` ...).
        style
            ``"default"`` for the columns in the README, ``"coda"`` for coda's
            Mean, SD, Naive SE, Time-series SE and five quantiles.
        """
        if style == "coda":
            return coda_table(self.idata.posterior, self.info.layout, group_effects)
        if style != "default":
            raise DataError(f"style must be 'default' or 'coda', got {style!r}")
        return summary_table(self.idata.posterior, self.info.layout, self.seconds, prob, group_effects)

    def diagnostics(self) -> list[str]:
        """Convergence problems, each with a remedy (empty when all is well).

        Every parameter is checked, except the group effects of a sampler that draws
        them exactly from their conditional given the other parameters (the collapsed
        sampler): they mix exactly as well as the parameters checked (and there may be
        tens of thousands of them).
        """
        posterior = self.idata.posterior
        num_draws = posterior.sizes["chain"] * posterior.sizes["draw"]
        exact_effects = bool(self.info.sampler_info.get("exact_group_effects"))
        return convergence_messages(self.summary(group_effects=not exact_effects), self.num_divergent, num_draws)

    def header(self) -> str:
        info = self.info.sampler_info
        posterior = self.idata.posterior
        lines = [
            f"Formula: {self.formula}",
            f"Family: {self.info.family.name} ({self.info.family.link} link); "
            f"{self.info.num_rows} observations",
            f"Sampler: {info.get('sampler')} ({info.get('reason', '')})",
            f"Draws: {posterior.sizes['chain']} chains x {posterior.sizes['draw']} draws "
            f"after {info.get('warmup', 0)} warmup; sampling {self.seconds:.1f} s, "
            f"compilation {info.get('compile_seconds', float('nan')):.1f} s; "
            f"{self.num_divergent} divergent transitions",
        ]
        level = modelled_level(self.info.spec, self.info.encoders, self.info.family)
        if level is not None:
            lines.insert(2, level)
        return "\n".join(lines)

    def __repr__(self) -> str:
        """brms's print: header, population-level effects, group-level sds and correlations
        per factor (with its number of levels), family parameters; group effects only counted."""
        return as_text(make_report(self.header(), self.summary(group_effects=False), self.info.layout))

    def _repr_html_(self) -> str:
        return as_html(make_report(self.header(), self.summary(group_effects=False), self.info.layout))

    # -- reading a fit as brms and lme4 do (see multilevel.results.accessors) ------------
    def fixef(self, summary: bool = True, prob: float = 0.95) -> pd.DataFrame:
        """The population-level effects: one row per effect (``Intercept``, ``x``, ``cheese[B]``),
        columns ``mean``, ``sd`` and the central ``prob`` interval (``q2.5``, ``q97.5``); with
        ``summary=False`` the draws, ``chain*draw`` rows by effects. Every accessor raises
        DataError for a ``prob`` outside (0, 1); see :mod:`.accessors`."""
        return accessors.fixef(self.idata.posterior, self.info.layout, summary, prob)

    def ranef(self, summary: bool = True, prob: float = 0.95) -> pd.DataFrame:
        """Each level's deviations from the population-level effects (brms's ``ranef``).

        Returns the tidy long table, columns ``group``, ``level``, ``term``, ``mean``,
        ``sd`` and the interval (``summary=True``), or the draws with MultiIndex columns
        ``(group, level, term)`` (``summary=False``); see :func:`.accessors.ranef`.
        """
        return accessors.ranef(self.idata.posterior, self.info.layout, summary, prob)

    def coef(self, summary: bool = True, prob: float = 0.95) -> pd.DataFrame:
        """Each level's coefficients, population effect plus deviation draw by draw (brms's
        ``coef``), in the shape of :meth:`ranef`; see :func:`.accessors.coef`."""
        return accessors.coef(self.idata.posterior, self.info.layout, summary, prob)

    def varcorr(self, summary: bool = True, prob: float = 0.95) -> pd.DataFrame:
        """Group-level sds, correlations and covariances per factor, and the residual sd.

        Tidy, columns ``group``, ``term1``, ``term2``, ``kind`` (``sd``, ``cor``, ``cov``),
        ``mean``, ``sd`` and the interval (``summary=True``), or the draws with those
        four keys as MultiIndex columns (``summary=False``); see :func:`.accessors.varcorr`.
        """
        return accessors.varcorr(self.idata.posterior, self.info.layout, summary, prob)

    # -- hypotheses and R² (see multilevel.results.hypothesis and .r2) --------------------
    def hypothesis(self, hypotheses: str | list[str] | dict[str, str], prob: float = 0.95,
                   summary: bool = True, prior: "Fit | None" = None, scope: str = "standard",
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
        if prior is not None and not isinstance(prior, Fit):
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
    def dic(self) -> criteria.DIC:
        """DIC = D(θ̄) + 2 p_D with p_D = D̄ - D(θ̄), the deviance conditional on the
        group effects (as JAGS computes it); ``.dic``, ``.p_d``, ``.d_bar``, ``.d_hat``."""
        return criteria.dic(self.idata, self.info.deviance_at_mean)

    def waic(self):
        """WAIC by ArviZ from the pointwise log-likelihood (``elpd_waic``, ``p_waic``, ``se``)."""
        return criteria.waic(self.idata)

    def loo(self):
        """PSIS-LOO by ArviZ (``elpd_loo``, ``p_loo``, ``se``, Pareto k per row, with a warning
        when some k exceed 0.7, naming :meth:`kfold` as the remedy)."""
        return criteria.loo(self.idata)

    def kfold(self, data: pd.DataFrame, K: int = 10, group: str | None = None, folds=None, seed: int = 0,
              progress: bool | None = None) -> "kfold_module.KFold":
        """K-fold cross-validation (brms's ``kfold``): refit without each fold, score its rows.

        For each fold, the same model (formula, family, the fit's priors exactly, sampler,
        chains, draws, warmup, seed and NUTS settings) is fitted to the other rows, and
        each held-out row i gets ``elpd_i = log (1/S) Σ_s p(y_i | θ_s)`` over the refit's
        S draws; a row whose group level the refit did not see gets a group effect drawn
        from the fitted population per draw (brms's ``sample_new_levels = "uncertainty"``).
        ``elpd_kfold = Σ_i elpd_i``, ``se = sqrt(n var(elpd_i))``, ``p_kfold`` the full fit's
        lppd minus ``elpd_kfold``. See :mod:`multilevel.results.kfold`.

        Parameters
        ----------
        data
            The data frame the model was fitted to (a fit keeps no copy): the same rows, in
            the same order (rows with missing values in the formula's columns are dropped
            as in fitting).
        K
            Number of random folds (sizes differing by at most one), from 2 to the rows.
        group
            A column of ``data``: leave one group out, one fold per level (``K`` is ignored).
        folds
            A fold label per row (brms's ``folds``): one fold per distinct label.
        seed
            Seed of the random folds and of the effects drawn for new group levels (the
            refits use the fit's own seed).
        progress
            A progress bar over the folds (default: when standard error is a terminal).

        Returns
        -------
        KFold
            ArviZ's ELPDData with ``elpd_kfold``, ``se``, ``p_kfold``, ``kfold_i`` (per row),
            ``folds`` (per row, its fold's label); ``ml.compare({...}, ic="kfold")`` ranks them.

        Raises
        ------
        DataError
            When ``data`` is not the fitted data (another number of rows, another response),
            ``group`` is not a column, ``K`` is not from 2 to the rows, or a fold's refit fails
            (the message names the fold).
        """
        from ..api import fit as refit  # the whole pipeline, as ml.fit runs it (api imports this module)
        return kfold_module.kfold(self, data, refit=refit, K=K, group=group, folds=folds, seed=seed,
                                  progress=progress)

    def update(self, data: pd.DataFrame | None = None, *, formula=None, family: str | Family | None = None,
               priors: Mapping[str, object] | None = None, **options) -> "Fit":
        """Refit with some things changed, as brms's ``update``: new ``data``, ``formula``,
        ``family``, ``priors`` or sampler options (``draws=``, ``chains=``, ``seed=`` ... as
        :func:`multilevel.fit` takes them); everything not given is the fit's own.

        Without ``data`` the model is refitted to the fitted rows of the formula's columns,
        which the fit keeps (so a new formula may only use those columns). Without
        ``priors``, and with the same formula and family, the refit has exactly the fit's
        priors, data-scaled defaults included; with ``priors``, those and the defaults.
        Compiled programs are reused when the model's structure and shapes allow (same
        formula and family, as many rows and levels): then a refit costs sampling only.
        """
        from ..api import fit as refit  # the whole pipeline, as ml.fit runs it (api imports this module)
        info = self.info
        same_model = formula is None and family is None
        if data is None:
            data, _ = self._fitted_data("update without data")
        if priors is None and same_model:
            priors = kfold_module.refit_priors(info)
        settings = {**kfold_module.refit_settings(self.sampler_info), **options}
        return refit(info.spec if formula is None else formula, data,
                     family=info.family if family is None else family, priors=priors, **settings)

    # -- prediction --------------------------------------------------------------
    def predict(self, new_data: pd.DataFrame, kind: str = "mean", new_groups: str = "population",
                summary: bool = True, prob: float = 0.95, seed: int = 0, dpar: str | None = None,
                re_formula: str | None = None):
        """Predict for new data.

        Parameters
        ----------
        new_data
            Rows to predict for; needs the predictor and grouping columns and those of
            any ``offset()``, not the response. A binomial model's ``"mean"`` and
            ``"posterior_predictive"`` also need the columns of the number of trials
            (``n`` of ``s | trials(n)``, ``size`` of ``cbind(s, size - s)``).
        kind
            ``"linear"`` (linear predictor, offset included), ``"mean"`` (expected
            response on the data scale: a probability for bernoulli, an expected count
            of successes for binomial, a rate times exposure for poisson, the expected
            category number 1..K for an ordinal model), ``"posterior_predictive"`` (new
            responses; integers for count families, category numbers 1..K for an ordinal
            model: ``fit.info.family.categories[k - 1]`` is category k) or ``"probs"``
            (an ordinal model's category probabilities).
        new_groups
            For levels not seen in fitting: ``"population"`` draws new effects from the
            fitted distribution, ``"zero"`` sets them to zero, ``"error"`` raises DataError.
        re_formula
            The group terms to include, as brms: None (all), ``"~ 0"`` (none: the
            population-level prediction, brms's ``re_formula = NA``) or ``"~ (1 | g)"``
            (only the effects named). The grouping columns of the terms left out need
            not be in ``new_data``.
        dpar
            A parameter of the family (``"sigma"``, ``"shape"``, ``"zi"`` ...) to predict
            instead of the response: its value (``kind="mean"``) or its linear predictor
            (``kind="linear"``), per row when it has a formula of its own.
        summary
            True: a copy of ``new_data`` with ``mean``, ``sd`` and interval columns (for
            ``"probs"``, in long form: one row per new row and ``category``).
            False: the draws, an array of shape ``(chains * draws, rows)`` (``"probs"``:
            ``(chains * draws, rows, categories)``).
        """
        draws = self._predict(self.idata.posterior, new_data, kind=kind, new_groups=new_groups, seed=seed,
                              dpar=dpar, re_formula=re_formula)
        if not summary:
            return draws
        if kind == "probs":
            return summarise_probabilities(draws, pd.DataFrame(new_data), self.info.family.categories, prob)
        return summarise_predictions(draws, pd.DataFrame(new_data), prob)

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
    def plot_trace(self, var_names: list[str] | None = None):
        """Density and trace of each parameter, chains coloured.

        ``var_names`` defaults to the fixed effects, auxiliary parameters, group sds and
        correlations; group effects can be named as in the summary (``Intercept|tree[3]``).
        """
        names = self.info.layout.scalar_names() if var_names is None else var_names
        return plots.plot_trace({name: parameter_draws(self.idata.posterior, name) for name in names})

    def plot_lines(self, x: str, color: str | None = None, group: str | None = None):
        """The data against ``x``, each group's fitted line over its own range of ``x`` (by
        default of the first grouping factor) and the population line of each ``color`` level.

        Lines are predictions (the family mean) at the posterior means of the parameters;
        a population line sets every grouping factor to a new level with no effect. The
        response is on the scale fitted (``log(dnow)``, not ``dnow``).
        """
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

    def _predict(self, posterior: xr.Dataset, frame: pd.DataFrame, **options) -> np.ndarray:
        """Draws of predictions for ``frame`` from the draws ``posterior`` (see ``predict``)."""
        info = self.info
        return predict_draws(posterior, info.spec, info.encoders, info.layout, info.family, frame, **options)

    def _fitted_data(self, what: str) -> tuple[pd.DataFrame, np.ndarray]:
        """The fitted rows of the columns the formula reads, and the response as fitted."""
        groups = self.idata.groups()
        if "constant_data" not in groups or "observed_data" not in groups:
            raise DataError(f"{what} needs the fitted data, and this fit has none (a fit of a Dask "
                                  "DataFrame keeps only sufficient statistics); fit a pandas DataFrame instead")
        data = self.idata.constant_data
        frame = pd.DataFrame({name: data[name].values for name in self.info.spec.variables()})
        return frame, self.idata.observed_data["y"].values

    def _group_codes(self, data: pd.DataFrame, term: GroupLayout) -> np.ndarray:
        """The level code of each row of ``data`` for the grouping factor of ``term``."""
        design = build_design(self.info.spec, data, na_action="error", encoders=self.info.encoders,
                              with_response=False)
        return design.groups[[g.name for g in self.info.layout.groups].index(term.name)].refs

    # -- persistence ---------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fit to netCDF atomically (a temporary file, then a rename).

        The written copy carries :class:`FitInfo` as JSON in the posterior's attribute
        ``META_KEY``, from which :func:`load` restores the fit; ``self.idata`` is not changed.
        """
        return write_fit_file(self.idata, self.info.to_json(), path)


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


def load(path: str | os.PathLike) -> Fit:
    """Restore a fit written by :meth:`Fit.save`.

    Raises
    ------
    DataError
        When there is no file at ``path``, or the file is not a fit written by
        :meth:`Fit.save`: not netCDF, netCDF (or HDF5) without the fit's
        ``multilevel`` attribute, or an attribute that cannot be read back.
    """
    idata, meta = read_fit_file(Path(path))
    try:
        info = FitInfo.from_json(meta)
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} has a {META_KEY!r} attribute that cannot be read back ({exc!r}); "
                        "it was not written by this version's fit.save(): refit and save again") from None
    return Fit(idata, info)
