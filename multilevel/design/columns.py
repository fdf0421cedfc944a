"""Evaluate formula expressions on a data frame, with the fixed set of transforms.

A value is either numeric (a float64 array) or categorical (a
:class:`pandas.Categorical` whose categories are the levels, in order).
Stateful transforms (``scale``, ``center``, and the bases ``poly``, ``ns``, ``bs``
of :mod:`multilevel.design.transforms`, whose value is a matrix of columns) and factor levels are learned from
the fitting data into :class:`Encoders` and reapplied unchanged to new data,
so ``predict`` sees the same columns as ``fit``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from ..errors import DataError
from ..formula.rcalls import R_FUNCTIONS
from ..formula.spec import BinOp, Call, Expr, Neg, Not, Num, Str, Var
from .logical import LOGICAL_OPS, evaluate_logical
from .rfunctions import evaluate_r_call
from .transforms import BASES, BasisState, apply_basis, learn_basis

_UNARY = {
    "log": np.log, "log1p": np.log1p, "log2": np.log2, "log10": np.log10,
    "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs,
}
_BINARY = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power}


@dataclass(frozen=True)
class Encoders:
    """What fitting learned about the data, needed to encode new data the same way.

    Attributes
    ----------
    levels
        Levels of each categorical factor, keyed by the factor's text (``"cheese"``,
        ``"C(year)"``) and of each grouping factor (``"tree"``, ``"a:b"``).
    stats
        ``(mean, sd)`` of each ``scale()``/``center()`` argument, keyed by the call's text.
    bases
        What each ``poly()``/``ns()``/``bs()`` learned (R's ``coefs``, the knots), keyed
        by the call's text (:func:`~multilevel.design.transforms.learn_basis`).
    smooths
        The basis of each smooth term (a :class:`~multilevel.design.smooths.SmoothState`),
        keyed by the term's text (``"s(x)"``).
    numeric
        The variables read as numbers (a column that is also a grouping factor, as ``num``
        in ``y ~ num + (1 | num)``, has levels too, and is still a number in the fixed part).
    ordered
        The factors coded with polynomial contrasts (ordered when fitted: new data need
        not carry the order).
    """

    levels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    stats: dict[str, tuple[float, float]] = field(default_factory=dict)
    bases: dict[str, BasisState] = field(default_factory=dict)
    smooths: dict[str, Any] = field(default_factory=dict)
    numeric: frozenset[str] = frozenset()
    ordered: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        return {"levels": {k: list(v) for k, v in self.levels.items()},
                "stats": {k: list(v) for k, v in self.stats.items()},
                "bases": {k: {name: list(v) for name, v in state.items()} for k, state in self.bases.items()},
                "smooths": {k: v.to_dict() for k, v in self.smooths.items()},
                "numeric": sorted(self.numeric), "ordered": sorted(self.ordered)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Encoders":
        from .smooths import SmoothState   # which imports this module
        return cls({k: tuple(v) for k, v in data["levels"].items()},
                   {k: tuple(v) for k, v in data["stats"].items()},
                   {k: {name: tuple(v) for name, v in state.items()} for k, state in data.get("bases", {}).items()},
                   {k: SmoothState.from_dict(v) for k, v in data.get("smooths", {}).items()},
                   frozenset(data.get("numeric", ())), frozenset(data.get("ordered", ())))


def is_numeric(series: pd.Series) -> bool:
    """Numbers are numeric; strings, categories and booleans are categorical."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def level_labels(values: pd.Series) -> pd.Series:
    """Values as level labels: ``1`` rather than ``1.0`` for whole numbers.

    Each value's label depends on that value alone, so fitting and new data agree;
    floats print as integers only where that is exact (below 2**53 in magnitude).
    """
    labels = values.astype(str)
    if pd.api.types.is_float_dtype(values):
        whole = values.notna() & (np.mod(values, 1) == 0) & (np.abs(values) < 2.0 ** 53)
        labels[whole] = values[whole].astype("int64").astype(str)
    return labels


def sorted_levels(values: pd.Series) -> tuple[str, ...]:
    """The levels of a factor, in R's order: the one rule for data in memory and in Dask.

    A categorical's levels are its categories present in ``values``, in the
    categories' order; numbers (and booleans) are in numeric order, labelled by
    :func:`level_labels`; anything else is sorted as strings (``'10' < '2' < '9'``).
    Dask partitions are reduced to their :func:`distinct_values`, combined by
    :func:`combine_distinct`, and given their levels by this same function.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna().astype(str))
        return tuple(str(c) for c in values.cat.categories if str(c) in present)
    unique = pd.Series(values.dropna().unique())
    if is_numeric(unique) or pd.api.types.is_bool_dtype(unique):
        unique = unique.sort_values()
        return tuple(dict.fromkeys(level_labels(unique)))
    return tuple(sorted(unique.astype(str)))


def distinct_values(values: pd.Series) -> pd.Series:
    """The distinct non-missing values of ``values``, keeping its dtype (and a
    categorical's categories): all that :func:`sorted_levels` needs of a partition."""
    return values.dropna().drop_duplicates().reset_index(drop=True)


def combine_distinct(parts: list[pd.Series]) -> pd.Series:
    """The :func:`distinct_values` of the partitions of one column, as one series.

    Categorical partitions that share their categories keep them in their order;
    partitions whose categories differ (Dask's "unknown" categories, made per
    partition) get the union of them sorted, as pandas sorts the categories it
    makes. Other partitions are concatenated (numbers stay numbers).
    """
    parts = [part for part in parts if len(part)]
    if not parts:
        return pd.Series([], dtype=object)
    if all(isinstance(part.dtype, pd.CategoricalDtype) for part in parts):
        same = all(part.cat.categories.equals(parts[0].cat.categories) for part in parts)
        return pd.Series(union_categoricals([part.array for part in parts], sort_categories=not same,
                                            ignore_order=True))
    return pd.concat(parts, ignore_index=True)


def factor_column(factor: Expr) -> str:
    """The column behind a factor that can be categorical: ``g`` of ``g`` or of ``C(g)``."""
    return factor.name if isinstance(factor, Var) else factor.args[0].name


def column(data: pd.DataFrame, name: str) -> pd.Series:
    """The named column, or a DataError that suggests the closest names."""
    if name not in data.columns:
        same = [str(c) for c in data.columns if _spelling(str(c)) == _spelling(name)]
        close = same or difflib.get_close_matches(name, [str(c) for c in data.columns], n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else \
            f"; the data has columns {', '.join(map(str, list(data.columns)[:20]))}"
        raise DataError(f"column {name!r} named in the formula is not in the data{hint}")
    return data[name]


def _spelling(name: str) -> str:
    """A name without case or punctuation: ``Subject``, ``subject`` and ``sub_ject`` are alike."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


class Evaluator:
    """Evaluates expressions on one data frame, learning or applying encoders.

    With ``learn=True`` (fitting) new levels and transform statistics are
    recorded in ``levels`` and ``stats``; with ``learn=False`` (prediction) the
    stored ones are used and categories never seen in fitting raise DataError.
    """

    def __init__(self, data: pd.DataFrame, encoders: Encoders | None = None):
        self.data = data
        self.learn = encoders is None
        self.levels = {} if encoders is None else dict(encoders.levels)
        self.stats = {} if encoders is None else dict(encoders.stats)
        self.bases = {} if encoders is None else dict(encoders.bases)
        self.smooths = {} if encoders is None else dict(encoders.smooths)
        self.numbers = set() if encoders is None else set(encoders.numeric)
        self.ordered = set() if encoders is None else set(encoders.ordered)

    def encoders(self) -> Encoders:
        return Encoders(dict(self.levels), dict(self.stats), dict(self.bases), dict(self.smooths),
                        frozenset(self.numbers), frozenset(self.ordered))

    def numeric(self, expr: Expr, context: str) -> np.ndarray:
        value = self.evaluate(expr)
        if isinstance(value, pd.Categorical):
            raise DataError(f"{context} needs a numeric value, but {expr} is categorical")
        if np.ndim(value) == 2:
            raise DataError(f"{context} needs one value per row, but {expr} is a basis of {value.shape[1]} "
                            "columns; use it as a term of its own")
        return value

    def evaluate(self, expr: Expr) -> np.ndarray | pd.Categorical:
        if isinstance(expr, Num):
            return np.full(len(self.data), expr.value)
        if isinstance(expr, Var):
            series = column(self.data, expr.name)
            if is_numeric(series) and (str(expr) not in self.levels or str(expr) in self.numbers):
                if self.learn:
                    self.numbers.add(str(expr))
                return series.to_numpy(dtype=np.float64)
            return self.categorical(str(expr), series)
        if isinstance(expr, (Not, Str)) or (isinstance(expr, BinOp) and expr.op in LOGICAL_OPS):
            return evaluate_logical(self, expr)
        if isinstance(expr, Neg):
            return -self.numeric(expr.operand, "unary minus")
        if isinstance(expr, BinOp):
            with np.errstate(all="ignore"):
                return _BINARY[expr.op](self.numeric(expr.left, f"'{expr.op}'"),
                                        self.numeric(expr.right, f"'{expr.op}'"))
        if isinstance(expr, Call):
            return self.call(expr)
        raise TypeError(f"not an expression: {expr!r}")

    def call(self, expr: Call) -> np.ndarray | pd.Categorical:
        if expr.func in R_FUNCTIONS:
            return evaluate_r_call(self, expr)
        arg = expr.args[0]
        key = str(expr)
        if expr.func == "C":
            return self.categorical(key, column(self.data, arg.name))
        if expr.func == "I":
            return self.numeric(arg, "I()")
        x = self.numeric(arg, f"{expr.func}()")
        if expr.func in BASES:
            return self.basis(expr, x)
        if expr.func in ("scale", "center"):
            if key not in self.stats:
                if not self.learn:
                    raise DataError(f"{key} was not part of the fitted model")
                mean = float(np.nanmean(x))
                sd = float(np.nanstd(x, ddof=1)) if np.sum(np.isfinite(x)) > 1 else 1.0
                self.stats[key] = (mean, sd if sd > 0 else 1.0)
            mean, sd = self.stats[key]
            return (x - mean) / sd if expr.func == "scale" else x - mean
        with np.errstate(all="ignore"):
            return _UNARY[expr.func](x)

    def basis(self, expr: Call, x: np.ndarray) -> np.ndarray:
        """The ``n × k`` columns of a basis transform, its state learned or reused."""
        key = str(expr)
        if key not in self.bases:
            if not self.learn:
                raise DataError(f"{key} was not part of the fitted model")
            self.bases[key] = learn_basis(expr, x)
        return apply_basis(expr, self.bases[key], x)

    def categorical(self, key: str, series: pd.Series) -> pd.Categorical:
        labels = level_labels(series).where(series.notna())
        if key not in self.levels:
            if not self.learn:
                raise DataError(f"{key} was numeric when the model was fitted but is categorical now")
            self.levels[key] = sorted_levels(series)
        levels = self.levels[key]
        unseen = sorted(set(labels.dropna()) - set(levels))
        if unseen:
            shown = ", ".join(map(repr, unseen[:10]))
            raise DataError(f"{key} has levels never seen in fitting: {shown}; "
                            f"the fitted levels are {', '.join(map(repr, levels[:10]))}")
        return pd.Categorical(labels, categories=list(levels))
