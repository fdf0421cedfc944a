"""The model stage: one frozen record of everything a sampler needs, built by one function.

lme4 stages a fit as ``lFormula`` (formula and data to model frames),
``mkLmerDevfun`` (the objective), the optimiser and ``mkMerMod`` (the result);
here :func:`build_model` is the first two: formula, data, family and priors in,
a :class:`Model` out, from a pandas DataFrame (the rows) or a Dask DataFrame (the
sufficient statistics of a Gaussian model, computed where the data live). The
samplers take a Model and nothing else; :meth:`Model.log_density` gives the log
posterior to users who bring their own sampler (lme4's ``devFunOnly``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence

import jax
import numpy as np

from ..design import Design, Encoders, build_design, kept_columns
from ..design.distributed import distributed_statistics, is_dask_frame
from ..design.groups import GroupStructure, chain_structure
from ..design.suffstats import SuffStats
from ..design.summary import DataSummary, summarise
from ..errors import DataError, FormulaError
from ..formula import Formula, to_spec
from ..formula.spec import FormulaSpec
from .families import FAMILIES, Family, Gaussian, check_response, get_family
from .layout import SE_KNOWN, GroupLayout, Layout
from .logdensity import Position, initial_position, make_logdensity, model_data, structure
from .rownoise import RowNoise, row_noise
from .weights import check_whole_successes, with_weights
from .prior_table import PriorSet, resolve_priors
from .priors import Prior


@dataclass(frozen=True, eq=False)
class Model:
    """A model ready to sample: what it is (spec, family, priors, layout, grouping
    structure) and its data, as rows (``design``) or as sufficient statistics only
    (``stats``, from a Dask DataFrame; then ``design`` is None).

    ``summary`` holds the row sums of the response as given (default priors,
    starting values); ``source`` says where the data came from; ``columns`` the data
    columns the formula reads at the rows used (for plots; None for Dask).
    """

    spec: FormulaSpec
    family: Family
    layout: Layout
    priors: PriorSet
    structure: GroupStructure
    encoders: Encoders
    summary: DataSummary
    num_rows: int
    design: Design | None = None
    stats: SuffStats | None = None
    source: str = "pandas DataFrame"
    columns: Mapping[str, np.ndarray] | None = field(default=None, compare=False)

    @property
    def has_rows(self) -> bool:
        return self.design is not None

    def working_design(self) -> Design:
        """The design with the working response (the response on the link scale: y itself, log y
        for the lognormal, a smoothed logit or log for the others) less the offset. For a
        Gaussian-marginal family it is what the exact samplers fit (``z - o = X b + Z r + e``);
        for every family, what starting values come from."""
        design = self.design
        z = np.asarray(self.family.working_response(design.y, design.trials), dtype=float)
        return replace(design, y=z if design.offset is None else z - design.offset, offset=None)

    def row_noise(self) -> RowNoise:
        """How the rows' weights and known standard errors enter the exact samplers' Gaussian
        algebra (:mod:`multilevel.model.rownoise`); needs the rows."""
        return row_noise(self.design, self.layout)

    @property
    def deviance_shift(self) -> float:
        """What to add to the deviance the exact samplers compute, that of the Gaussian working
        response with precision weights (:mod:`multilevel.model.rownoise`), to get that of y:
        ``-2 Σ w_i log |dz_i/dy_i|`` (0 for a Gaussian, ``2 Σ w_i log y_i`` for a lognormal),
        plus ``Σ w_i log s_i²`` when known standard errors are the sd."""
        if self.design is None:
            return 0.0
        shift = -2.0 * self.family.log_jacobian(self.design.y, self.design.weights)
        return shift + self.row_noise().log_det if self.layout.se == SE_KNOWN else shift

    def log_density(self) -> tuple[Callable[[Position], jax.Array], Position]:
        """``(f, position)``: the log posterior density of the full model as a function
        of the unconstrained, non-centred :class:`~multilevel.model.logdensity.Position`
        (``b``, ``aux``, and per group term ``sd``, ``cor``, ``z``), and a starting
        position near the data.

        Call ``f`` inside ``jax.enable_x64(True)``; it is jittable and differentiable.
        """
        if self.design is None:
            raise DataError("the model was built from a Dask DataFrame, without its rows; the full log density "
                            "needs them: compute a pandas DataFrame")
        with jax.enable_x64(True):
            data = model_data(self.design, self.priors)
        logdensity = make_logdensity(structure(self.layout, self.family))
        summary = summarise(self.working_design())
        start = initial_position(np.random.default_rng(0), summary, self.layout, self.priors, self.family,
                                 max(float(summary.y_sd), 1e-6))
        return (lambda position: logdensity(position, data)), start


def build_model(formula: str | Sequence[str] | Formula | FormulaSpec, data, *, family: str | Family = "gaussian",
                priors: Mapping[str, Prior | str] | None = None, na_action: str = "drop",
                weights: str | None = None) -> Model:
    """Parse, build the design (or, for Dask, the sufficient statistics) and resolve the priors.

    ``formula``: a formula string; or, for a distributional model, a :class:`Formula`
    or a list of formula strings, the response's first, then one per predicted
    parameter of the family (``["y ~ x", "sigma ~ x"]``). ``weights``: a column, the trials
    of a proportion or likelihood weights (:mod:`multilevel.model.weights`).

    Raises
    ------
    FormulaError, DataError, PriorError, FamilyError
        For a formula, data, priors or family that do not make a model.
    """
    spec = to_spec(formula, columns=_column_names(data))
    family = get_family(family)
    proportion = weights is not None and family.needs_trials and not spec.has_trials
    spec = with_weights(spec, family, weights)
    check_dpars(spec, family)
    check_addition_terms(spec, family)
    if is_dask_frame(data):
        return _distributed_model(spec, data, family, priors, na_action)
    design = build_design(spec, data, na_action=na_action)
    if proportion:
        check_whole_successes(spec, data, design)
    family, design = family.prepare(design)
    check_response(family, design.y, design.trials, design.row_index, design.response, spec.has_trials)
    layout = Layout.of(design, family)
    _check_unique_names(layout)
    return Model(spec, family, layout, resolve_priors(design, layout, priors, family), design.structure,
                 design.encoders, summarise(design), design.num_rows, design=design,
                 columns=kept_columns(spec, data, design))


def _column_names(data) -> list[str] | None:
    """The data's column names (a data frame's or a dict's keys), which R's ``.`` stands for."""
    if hasattr(data, "columns"):
        return [str(c) for c in data.columns]
    return [str(c) for c in data] if isinstance(data, Mapping) else None


def check_dpars(spec: FormulaSpec, family: Family) -> None:
    """Each parameter formula must name a parameter of the family that may be predicted."""
    predictable = {p.name: p for p in family.params if p.predictable}
    for dpar in spec.dpars:
        if dpar.name not in predictable:
            has = (f"its parameters are {', '.join(predictable)}" if predictable
                   else "it has no parameter to predict besides the mean")
            raise FormulaError(f"{dpar.formula!r}: the {family} family has no parameter {dpar.name!r}; {has}")
        fixed = predictable[dpar.name].fixed
        if fixed is not None and dpar.fixed.intercept:
            raise FormulaError(f"{dpar.formula!r}: {dpar.name} is {fixed:g} where the predictors are 0, which fixes "
                               f"the scale of the model: drop the intercept ({dpar.name} ~ 0 + ...)")


def check_addition_terms(spec: FormulaSpec, family: Family) -> None:
    """``se()`` only for a family with a residual sd (:attr:`Family.takes_se`), and not with a
    formula for ``sigma`` unless ``sigma = TRUE`` keeps it a parameter; ``cens()`` and
    ``trunc()`` only for a family with a distribution function (:attr:`Family.takes_bounds`)."""
    check_bounds_family(spec, family)
    if spec.se is None:
        return
    if not family.takes_se:
        takes = [name for name, cls in FAMILIES.items() if cls.takes_se]
        raise FormulaError(f"{spec.se}: known standard errors replace a residual sd, which the {family.name} family "
                           f"does not have; se() takes the {' and '.join(takes)} families (or drop it and use "
                           "weights() to weigh rows)")
    if not spec.se.sigma and "sigma" in (d.name for d in spec.dpars):
        raise FormulaError(f"{spec.se}: without sigma each row's sd is its standard error, so sigma has no formula "
                           f"to take; write se({spec.se.values}, sigma = TRUE) to estimate a sigma besides it")


def check_bounds_family(spec: FormulaSpec, family: Family) -> None:
    """Censoring and truncation need the family's distribution function."""
    term = spec.cens if spec.cens is not None else spec.trunc
    if term is None or family.takes_bounds:
        return
    takes = [name for name, cls in FAMILIES.items() if cls().takes_bounds]
    raise FormulaError(f"{term}: the {family.name} family has no distribution function to censor or truncate "
                       f"its responses by (its outcomes are categories, or its CDF has no closed form here); "
                       f"cens() and trunc() take the {', '.join(takes)} families")


