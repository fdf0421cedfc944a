"""Property: stages 1-3 either succeed or raise the library's own errors.

Random formulas, drawn from a grammar of the formula language and from junk
text, meet random data frames (numeric, string, categorical and boolean columns,
NaN and inf sprinkled in, sometimes empty, sometimes a single-level grouping
column). Parsing, building the design and resolving the default priors must then
either give a consistent result or raise a ``MultilevelError`` subclass, never
any other exception, and must never modify the data.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import multilevel as ml
from multilevel.design import build_design
from multilevel.formula import parse_formula
from multilevel.model import Layout, get_family, resolve_priors

#: Pure unit and property tests: no sampler runs (``make test-unit``).
pytestmark = pytest.mark.unit

FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

NUMERIC = ["x1", "x2", "n", "log.v", "`my var`"]
CATEGORICAL = ["s", "c", "b"]
GROUPING = ["g", "h", "s", "b", "n"]
FUNCTIONS = ["log", "log1p", "exp", "sqrt", "abs", "scale", "center"]


# -- data ---------------------------------------------------------------------------------

@st.composite
def data_frames(draw) -> pd.DataFrame:
    """Mostly usable data; one frame in two has one defect the library must report or handle."""
    defect = draw(st.sampled_from(["none", "none", "none", "nan", "inf", "one level", "tiny"]))
    n = draw(st.sampled_from([0, 1, 2])) if defect == "tiny" else draw(st.sampled_from([12, 7, 20]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def labels(prefix: str) -> list[str]:
        return [f"{prefix}{k}" for k in rng.integers(0, draw(st.sampled_from([3, 2, 4])), n)]

    frame = pd.DataFrame({
        "y": rng.uniform(0.5, 20, n),
        "x1": rng.normal(0, 2, n),
        "x2": rng.uniform(0, 10, n),
        "n": rng.integers(0, 3, n),
        "log.v": rng.uniform(-1, 5, n),
        "my var": rng.normal(0, 1, n),
        "s": labels("s"),
        "c": pd.Categorical(labels("c"), categories=["c3", "c0", "c1", "c2", "unused"]),
        "b": rng.random(n) < 0.5,
        "g": labels("g"),
        "h": labels("h"),
    })
    if n and defect in ("nan", "inf"):
        names = draw(st.lists(st.sampled_from(["y", "x1", "x2", "log.v", "my var", "s", "g"]),
                              min_size=1, max_size=3, unique=True))
        for name in names:
            rows = frame.index[rng.random(n) < 0.2]
            if frame[name].dtype.kind != "f":
                frame.loc[rows, name] = None
            elif defect == "nan":
                frame.loc[rows, name] = np.nan
            else:
                frame.loc[rows, name] = draw(st.sampled_from([np.inf, -np.inf]))
    if defect == "one level":
        name = draw(st.sampled_from(["s", "c", "b", "n", "g", "h"]))
        frame[name] = frame[name].iloc[0]
    return frame


# -- formulas -----------------------------------------------------------------------------

@st.composite
def factors(draw) -> str:
    kind = draw(st.sampled_from(["numeric", "categorical", "function", "C", "I"]))
    if kind == "numeric":
        return draw(st.sampled_from(NUMERIC))
    if kind == "categorical":
        return draw(st.sampled_from(CATEGORICAL))
    if kind == "function":
        return f"{draw(st.sampled_from(FUNCTIONS))}({draw(st.sampled_from(NUMERIC + CATEGORICAL))})"
    if kind == "C":
        return f"C({draw(st.sampled_from(NUMERIC[:3] + CATEGORICAL))})"
    a, b = draw(st.sampled_from(NUMERIC)), draw(st.sampled_from(NUMERIC))
    return draw(st.sampled_from([f"I({a}^2)", f"I({a} * {b} + 1)", f"I(-{a})", f"I(({a} - {b}) ** 2)",
                                 f"I({a} / 2)"]))


@st.composite
def terms(draw) -> str:
    a, b, c = draw(factors()), draw(factors()), draw(factors())
    return draw(st.sampled_from([a, f"{a}:{b}", f"{a}*{b}", f"{a}/{b}", f"({a} + {b})^2",
                                 f"({a} + {b} + {c})^{draw(st.integers(1, 3))}", f"{a}*{b} - {a}"]))


@st.composite
def group_terms(draw) -> str:
    effects = draw(st.sampled_from(["1", "x1", "0 + x1", "1 + x1", "1 + s", "0 + c", "1 + x1 + b",
                                    "scale(x2)", "1 + x1:s"]))
    bar = draw(st.sampled_from(["|", "||"]))
    first, second = draw(st.sampled_from(GROUPING)), draw(st.sampled_from(GROUPING))
    group = draw(st.sampled_from([first, f"{first}:{second}", f"{first}/{second}", f"C({first})"]))
    return f"({effects} {bar} {group})"


@st.composite
def grammar_formulas(draw) -> str:
    response = draw(st.sampled_from(["y", "log(y)", "log1p(y)", "sqrt(y)", "exp(y)", "scale(y)", "center(y)",
                                     "I(y^2 - 1)", "y", "x2", "n", "`my var`", "log(log.v)", "s", "b"]))
    pieces = draw(st.lists(st.one_of(terms(), group_terms(), st.sampled_from(["0", "1", "-1"])),
                           min_size=1, max_size=4))
    rhs = " + ".join(pieces)
    rhs = draw(st.sampled_from([rhs, f"0 + {rhs}", f"{rhs} - 1", f"1 + {rhs}"]))
    return f"{response} ~ {rhs}"


@st.composite
def mutated_formulas(draw) -> str:
    """A grammatical formula with one character deleted, doubled or replaced."""
    formula = draw(grammar_formulas())
    i = draw(st.integers(0, len(formula) - 1))
    char = draw(st.sampled_from(list("~+-*/:^|()01 `.,$'\"x")))
    return draw(st.sampled_from([formula[:i] + formula[i + 1:], formula[:i] + formula[i] + formula[i:],
                                 formula[:i] + char + formula[i + 1:]]))


junk = st.text(alphabet="xy1gs~+-*/:^|()01 `.,$'_I", max_size=25)
formulas = st.one_of(grammar_formulas(), grammar_formulas(), grammar_formulas(), mutated_formulas(), junk)


# -- the property ---------------------------------------------------------------------------

def check_consistent(design, layout, priors) -> None:
    n = design.num_rows
    assert n > 0
    assert design.X.shape == (n, len(design.columns))
    assert np.isfinite(design.X).all() and np.isfinite(design.y).all()
    assert len(set(design.columns)) == len(design.columns)
    for group in design.groups:
        assert group.refs.dtype == np.int32 and group.refs.shape == (n,)
        assert group.num_levels >= 2
        assert ((group.refs >= 0) & (group.refs < group.num_levels)).all()
        assert group.z.shape == (n, group.q) and np.isfinite(group.z).all()
    expected_rows = (len(layout.fixed) + len(layout.aux) + sum(g.q for g in layout.groups)
                     + sum(g.has_cor for g in layout.groups))
    assert len(priors.table()) == expected_rows


@FUZZ
@given(formula=formulas, data=data_frames())
def test_pipeline_succeeds_or_raises_its_own_errors(formula, data):
    before = data.copy(deep=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # dropped rows, rank deficiency
            warnings.simplefilter("error", RuntimeWarning)  # numpy complaints are bugs here
            spec = parse_formula(formula)
            design = build_design(spec, data)
            layout = Layout.of(design, get_family("gaussian"))
            priors = resolve_priors(design, layout)
    except ml.MultilevelError as error:
        event(type(error).__name__)
    else:
        event("built")
        check_consistent(design, layout, priors)
    pd.testing.assert_frame_equal(data, before)


@FUZZ
@given(formula=grammar_formulas())
def test_grammatical_formulas_parse_and_print_back_to_the_same_spec(formula):
    spec = parse_formula(formula)
    reprinted = f"{spec.response} ~ {spec.fixed}" + "".join(f" + {g}" for g in spec.groups)
    again = parse_formula(reprinted.replace("my var", "`my var`"))
    assert again.response == spec.response
    assert again.fixed == spec.fixed
    assert again.groups == spec.groups
