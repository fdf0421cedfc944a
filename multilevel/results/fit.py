"""The Fit: an ArviZ InferenceData plus what is needed to summarise and predict.

A Fit is ``fit.idata`` (the draws) and ``fit.info`` (formula spec, encoders,
parameter layout, family, priors used, sampler information); neither is changed
after the Fit is built. ``save`` writes ``fit.info`` as JSON into the posterior's
attributes of the file written, so ``load`` restores a fit that can summarise and
predict without the original data frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import xarray as xr

from ..design import Encoders, build_design
from ..errors import DataError
from ..formula.spec import FormulaSpec, spec_from_dict, spec_to_dict
from ..model.families import Family, get_family
from ..model.layout import GroupLayout, Layout
from . import accessors, criteria
from .display import as_html, as_text, make_report
from .fit_answers import AnswersMixin
from .fit_plotting import PlotsMixin
from .fit_refits import RefitsMixin
from .predict import predict_draws, summarise_predictions, summarise_probabilities
from .response_levels import modelled_level
from .storage import META_KEY, read_fit_file, write_fit_file
from .summary import check_table, coda_table, convergence_messages, summary_table

if TYPE_CHECKING:
    import arviz as az


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


class Fit(AnswersMixin, PlotsMixin, RefitsMixin):
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

    def __init__(self, idata: az.InferenceData | Callable[[], az.InferenceData], info: FitInfo,
                 posterior: xr.Dataset | None = None, sample_stats: Mapping[str, np.ndarray] | None = None):
        """``idata``: the InferenceData, or a function that builds it, called at the first
        use of ``fit.idata``; then ``posterior`` (``idata.posterior`` to be) and
        ``sample_stats`` (its arrays) serve the summaries until it is built."""
        self._idata = idata
        self._info = info
        self._early = (posterior, sample_stats or {})
        # the diagnostics computed so far (column -> array), of the stacks without and with the
        # group effects: the draws never change, so each is computed once per fit
        self._diagnosed: tuple[dict, dict] = ({}, {})

    @property
    def idata(self) -> az.InferenceData:
        """The draws (read-only attribute)."""
        if callable(self._idata):
            self._idata = self._idata()
        return self._idata

    @property
    def _posterior(self) -> xr.Dataset:
        """``idata.posterior``, without building the InferenceData when it is not built yet."""
        if callable(self._idata) and self._early[0] is not None:
            return self._early[0]
        return self.idata.posterior

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
        stats = self._early[1] if callable(self._idata) else self.idata.sample_stats
        return int(np.sum(stats["diverging"])) if "diverging" in stats else 0

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
            return coda_table(self._posterior, self.info.layout, group_effects, *self._diagnostics_memos(group_effects))
        if style != "default":
            raise DataError(f"style must be 'default' or 'coda', got {style!r}")
        return summary_table(self._posterior, self.info.layout, self.seconds, prob, group_effects,
                             *self._diagnostics_memos(group_effects))

    def _diagnostics_memos(self, group_effects: bool) -> tuple[dict, dict | None]:
        """The memo of the diagnostics of the parameter stack with (or without) the group
        effects, and that of the stack with them (which begins with the other's parameters)."""
        return (self._diagnosed[1], None) if group_effects else (self._diagnosed[0], self._diagnosed[1])

    def diagnostics(self) -> list[str]:
        """Convergence problems, each with a remedy (empty when all is well).

        Every parameter is checked, except the group effects of a sampler that draws
        them exactly from their conditional given the other parameters (the collapsed
        sampler): they mix exactly as well as the parameters checked (and there may be
        tens of thousands of them).
        """
        posterior = self._posterior
        num_draws = posterior.sizes["chain"] * posterior.sizes["draw"]
        group_effects = not self.info.sampler_info.get("exact_group_effects")
        table = check_table(posterior, self.info.layout, group_effects, *self._diagnostics_memos(group_effects))
        return convergence_messages(table, self.num_divergent, num_draws)

    def header(self) -> str:
        info = self.info.sampler_info
        posterior = self._posterior
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
        return accessors.fixef(self._posterior, self.info.layout, summary, prob)

    def ranef(self, summary: bool = True, prob: float = 0.95) -> pd.DataFrame:
        """Each level's deviations from the population-level effects (brms's ``ranef``).

        Returns the tidy long table, columns ``group``, ``level``, ``term``, ``mean``,
        ``sd`` and the interval (``summary=True``), or the draws with MultiIndex columns
        ``(group, level, term)`` (``summary=False``); see :func:`.accessors.ranef`.
        """
        return accessors.ranef(self._posterior, self.info.layout, summary, prob)

    def coef(self, summary: bool = True, prob: float = 0.95) -> pd.DataFrame:
        """Each level's coefficients, population effect plus deviation draw by draw (brms's
        ``coef``), in the shape of :meth:`ranef`; see :func:`.accessors.coef`."""
        return accessors.coef(self._posterior, self.info.layout, summary, prob)

    def varcorr(self, summary: bool = True, prob: float = 0.95) -> pd.DataFrame:
        """Group-level sds, correlations and covariances per factor, and the residual sd.

        Tidy, columns ``group``, ``term1``, ``term2``, ``kind`` (``sd``, ``cor``, ``cov``),
        ``mean``, ``sd`` and the interval (``summary=True``), or the draws with those
        four keys as MultiIndex columns (``summary=False``); see :func:`.accessors.varcorr`.
        """
        return accessors.varcorr(self._posterior, self.info.layout, summary, prob)

    # -- hypotheses and R² (see multilevel.results.hypothesis and .r2) --------------------
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
        draws = self._predict(self._posterior, new_data, kind=kind, new_groups=new_groups, seed=seed,
                              dpar=dpar, re_formula=re_formula)
        if not summary:
            return draws
        if kind == "probs":
            return summarise_probabilities(draws, pd.DataFrame(new_data), self.info.family.categories, prob)
        return summarise_predictions(draws, pd.DataFrame(new_data), prob)

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
