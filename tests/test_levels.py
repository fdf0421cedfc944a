"""One rule orders the levels of a factor, for a pandas frame and for a Dask frame.

The rule (:func:`multilevel.design.columns.sorted_levels`): a categorical's levels
are its categories in their own order; numbers are in numeric order; strings are
sorted as strings, as R sorts character ids. The levels, and so the reference
level and the names of the design columns, are the same whether the data are
in memory or in the partitions of a Dask DataFrame.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from multilevel.design import build_design
from multilevel.design.distributed import distributed_statistics
from multilevel.formula import parse_formula

dd = pytest.importorskip("dask.dataframe")


def frame() -> pd.DataFrame:
    """Rows in blocks, so that no partition of three holds every level."""
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "y": rng.normal(size=60),
        "x": rng.normal(size=60),
        "dose": pd.Categorical(np.repeat(["high", "low", "mid"], 20), categories=["low", "mid", "high"]),
        "id": np.repeat(["9", "10", "2"], 20),
        "plot": np.repeat([9, 10, 2], 20),
    })


def in_memory_and_dask(formula: str, data: pd.DataFrame, dask_data=None):
    """The encoder levels and design columns of ``formula`` on ``data`` and on a Dask frame of it."""
    spec = parse_formula(formula)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rank and missing-value notes are beside the point here
        design = build_design(spec, data)
    if dask_data is None:
        dask_data = dd.from_pandas(data, npartitions=3, sort=False)
    assert dask_data.npartitions == 3
    distributed = distributed_statistics(spec, dask_data)
    return (design.encoders.levels, design.columns), (distributed.encoders.levels, distributed.columns)


@pytest.mark.parametrize("formula, key, levels, columns", [
    ("y ~ x + dose + (1 | id)", "dose", ("low", "mid", "high"), ("Intercept", "x", "dose[mid]", "dose[high]")),
    ("y ~ x + C(id) + (1 | dose)", "C(id)", ("10", "2", "9"), ("Intercept", "x", "C(id)[2]", "C(id)[9]")),
    ("y ~ x + C(plot) + (1 | dose)", "C(plot)", ("2", "9", "10"), ("Intercept", "x", "C(plot)[9]", "C(plot)[10]")),
])
def test_a_fixed_factor_has_the_same_levels_reference_and_columns(formula, key, levels, columns):
    (memory_levels, memory_columns), (dask_levels, dask_columns) = in_memory_and_dask(formula, frame())
    assert memory_levels[key] == dask_levels[key] == levels  # levels[0] is the reference level
    assert memory_columns == dask_columns == columns


@pytest.mark.parametrize("formula, key, levels", [
    ("y ~ x + (1 | dose)", "dose", ("low", "mid", "high")),  # the categorical's own order
    ("y ~ x + (1 | id)", "id", ("10", "2", "9")),  # strings sort as strings
    ("y ~ x + (1 | plot)", "plot", ("2", "9", "10")),  # numbers sort as numbers
    ("y ~ x + (1 | dose:id)", "dose:id", ("high:9", "low:10", "mid:2")),  # labels of an interaction are strings
])
def test_a_grouping_factor_has_the_same_levels(formula, key, levels):
    (memory_levels, _), (dask_levels, _) = in_memory_and_dask(formula, frame())
    assert memory_levels == dask_levels
    assert dask_levels[key] == levels


def test_categories_made_per_partition_are_ordered_as_pandas_orders_them_in_memory():
    data = frame()
    # astype("category") on a Dask column gives each partition the categories it holds, sorted
    dask_data = dd.from_pandas(data, npartitions=3, sort=False)
    dask_data = dask_data.assign(code=dask_data["id"].astype("category"))
    in_memory = data.assign(code=data["id"].astype("category"))
    memory, distributed = in_memory_and_dask("y ~ x + code + (1 | code)", in_memory, dask_data)
    assert memory == distributed
    assert distributed[0]["code"] == ("10", "2", "9")
