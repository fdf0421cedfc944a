"""Every complaint of the library is a specific subclass of MultilevelError, and a ValueError.

A caller can catch ``ml.MultilevelError`` for every complaint, ``ml.DataError``
(or ``FormulaError``, ``PriorError``, ``SamplerError``) for one kind, or
``ValueError`` as for any bad value; the bare base class is never raised.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import arviz as az
import numpy as np
import pytest
import xarray as xr

import multilevel as ml
from multilevel.cli import read_table
from multilevel.model.layout import Layout
from multilevel.results import criteria
from multilevel.results.summary import summary_table

POSTERIOR = xr.Dataset({"Intercept": (("chain", "draw"), np.zeros((2, 10)))})
IDATA = az.from_dict(posterior={"Intercept": np.zeros((2, 10))}, sample_stats={"diverging": np.zeros((2, 10), bool)})


def fit_of(num_rows: int):
    """What compare reads of a fit before it computes a criterion."""
    return SimpleNamespace(info=SimpleNamespace(num_rows=num_rows))


@pytest.mark.parametrize("subclass, match, call", [
    (ml.DataError, "prob must be between 0 and 1",
     lambda: summary_table(POSTERIOR, Layout(("Intercept",), (), ()), seconds=1.0, prob=1.5)),
    (ml.DataError, "ic must be one of dic, waic, loo, kfold, got 'bic'",
     lambda: ml.compare({"a": fit_of(10), "b": fit_of(10)}, ic="bic")),
    (ml.DataError, "compare needs a dict of at least two fits", lambda: ml.compare({"a": fit_of(10)})),
    (ml.DataError, "different numbers of rows", lambda: ml.compare({"a": fit_of(10), "b": fit_of(12)})),
    (ml.DataError, "this fit has no deviances", lambda: criteria.dic(IDATA, {})),
    (ml.DataError, "WAIC needs the pointwise log-likelihood", lambda: criteria.waic(IDATA)),
    (ml.DataError, "no data file at", lambda: read_table(Path("absent.csv"))),
    (ml.DataError, "no fit at", lambda: ml.load("absent.nc")),
    (ml.FormulaError, "nothing after '~'", lambda: ml.parse_formula("y ~")),
    (ml.PriorError, "sd must be > 0", lambda: ml.Normal(0, -1)),
], ids=["summary prob", "compare ic", "compare one fit", "compare rows", "dic without deviances",
        "waic without log-likelihood", "cli missing data file", "load missing file", "formula", "prior"])
def test_a_complaint_is_caught_as_its_subclass_the_base_class_and_value_error(subclass, match, call):
    with pytest.raises(subclass, match=match) as caught:
        call()
    assert isinstance(caught.value, ml.MultilevelError) and isinstance(caught.value, ValueError)
    assert type(caught.value) is not ml.MultilevelError
