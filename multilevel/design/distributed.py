"""Sufficient statistics of a Dask DataFrame, computed where the data live.

Two passes over the partitions, each returning only small per-partition sums:

1. learn the encoders: the levels of every categorical and grouping factor
   (each partition's distinct values, combined and ordered by the rule of data
   in memory, :func:`~multilevel.design.columns.sorted_levels`), and the count,
   sum and sum of squares of every ``scale()``/``center()`` argument (so their
   mean and sd are global);
2. with those encoders, build each partition's design and reduce it to its
   sufficient statistics and data summary, which add up across partitions.

The rows never leave the workers. Dask is an optional dependency
(``pip install multilevel[dask]``); nothing here imports it at module level.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ..errors import DataError, SamplerError
from ..formula.spec import Call, FormulaSpec, GroupTerm, Smooth
from .build import build_design
from .columns import (Encoders, Evaluator, column, combine_distinct, distinct_values, factor_column, level_labels,
                      sorted_levels)
from .summary import DataSummary, summarise
from .transforms import BASES
from .suffstats import LevelStats, SuffStats, design_statistics


class DistributedData(NamedTuple):
    """Everything the collapsed sampler and the Fit need, computed by Dask."""

    stats: SuffStats
    summary: DataSummary
    encoders: Encoders
    order: tuple[str, ...]
    columns: tuple[str, ...]
    group_terms: tuple[tuple[str, tuple[str, ...], bool], ...]  # (factor, columns, correlated) per term
    num_partitions: int
    dropped_rows: int


def is_dask_frame(data: Any) -> bool:
    """Whether ``data`` is a Dask DataFrame (checked without importing Dask)."""
    return type(data).__module__.split(".")[0] in ("dask", "dask_expr") and hasattr(data, "to_delayed")


def _scale_calls(spec: FormulaSpec, funcs: tuple[str, ...] = ("scale", "center")) -> list[Call]:
    found: dict[str, Call] = {}

    def visit(node):
        if isinstance(node, Call) and node.func in funcs:
            found.setdefault(str(node), node)
        if isinstance(node, (tuple, list)):
            for item in node:
                visit(item)
        elif hasattr(node, "__dataclass_fields__"):
            for name in node.__dataclass_fields__:
                visit(getattr(node, name))

    visit((spec.response, spec.fixed, spec.groups))
    return list(found.values())


def _complete_rows(part: pd.DataFrame, spec: FormulaSpec, na_action: str) -> pd.DataFrame:
    used = list(spec.variables())
    for name in used:
        column(part, name)
    missing = part[used].isna().any(axis=1)
    if missing.any() and na_action == "error":
        raise DataError(f"{int(missing.sum())} rows have missing values in the columns the formula uses; "
                        "drop them first or use na_action='drop'")
    return part.loc[~missing]


def _group_values(part: pd.DataFrame, term: GroupTerm) -> pd.Series:
    """The distinct values of a grouping factor: its column's, or the labels ``a:b`` of an interaction."""
    series = [column(part, factor_column(f)) for f in term.group]
    if len(series) == 1:
        return distinct_values(series[0])
    return distinct_values(pd.Series([":".join(v) for v in zip(*map(level_labels, series))], dtype=object))


def _learn_partition(part: pd.DataFrame, spec: FormulaSpec, na_action: str) -> dict:
    """Distinct values of each factor (keyed as the encoders' levels) and
    ``(count, sum, sum of squares)`` of scale/center arguments."""
    part = _complete_rows(part, spec, na_action)
    evaluator = Evaluator(part)
    levels = {}
    if len(part):
        for terms in [spec.fixed] + [g.effects for g in spec.groups]:
            for term in terms.terms:
                for factor in term:
                    if isinstance(evaluator.evaluate(factor), pd.Categorical):
                        levels[str(factor)] = distinct_values(column(part, factor_column(factor)))
    for term in spec.groups:
        levels[term.group_name] = _group_values(part, term)
    moments = {}
    for call in _scale_calls(spec):
        x = Evaluator(part).numeric(call.args[0], f"{call.func}()") if len(part) else np.zeros(0)
        moments[str(call)] = np.array([len(x), x.sum(), x @ x])
    return {"levels": levels, "moments": moments}


