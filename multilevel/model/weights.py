"""``weights=`` of ``ml.fit``, as glmer and lm take it.

For a family with trials (``binomial``, ``beta_binomial``, ``zero_inflated_binomial``)
whose formula gives none, the response is a proportion and the weights its
trials, as glmer reads ``incidence/size ~ period, weights = size``: the model is the
binomial of ``round(incidence/size*size)`` successes of ``size`` trials, and the
product must be a whole number in every row (to 1e-8 relative), else a DataError
names the rows. For every other model ``weights = "w"`` is ``y | weights(w) ~ ...``:
each row's log-likelihood times ``w`` (likelihood weights, brms's ``weights``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ..design import Design
from ..design.columns import Evaluator
from ..errors import DataError, FormulaError
from ..formula.spec import BinOp, Call, FormulaSpec, Var, WeightsTerm
from .families import Family

#: Relative tolerance of ``proportion × weight`` from a whole number.
WHOLE_TOLERANCE = 1e-8


def with_weights(spec: FormulaSpec, family: Family, weights: str | None) -> FormulaSpec:
    """The spec with ``weights=`` in it: the trials of a proportion, or likelihood weights."""
    if weights is None:
        return spec
    if not isinstance(weights, str):
        raise DataError(f"weights= names a column of the data, as glmer's weights = size; got "
                        f"{type(weights).__name__}: add the weights to the data frame as a column")
    if spec.weights is not None:
        raise FormulaError(f"weights are given twice: {spec.weights} in the formula and weights={weights!r}; "
                           "give one")
    if family.needs_trials and not spec.has_trials:
        successes = Call("round", (BinOp("*", spec.response, Var(weights)),))
        return replace(spec, response=successes, trials=Var(weights))
    return replace(spec, weights=WeightsTerm(Var(weights)))


def check_whole_successes(spec: FormulaSpec, data: pd.DataFrame, design: Design) -> None:
    """Raise a DataError when ``proportion × weight`` (the argument of the response's
    ``round()`` made by :func:`with_weights`) is not a whole number within tolerance."""
    product = spec.response.args[0]
    rows = (data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)).iloc[design.kept_rows]
    exact = Evaluator(rows, design.encoders).numeric(product, "the successes")
    bad = np.abs(exact - design.y) > WHOLE_TOLERANCE * np.maximum(1.0, np.abs(exact))
    if bad.any():
        shown = ", ".join(f"{label} ({value:g})" for label, value in zip(rows.index[bad][:5], exact[bad][:5]))
        raise DataError(f"{product.left} × {product.right} is not a whole number of successes in rows {shown}: "
                        f"with weights={str(product.right)!r} the response is the proportion of successes of "
                        f"{product.right} trials; check the proportion and the weights, or give the counts as "
                        f"cbind(successes, failures) ~ ...")