def _check_unique_names(layout: Layout) -> None:
    seen: set[str] = set()
    for name in layout.fixed:
        if name in seen:
            raise FormulaError(f"two coefficients are named {name!r} (a column of the data and a parameter's "
                               "coefficient): rename the column")
        seen.add(name)


def _distributed_model(spec: FormulaSpec, frame, family: Family, priors, na_action: str) -> Model:
    """A Gaussian model of a Dask DataFrame, from sufficient statistics computed by Dask."""
    if spec.dpars:
        raise DataError("a Dask DataFrame is fitted from the sufficient statistics of a Gaussian model with one "
                        f"sigma; {', '.join(d.name for d in spec.dpars)} has a formula of its own: compute a "
                        "pandas DataFrame")
    if spec.offsets or spec.has_trials or spec.se is not None or spec.weights is not None \
            or spec.cens is not None or spec.trunc is not None:
        raise DataError("a Dask DataFrame is fitted from sufficient statistics, which do not take offsets, "
                        "trials, se(), weights(), cens() or trunc() yet: compute a pandas DataFrame")
    if not isinstance(family, Gaussian):
        raise DataError(f"a Dask DataFrame is fitted from the sufficient statistics of a Gaussian model; the "
                        f"{family.name} family has none (for a lognormal model, write log(y) ~ ... with the "
                        "gaussian family): compute a pandas DataFrame")
    distributed = distributed_statistics(spec, frame, na_action)
    structures = [parts[0][1].structure for parts in spec.group_terms()]     # cs(), in the design's order
    layout = Layout(distributed.columns, family.aux, tuple(
        GroupLayout(name, columns, distributed.encoders.levels[name], correlated, structure=structure)
        for (name, columns, correlated), structure in zip(distributed.group_terms, structures)))
    names = tuple(name for name, _, _ in distributed.group_terms)
    group_structure = chain_structure(names, distributed.order,
                                      {name: len(distributed.encoders.levels[name]) for name in names})
    return Model(spec, family, layout, resolve_priors(distributed.summary, layout, priors, family),
                 group_structure, distributed.encoders, distributed.summary, int(distributed.summary.n),
                 stats=distributed.stats, source=f"Dask DataFrame ({distributed.num_partitions} partitions)")
