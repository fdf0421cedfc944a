"""Build the :class:`Design` of a formula on a data frame.

The fixed effects are a dense ``n × p`` matrix ``X`` (p is small). Each group
term is stored as MixedModels.jl's ``ReMat``: ``refs`` (``int32[n]``, the level
of each row) and a small dense ``z`` (``n × q``, the term's own columns), so
that the random-effects part of the linear predictor is
``sum_j z[i, j] * r[refs[i], j]`` and never a dense ``n × levels·q`` matrix.
The ``offset`` (the sum of the formula's ``offset()`` terms) is added to the
linear predictor as it is; ``trials`` is the number of binomial trials of each
row (``cbind(s, f)`` or ``s | trials(n)``), and ``y`` then counts the successes;
``se`` the known standard error of each row's response (``y | se(s)``, finite and
``>= 0``; ``> 0`` unless ``sigma = TRUE`` adds an estimated sd to it) and
``weights`` each row's likelihood weight (``y | weights(w)``, finite, ``>= 0``, not
all 0); ``bounds`` the censoring codes and truncation windows of ``cens()`` and
``trunc()`` (:mod:`multilevel.design.bounds`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import jax
import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError
from ..formula.spec import FormulaSpec, GroupTerm, Var
from .bounds import ResponseBounds, response_bounds
from .coding import model_columns
from .columns import Encoders, Evaluator, column, factor_column, is_numeric, level_labels, sorted_levels
from .groups import GroupStructure, group_structure
from .logical import is_logical, logical_levels


@dataclass(frozen=True)
class GroupData:
    """One group term: ``(columns | name)`` with its per-row level and effect columns.

    ``refs[i]`` is the index of row i's level in ``levels``. When new data are
    encoded for prediction, a level not seen in fitting has the negative
    ``refs[i] == -1 - k`` for ``new_levels[k]``. ``dpars`` names, per column, the
    distributional parameter whose formula the column is in ("" for the response's
    mean); such a column carries the parameter's name as a prefix (``sigma_Intercept``).
    A term joins columns of several formulas when they share an ID (``(1 |p| g)``).
    ``structure`` is ``"cs"`` for a compound-symmetric term (``cs(x | g)``), else "".
    """

    name: str
    columns: tuple[str, ...]
    levels: tuple[str, ...]
    correlated: bool
    refs: np.ndarray
    z: np.ndarray
    new_levels: tuple[str, ...] = ()
    dpars: tuple[str, ...] = ()
    structure: str = ""

    def __post_init__(self):
        if not self.dpars:
            object.__setattr__(self, "dpars", ("",) * len(self.columns))

    @property
    def num_levels(self) -> int:
        return len(self.levels)

    @property
    def dpar(self) -> str | None:
        """The one formula of the term's columns ("" the mean's), or None when it joins several."""
        return self.dpars[0] if len(set(self.dpars)) == 1 else None

    @property
    def q(self) -> int:
        return len(self.columns)

    def effect_names(self) -> tuple[str, ...]:
        """Posterior variable names of the group effects: ``Intercept|tree``."""
        return tuple(f"{c}|{self.name}" for c in self.columns)


@dataclass(frozen=True)
class Design:
    """Everything the model needs from the data, and what predict needs to redo it.

    ``y`` is None when the design was built for prediction without a response.
    ``structure`` (the grouping factors and their nesting) is computed when fitting;
    a design built for prediction has an empty one. ``kept_rows`` are the positions
    in the data frame of the rows used (those without a missing value). A categorical
    response (strings, a pandas Categorical) is held as category numbers 1..K in ``y``,
    with its categories in ``response_levels`` (in their order); the family decides
    whether it takes one (:meth:`~multilevel.model.families.Family.prepare`).
    ``offset`` is None without ``offset()`` terms, ``trials`` None without a binomial
    response (or, for prediction, when the data lack the trials' columns); likewise
    ``se`` without ``se()`` (or its columns, for prediction), and ``weights`` without
    ``weights()`` or without the response (predictions ignore weights); ``bounds`` holds
    the censoring of ``cens()`` (with the response) and the windows of ``trunc()`` (with
    the response, or for prediction when the data have the bounds' columns), None without.
    A distributional model's predicted parameters have their columns after the mean's
    in ``X``, named with the parameter as a prefix (``sigma_x``); ``column_dpars`` says
    whose each column is ("" for the mean), and their group terms follow the mean's.
    Array fields are the pytree children; names and encoders are static.
    """

    spec: FormulaSpec
    response: str
    columns: tuple[str, ...]
    groups: tuple[GroupData, ...]
    encoders: Encoders
    X: np.ndarray
    y: np.ndarray | None
    dropped_rows: int = 0
    row_index: pd.Index | None = field(default=None, compare=False)
    offset: np.ndarray | None = None
    trials: np.ndarray | None = None
    structure: GroupStructure = GroupStructure()
    kept_rows: np.ndarray | None = field(default=None, compare=False)
    response_levels: tuple[str, ...] | None = None
    column_dpars: tuple[str, ...] = ()
    se: np.ndarray | None = None
    weights: np.ndarray | None = None
    bounds: ResponseBounds | None = None

    @property
    def num_rows(self) -> int:
        return self.X.shape[0]

    def keep_columns(self, keep: list[int]) -> "Design":
        """The design with only the fixed-effect columns ``keep``."""
        return replace(self, X=self.X[:, keep], columns=tuple(self.columns[j] for j in keep),
                       column_dpars=tuple(self.column_dpars[j] for j in keep))


def _flatten_design(d: Design):
    children = (d.X, d.y, tuple((g.refs, g.z) for g in d.groups), d.offset, d.trials, d.se, d.weights, d.bounds)
    meta = (d.spec, d.response, d.columns,
            tuple((g.name, g.columns, g.levels, g.correlated, g.new_levels, g.dpars, g.structure) for g in d.groups),
            d.encoders, d.dropped_rows, d.row_index, d.structure, d.kept_rows, d.response_levels, d.column_dpars)
    return children, meta


def _unflatten_design(meta, children) -> Design:
    spec, response, columns, group_meta, encoders, dropped, index, structure, kept, levels, column_dpars = meta
    X, y, group_arrays, offset, trials, se, weights, bounds = children
    groups = tuple(GroupData(*gm[:4], *ga, *gm[4:]) for gm, ga in zip(group_meta, group_arrays))
    return Design(spec, response, columns, groups, encoders, X, y, dropped, index, offset, trials, structure, kept,
                  levels, column_dpars, se, weights, bounds)


jax.tree_util.register_pytree_node(Design, _flatten_design, _unflatten_design)


def build_design(spec: FormulaSpec, data: pd.DataFrame, *, na_action: str = "drop",
                 encoders: Encoders | None = None, with_response: bool = True) -> Design:
    """Evaluate ``spec`` on ``data``.

    Parameters
    ----------
    spec
        The parsed formula.
    data
        The data frame; never modified.
    na_action
        ``"drop"`` drops rows with a missing value in any column the formula uses,
        with a warning; ``"error"`` raises DataError instead.
    encoders
        None when fitting (levels and transform statistics are learned); the
        fitted model's encoders when encoding new data for prediction, in which
        case group levels never seen in fitting get ``refs == -1``.
    with_response
        Whether to evaluate the response (prediction data need not have it). The
        trials of a binomial response and the standard errors of ``se()`` are evaluated
        with it, or, without it, when the data have their columns; the weights of
        ``weights()`` only with it.

    Raises
    ------
    DataError
        For missing or non-finite values (with ``na_action="error"``), and standard
        errors or weights out of their range, naming the column and the rows.
    """
    if not isinstance(data, pd.DataFrame):
        try:
            data = pd.DataFrame(data)
        except Exception as exc:
            raise DataError(f"data must be a pandas DataFrame or a dict of columns: {exc}") from None
    if na_action not in ("drop", "error"):
        raise DataError(f"na_action must be 'drop' or 'error', got {na_action!r}")
    if len(data) == 0:
        raise DataError("the data frame is empty: there is nothing to fit")
    used = spec.variables(response=with_response)
    with_trials = spec.has_trials and (with_response or all(c in data.columns for c in spec.trials_variables()))
    if with_trials and not with_response:
        used = tuple(dict.fromkeys(used + spec.trials_variables()))
    with_se = spec.se is not None and (with_response or all(c in data.columns for c in spec.se_variables()))
    if with_se and not with_response:
        used = tuple(dict.fromkeys(used + spec.se_variables()))
    with_trunc = spec.trunc is not None and (with_response or all(c in data.columns
                                                                 for c in spec.bound_variables("trunc")))
    if with_trunc and not with_response:
        used = tuple(dict.fromkeys(used + spec.bound_variables("trunc")))
    for name in used + (spec.bound_variables("y2") if with_response else ()):
        column(data, name)
    num_rows = len(data)
    data, kept_rows = _drop_missing(data, used, na_action)
    _check_finite_columns(data, used)

    evaluator = Evaluator(data, encoders)
    y = response_levels = None
    response = str(spec.response)
    if with_response:
        y = evaluator.evaluate(spec.successes)
        if is_logical(spec.successes):           # Reaction > 250 ~ ...: TRUE is 1, as in R; its levels
            logical_levels(evaluator, spec.successes, y)  # FALSE, TRUE are kept for the summary header
        declared = _declared_categories(data, spec)
        if declared is not None:                 # an ordered Categorical keeps its unobserved categories
            response_levels = tuple(str(c) for c in declared.categories)
            y = declared.codes.astype(np.float64) + 1.0
        elif isinstance(y, pd.Categorical):
            response_levels = tuple(str(c) for c in y.categories)
            y = y.codes.astype(np.float64) + 1.0
        _check_finite(y, response, data.index)
    trials = None
    if with_trials:
        trials = evaluator.numeric(spec.trials_expr, "the number of trials")
        _check_finite(trials, f"the number of trials {spec.trials_expr}", data.index)
    se = weights = None
    if with_se:
        se = evaluator.numeric(spec.se.values, "se()")
        _check_standard_errors(se, spec, data.index)
    if with_response and spec.weights is not None:
        weights = evaluator.numeric(spec.weights.values, "weights()")
        _check_weights(weights, spec, data.index)
    bounds = response_bounds(spec, evaluator, y, with_trunc)
    offset = None
    for expr in spec.offsets:
        value = evaluator.numeric(expr, "offset()")
        _check_finite(value, f"offset({expr})", data.index)
        offset = value if offset is None else offset + value
    X, columns = model_columns(spec.fixed, evaluator)
    column_dpars = ("",) * len(columns)
    for dpar in spec.dpars:
        X_dpar, names = model_columns(dpar.fixed, evaluator)
        X, columns = np.hstack([X, X_dpar]), columns + tuple(f"{dpar.name}_{c}" for c in names)
        column_dpars += (dpar.name,) * len(names)
    groups = tuple(_joined(tuple(_dpar_group(_group_data(term, evaluator, encoders is None), dpar)
                                 for dpar, term in parts)) for parts in spec.group_terms())
    _check_finite_matrix(X, columns, data.index)
    _check_unique_effects(groups)
    structure = GroupStructure()
    if encoders is None:
        structure = group_structure(tuple(g.name for g in groups), tuple(g.refs for g in groups),
                                    tuple(g.num_levels for g in groups))
    design = Design(spec, response, columns, groups, evaluator.encoders(), X, y,
                    dropped_rows=num_rows - len(data), row_index=data.index, offset=offset, trials=trials,
                    structure=structure, kept_rows=kept_rows, response_levels=response_levels,
                    column_dpars=column_dpars, se=se, weights=weights, bounds=bounds)
    if encoders is None:
        for dpar in dict.fromkeys(column_dpars):
            keep = [j for j, d in enumerate(column_dpars) if d == dpar]
            _warn_rank_deficient(X[:, keep], tuple(columns[j] for j in keep))
    return design


def _declared_categories(data: pd.DataFrame, spec: FormulaSpec) -> pd.Categorical | None:
    """The response column itself when it is an ordered pandas Categorical: its categories,
    observed or not, are the response's levels (an unobserved category keeps its threshold)."""
    if not isinstance(spec.successes, Var) or spec.successes.name not in data.columns:
        return None
    column = data[spec.successes.name]
    if isinstance(column.dtype, pd.CategoricalDtype) and column.cat.ordered:
        return pd.Categorical(column)
    return None


def kept_columns(spec: FormulaSpec, data: pd.DataFrame, design: Design) -> dict[str, np.ndarray]:
    """The data columns ``spec`` reads, at the rows ``design`` kept, for plots of the fit.

    Numeric columns as float64, the others as strings; only the columns the formula
    uses, so the cost is that of a few more copies of ``y``.
    """
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    out = {}
    for name in spec.variables():
        series = frame[name].iloc[design.kept_rows]
        out[name] = series.to_numpy(dtype=np.float64) if is_numeric(series) else series.to_numpy(dtype=str)
    return out


def _drop_missing(data: pd.DataFrame, used: tuple[str, ...], na_action: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows without a missing value in ``used``, and their positions in ``data``."""
    missing = data[list(used)].isna()
    rows = missing.any(axis=1).to_numpy()
    if not rows.any():
        return data, np.arange(len(data))
    counts = missing.sum()
    where = ", ".join(f"{c} ({n})" for c, n in counts[counts > 0].items())
    if na_action == "error":
        raise DataError(f"{int(rows.sum())} rows have missing values in {where}; "
                        "drop them first or use na_action='drop'")
    kept = data.loc[~rows]
    if len(kept) == 0:
        raise DataError(f"every row has a missing value (in {where}): nothing is left to fit")
    warnings.warn(f"dropped {int(rows.sum())} of {len(data)} rows with missing values in {where}",
                  stacklevel=3)
    return kept, np.flatnonzero(~rows)


def _check_finite_columns(data: pd.DataFrame, used: tuple[str, ...]) -> None:
    for name in used:
        series = data[name]
        if is_numeric(series):
            _check_finite(series.to_numpy(dtype=np.float64), f"column {name!r}", data.index)


def _check_finite(values: np.ndarray, what: str, index: pd.Index) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        rows = ", ".join(map(str, index[bad][:5]))
        raise DataError(f"{what} has {int(bad.sum())} non-finite values (rows {rows}"
                        f"{', ...' if bad.sum() > 5 else ''}); a transform such as log() of a "
                        "value <= 0 gives these: fix or drop those rows")


def _rows(mask: np.ndarray, index: pd.Index) -> str:
    """The labels of the rows in ``mask``, the first five and a count."""
    shown = ", ".join(map(str, index[mask][:5]))
    return f"rows {shown}{', ...' if mask.sum() > 5 else ''} ({int(mask.sum())} in all)"


def _check_standard_errors(se: np.ndarray, spec: FormulaSpec, index: pd.Index) -> None:
    """Standard errors are finite and ``>= 0``; ``> 0`` when they are the whole sd (no sigma)."""
    what = f"the standard errors {spec.se.values} of {spec.se}"
    _check_finite(se, what, index)
    if (se < 0).any():
        raise DataError(f"{what} are negative in {_rows(se < 0, index)}: a standard error is >= 0; "
                        "fix or drop those rows")
    if not spec.se.sigma and (se == 0).any():
        raise DataError(f"{what} are 0 in {_rows(se == 0, index)}: without sigma a row's sd is its standard "
                        "error, and 0 would make it exact; give it a positive one, or write "
                        f"se({spec.se.values}, sigma = TRUE) to add an estimated sigma")


def _check_weights(weights: np.ndarray, spec: FormulaSpec, index: pd.Index) -> None:
    """Weights are finite, ``>= 0`` and not all 0."""
    what = f"the weights {spec.weights.values} of {spec.weights}"
    _check_finite(weights, what, index)
    if (weights < 0).any():
        raise DataError(f"{what} are negative in {_rows(weights < 0, index)}: a weight multiplies a row's "
                        "log-likelihood and must be >= 0; fix or drop those rows")
    if not (weights > 0).any():
        raise DataError(f"{what} are 0 in every row: no row would count; give some rows a positive weight")


def _check_finite_matrix(X: np.ndarray, columns: tuple[str, ...], index: pd.Index) -> None:
    for j, name in enumerate(columns):
        _check_finite(X[:, j], f"predictor {name}", index)


def _group_data(term: GroupTerm, evaluator: Evaluator, learn: bool) -> GroupData:
    z, columns = model_columns(term.effects, evaluator)
    _check_finite_matrix(z, columns, evaluator.data.index)
    name = term.group_name
    series = [column(evaluator.data, factor_column(factor)) for factor in term.group]
    if len(series) == 1:
        labels = level_labels(series[0])
    else:
        labels = pd.Series([":".join(v) for v in zip(*(level_labels(s) for s in series))],
                           index=evaluator.data.index)
    if learn:
        levels = sorted_levels(series[0] if len(series) == 1 else labels)
        if len(levels) < 2:
            raise DataError(f"grouping factor {name!r} has a single level ({levels[0]!r}): "
                            "group effects need at least two groups; drop the term")
        evaluator.levels[name] = levels
    levels = evaluator.levels[name]
    lookup = {level: i for i, level in enumerate(levels)}
    new_levels = tuple(dict.fromkeys(label for label in labels.unique() if label not in lookup))
    lookup.update({label: -1 - k for k, label in enumerate(new_levels)})
    refs = labels.map(lookup).to_numpy(dtype=np.int32)
    return GroupData(name, columns, tuple(levels), term.correlated, refs, z, new_levels, structure=term.structure)


def _dpar_group(group: GroupData, dpar: str) -> GroupData:
    """A group term of the formula of parameter ``dpar`` ("" the mean), its columns named with the prefix."""
    if not dpar:
        return group
    return replace(group, columns=tuple(f"{dpar}_{c}" for c in group.columns), dpars=(dpar,) * group.q)


def _joined(parts: tuple[GroupData, ...]) -> GroupData:
    """Terms on one factor that share an ID, as one correlated term (their columns in order)."""
    first = parts[0]
    if len(parts) == 1:
        return first
    return replace(first, columns=sum((g.columns for g in parts), ()), correlated=True,
                   z=np.hstack([g.z for g in parts]), dpars=sum((g.dpars for g in parts), ()))


def _check_unique_effects(groups: tuple[GroupData, ...]) -> None:
    seen: set[str] = set()
    for g in groups:
        for name in g.effect_names():
            if name in seen:
                raise FormulaError(f"the effect {name} appears in two group terms; "
                                   "give each effect once per grouping factor")
            seen.add(name)


def _warn_rank_deficient(X: np.ndarray, columns: tuple[str, ...]) -> None:
    if X.shape[1] == 0:
        return
    scale = np.sqrt(np.maximum((X * X).sum(axis=0), 1e-300))
    gram = (X.T @ X) / np.outer(scale, scale)
    eig = np.linalg.eigvalsh(gram)
    rank = int(np.sum(eig > eig.max() * 1e-10))
    if rank < X.shape[1]:
        warnings.warn(f"the fixed-effects design is rank deficient (rank {rank} < {X.shape[1]} "
                      f"columns: {', '.join(columns)}); the posterior is identified by the priors "
                      "alone along the redundant directions", stacklevel=3)