def _merge_encoders(parts: list[dict]) -> Encoders:
    values: dict[str, list[pd.Series]] = {}
    moments: dict[str, np.ndarray] = {}
    for part in parts:
        for key, distinct in part["levels"].items():
            values.setdefault(key, []).append(distinct)
        for key, value in part["moments"].items():
            moments[key] = moments.get(key, 0) + value
    stats = {}
    for key, (n, total, total_sq) in moments.items():
        mean = total / n
        sd = np.sqrt(max((total_sq - total * total / n) / (n - 1), 0.0)) if n > 1 else 1.0
        stats[key] = (float(mean), float(sd) if sd > 0 else 1.0)
    return Encoders({key: sorted_levels(combine_distinct(v)) for key, v in values.items()}, stats)


def _partition_statistics(part: pd.DataFrame, spec: FormulaSpec, encoders: Encoders, order: tuple[str, ...],
                          na_action: str):
    """One partition's statistics, summary, design columns and dropped-row count (None if empty)."""
    complete = _complete_rows(part, spec, na_action)
    if len(complete) == 0:
        return None, len(part)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = build_design(spec, complete, encoders=encoders)
    meta = (design.columns, tuple((g.name, g.columns, g.correlated) for g in design.groups))
    return (design_statistics(design, order), summarise(design), meta), len(part) - len(complete)


def _add_levels(a: LevelStats, b: LevelStats) -> LevelStats:
    parent = None if a.parent is None else np.maximum(a.parent, b.parent)
    if a.parent is not None and np.any((a.parent >= 0) & (b.parent >= 0) & (a.parent != b.parent)):
        raise SamplerError("the grouping factors are not nested: an inner level lies in two outer levels")
    return LevelStats(a.G + b.G, a.D + b.D, a.c + b.c, None if a.H is None else a.H + b.H, parent)


def _add(a: SuffStats, b: SuffStats) -> SuffStats:
    return SuffStats(a.n + b.n, a.yty + b.yty, a.Xty + b.Xty, a.XtX + b.XtX,
                     tuple(_add_levels(x, y) for x, y in zip(a.levels, b.levels)))


def distributed_statistics(spec: FormulaSpec, frame: Any, na_action: str = "drop") -> DistributedData:
    """Compute the collapsed sampler's inputs from a Dask DataFrame, partition by partition."""
    import dask

    if bases := _scale_calls(spec, BASES):
        raise DataError(f"{bases[0]} learns its basis from the whole column at once (R's QR, or quantiles for "
                        "knots), which a Dask DataFrame's partitions do not hold: compute a pandas DataFrame")
    smooths = [str(t[0]) for t in spec.fixed.terms if isinstance(t[0], Smooth)]
    if smooths:
        raise DataError(f"{', '.join(smooths)}: a smooth's basis is learned from all rows at once, which a Dask "
                        "frame does not hold; compute() the frame into pandas to fit smooths")
    partitions = frame.to_delayed()
    learned = dask.compute(*[dask.delayed(_learn_partition)(p, spec, na_action) for p in partitions])
    encoders = _merge_encoders(list(learned))
    factors = tuple(dict.fromkeys(term.group_name for term in spec.groups))
    for name in factors:
        if len(encoders.levels[name]) < 2:
            raise DataError(f"grouping factor {name!r} has a single level: group effects need at least two")
    order = tuple(sorted(factors, key=lambda f: len(encoders.levels[f])))
    results = dask.compute(*[dask.delayed(_partition_statistics)(p, spec, encoders, order, na_action)
                             for p in partitions])
    present = [r for r, _ in results if r is not None]
    dropped = sum(d for _, d in results)
    if not present:
        raise DataError("the data frame is empty: there is nothing to fit")
    stats, summary = present[0][0], present[0][1]
    for other in present[1:]:
        stats, summary = _add(stats, other[0]), summary + other[1]
    if any(lv.parent is not None and np.any(lv.parent < 0) for lv in stats.levels):
        raise SamplerError("the grouping factors are not nested")
    if dropped:
        warnings.warn(f"dropped {dropped} rows with missing values in the columns the formula uses", stacklevel=3)
    columns, group_terms = present[0][2]
    return DistributedData(stats, summary, encoders, order, columns, group_terms, len(partitions), dropped)
