"""Stage 2: ``build_design`` evaluates a FormulaSpec on a DataFrame.

The expected columns follow R's ``model.matrix`` (treatment contrasts against
the first level, R's rule for when a factor is coded in full) and lme4's group
terms, stored as ``refs`` (level index per row) plus a small dense ``z``.
Expected values are computed here from the data, independently of the library.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.design import build_design

#: Pure unit and property tests: no sampler runs (``make test-unit``).
pytestmark = pytest.mark.unit


def design(formula: str, data: pd.DataFrame, **kwargs):
    """The design of ``formula``, failing the test on any warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return build_design(ml.parse_formula(formula), data, **kwargs)


def column(d, name: str) -> np.ndarray:
    return d.X[:, d.columns.index(name)]


@pytest.fixture
def data() -> pd.DataFrame:
    """Eight rows: a numeric x, two crossed two-level factors a, b, a grouping g."""
    return pd.DataFrame({
        "y": [1.0, 2.5, 2.0, 4.0, 3.5, 6.0, 5.0, 8.5],
        "x": [0.1, 0.4, 0.2, 0.9, 0.5, 0.3, 0.7, 0.8],
        "a": list("ppqqppqq"),
        "b": list("uvuvuvuv"),
        "g": ["g2", "g1", "g3", "g1", "g2", "g3", "g1", "g2"],
    })


# -- fixed effects: coding of factors ------------------------------------------------

def test_factor_is_coded_against_its_first_level(data):
    data["f"] = ["c", "a", "b", "a", "d", "c", "b", "d"]
    d = design("y ~ f", data)
    assert d.columns == ("Intercept", "f[b]", "f[c]", "f[d]")
    for level in "bcd":
        np.testing.assert_array_equal(column(d, f"f[{level}]"), (data.f == level).to_numpy(float))
    np.testing.assert_array_equal(column(d, "Intercept"), np.ones(8))


def test_zero_plus_factor_gives_one_indicator_per_level(data):
    d = design("y ~ 0 + a", data)
    assert d.columns == ("a[p]", "a[q]")
    np.testing.assert_array_equal(d.X.sum(axis=1), np.ones(8))


def test_without_intercept_only_the_first_factor_is_coded_in_full(data):
    # R: model.matrix(~ 0 + a + b) has ap, aq, bv.
    assert design("y ~ 0 + a + b", data).columns == ("a[p]", "a[q]", "b[v]")


def test_two_factors_with_main_effects_use_contrasts_in_the_interaction(data):
    d = design("y ~ a*b", data)
    assert d.columns == ("Intercept", "a[q]", "b[v]", "a[q]:b[v]")
    expected = ((data.a == "q") & (data.b == "v")).to_numpy(float)
    np.testing.assert_array_equal(column(d, "a[q]:b[v]"), expected)


def test_two_factors_without_intercept_and_with_main_effects(data):
    d = design("y ~ 0 + a*b", data)
    assert d.columns == ("a[p]", "a[q]", "b[v]", "a[q]:b[v]")
    assert np.linalg.matrix_rank(d.X) == 4


def test_interaction_alone_without_intercept_is_one_indicator_per_cell(data):
    d = design("y ~ 0 + a:b", data)
    # R: model.matrix(~ 0 + a:b) has ap:bu, aq:bu, ap:bv, aq:bv (the first factor varies fastest)
    assert d.columns == ("a[p]:b[u]", "a[q]:b[u]", "a[p]:b[v]", "a[q]:b[v]")
    for a_level in "pq":
        for b_level in "uv":
            cell = ((data.a == a_level) & (data.b == b_level)).to_numpy(float)
            np.testing.assert_array_equal(column(d, f"a[{a_level}]:b[{b_level}]"), cell)


def test_interaction_with_one_main_effect_codes_the_other_factor_by_contrasts(data):
    # R: model.matrix(~ a + a:b) has (Intercept), aq, ap:bv, aq:bv.
    d = design("y ~ a + a:b", data)
    assert d.columns[:2] == ("Intercept", "a[q]")
    assert set(d.columns[2:]) == {"a[p]:b[v]", "a[q]:b[v]"}
    assert np.linalg.matrix_rank(d.X) == 4


def test_interaction_alone_with_intercept_is_coded_in_full_as_in_r(data):
    # R's model.matrix(~ a:b) is rank deficient too: intercept plus four cells.
    with pytest.warns(UserWarning, match="rank deficient"):
        d = build_design(ml.parse_formula("y ~ a:b"), data)
    assert d.columns[0] == "Intercept" and len(d.columns) == 5


def test_numeric_by_factor_interaction_is_named_by_level(data):
    d = design("y ~ x*a", data)
    assert d.columns == ("Intercept", "x", "a[q]", "x:a[q]")
    np.testing.assert_allclose(column(d, "x:a[q]"), data.x * (data.a == "q"))
    # Without the factor's main effect, the slope is given per level.
    assert design("y ~ x + x:a", data).columns == ("Intercept", "x", "x:a[q]")
    assert design("y ~ x:a", data).columns == ("Intercept", "x:a[p]", "x:a[q]")


def test_transforms_and_I_are_evaluated_on_the_column(data):
    d = design("log(y) ~ sqrt(x) + I(x^2 - 1) + exp(x) + log1p(x)", data)
    np.testing.assert_allclose(d.y, np.log(data.y))
    np.testing.assert_allclose(column(d, "sqrt(x)"), np.sqrt(data.x))
    np.testing.assert_allclose(column(d, "I(x^2-1)"), data.x ** 2 - 1)
    np.testing.assert_allclose(column(d, "exp(x)"), np.exp(data.x))
    np.testing.assert_allclose(column(d, "log1p(x)"), np.log1p(data.x))
    assert d.response == "log(y)"


def test_scale_and_center_use_the_mean_and_sample_sd(data):
    d = design("scale(y) ~ center(x)", data)
    np.testing.assert_allclose(d.y, (data.y - data.y.mean()) / data.y.std(ddof=1))
    np.testing.assert_allclose(column(d, "center(x)"), data.x - data.x.mean())


def test_C_makes_a_numeric_column_a_factor_with_plain_level_names(data):
    data["year"] = [2001.0, 2002.0, 2010.0, 2001.0, 2002.0, 2010.0, 2001.0, 2002.0]
    assert design("y ~ C(year)", data).columns == ("Intercept", "C(year)[2002]", "C(year)[2010]")


def test_boolean_and_categorical_columns_are_factors(data):
    data["flag"] = [True, False] * 4
    data["dose"] = pd.Categorical(["lo", "hi", "mid"] * 2 + ["lo", "lo"], categories=["lo", "mid", "hi"])
    d = design("y ~ flag + dose", data)
    assert d.columns == ("Intercept", "flag[True]", "dose[mid]", "dose[hi]")


# -- group terms: refs and z ----------------------------------------------------------

def test_group_term_has_level_index_per_row_and_its_own_columns(data):
    d = design("y ~ x + (1 + x | g)", data)
    (group,) = d.groups
    assert group.name == "g" and group.columns == ("Intercept", "x") and group.correlated
    assert group.levels == ("g1", "g2", "g3")
    assert group.refs.dtype == np.int32
    np.testing.assert_array_equal(group.refs, [group.levels.index(v) for v in data.g])
    assert group.z.shape == (8, 2)
    np.testing.assert_array_equal(group.z, np.column_stack([np.ones(8), data.x]))


def test_independent_group_term_is_not_correlated(data):
    (group,) = design("y ~ (1 + x || g)", data).groups
    assert not group.correlated and group.columns == ("Intercept", "x")


def test_factor_inside_a_group_term_is_coded_like_a_fixed_effect(data):
    (with_intercept,) = design("y ~ (1 + a | g)", data).groups
    assert with_intercept.columns == ("Intercept", "a[q]")
    (cell_means,) = design("y ~ (0 + a || g)", data).groups
    assert cell_means.columns == ("a[p]", "a[q]")
    np.testing.assert_array_equal(cell_means.z[:, 1], (data.a == "q").to_numpy(float))


def test_numeric_group_levels_sort_numerically_and_print_without_decimal_point(data):
    data["plot"] = [10.0, 2.0, 1.0, 2.0, 10.0, 1.0, 2.0, 1.0]
    (group,) = design("y ~ (1 | plot)", data).groups
    assert group.levels == ("1", "2", "10")
    np.testing.assert_array_equal(group.refs, [2, 1, 0, 1, 2, 0, 1, 0])


def test_large_whole_number_ids_stay_distinct_levels(data):
    data["plot"] = [1e20, 2e20] * 4
    (group,) = design("y ~ (1 | plot)", data).groups
    assert group.num_levels == 2
    np.testing.assert_array_equal(group.refs, [0, 1] * 4)


def test_categorical_group_levels_keep_the_categorical_order(data):
    data["g"] = pd.Categorical(data.g, categories=["g3", "g1", "g2"])
    (group,) = design("y ~ (1 | g)", data).groups
    assert group.levels == ("g3", "g1", "g2")
    np.testing.assert_array_equal(group.refs, [group.levels.index(v) for v in data.g])


def test_grouping_by_an_interaction_has_one_level_per_observed_pair(data):
    (group,) = design("y ~ (1 | a:b)", data).groups
    assert group.name == "a:b"
    assert group.levels == ("p:u", "p:v", "q:u", "q:v")
    pairs = data.a + ":" + data.b
    np.testing.assert_array_equal(group.refs, [group.levels.index(p) for p in pairs])


def test_nested_grouping_gives_the_outer_and_the_interaction_terms(data):
    outer, inner = design("y ~ (1 | a/b)", data).groups
    assert (outer.name, inner.name) == ("a", "a:b")
    assert outer.levels == ("p", "q") and len(inner.levels) == 4


def test_crossed_group_terms_each_get_refs(data):
    d = design("y ~ (1 | g) + (1 | b)", data)
    assert [g.name for g in d.groups] == ["g", "b"]
    np.testing.assert_array_equal(d.groups[1].refs, (data.b == "v").to_numpy(int))


# -- missing values -------------------------------------------------------------------

def test_rows_with_missing_values_are_dropped_with_a_warning_naming_the_columns(data):
    data.loc[1, "y"] = np.nan
    data.loc[[3, 5], "x"] = np.nan
    data["unused"] = np.nan  # a column the formula does not use never drops rows
    with pytest.warns(UserWarning) as record:
        d = build_design(ml.parse_formula("y ~ x + (1 | g)"), data)
    message = str(record[0].message)
    assert re.search(r"\b3\b", message)
    assert re.search(r"\by\b", message) and re.search(r"\bx\b", message) and "unused" not in message
    assert d.num_rows == 5 and d.dropped_rows == 3
    np.testing.assert_array_equal(d.y, data.y.drop([1, 3, 5]))
    assert list(d.row_index) == [0, 2, 4, 6, 7]


def test_missing_values_with_na_action_error_raise(data):
    data.loc[2, "x"] = np.nan
    with pytest.raises(ml.DataError, match="x"):
        build_design(ml.parse_formula("y ~ x"), data, na_action="error")


def test_an_unknown_na_action_is_a_data_error(data):
    with pytest.raises(ml.DataError, match="na_action"):
        build_design(ml.parse_formula("y ~ x"), data, na_action="omit")


# -- data errors ----------------------------------------------------------------------

def test_non_numeric_response_is_a_data_error_naming_it(data):
    """The design keeps a categorical response as category numbers (an ordinal family
    takes them); every other family rejects it when the model is built."""
    design = build_design(ml.parse_formula("a ~ x"), data)
    assert design.response_levels is not None and set(design.y) <= set(range(1, len(design.response_levels) + 1))
    with pytest.raises(ml.DataError, match="response a"):
        ml.build_model("a ~ x", data)


def test_grouping_column_with_a_single_level_is_a_data_error(data):
    data["one"] = "only"
    with pytest.raises(ml.DataError, match="'one'"):
        build_design(ml.parse_formula("y ~ x + (1 | one)"), data)


def test_factor_with_a_single_level_is_a_data_error_naming_it(data):
    data["site"] = "north"
    with pytest.raises(ml.DataError, match="site"):
        build_design(ml.parse_formula("y ~ x + site"), data)


def test_missing_column_suggests_the_closest_names(data):
    data = data.rename(columns={"x": "floor_level"})
    with pytest.raises(ml.DataError, match="floor_levl") as info:
        build_design(ml.parse_formula("y ~ floor_levl"), data)
    assert "'floor_level'" in str(info.value)


def test_infinite_values_are_a_data_error_naming_the_column(data):
    data.loc[4, "x"] = np.inf
    with pytest.raises(ml.DataError, match="'x'"):
        build_design(ml.parse_formula("y ~ x"), data)


def test_empty_data_frame_is_a_data_error(data):
    with pytest.raises(ml.DataError, match="empty"):
        build_design(ml.parse_formula("y ~ x"), data.iloc[:0])


def test_log_of_a_non_positive_value_is_a_data_error_naming_the_transform(data):
    data.loc[0, "y"] = 0.0
    with pytest.raises(ml.DataError, match=r"log\(y\)"):
        build_design(ml.parse_formula("log(y) ~ x"), data)
    data.loc[0, "x"] = -1.0
    with pytest.raises(ml.DataError, match=r"log\(x\)"):
        build_design(ml.parse_formula("y ~ log(x)"), data.assign(y=1.0))


def test_rank_deficient_design_warns_but_builds(data):
    data["f"] = list("abcdabcd")
    indicators = {f"is_{k}": (data.f == k).astype(float) for k in "abcd"}
    data = data.assign(**indicators)
    with pytest.warns(UserWarning, match="rank deficient"):
        d = build_design(ml.parse_formula("y ~ 1 + is_a + is_b + is_c + is_d"), data)
    assert d.X.shape == (8, 5)


# -- the user's data and new data -------------------------------------------------------

def test_the_users_data_frame_is_never_modified(data):
    data.loc[2, "x"] = np.nan
    data["g"] = pd.Categorical(data.g)
    data["flag"] = [True, False] * 4
    before = data.copy(deep=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build_design(ml.parse_formula("scale(y) ~ center(x)*a + flag + C(b) + (1 + x | g) + (1 | a:b)"), data)
    pd.testing.assert_frame_equal(data, before)


def test_new_data_encoded_with_the_fitted_encoders_gives_the_same_columns(data):
    spec = ml.parse_formula("y ~ scale(x) + a*b + (1 + x | g)")
    fitted = design("y ~ scale(x) + a*b + (1 + x | g)", data)
    subset = data.iloc[[6, 0, 3]]  # a subset need not show every level
    again = build_design(spec, subset, encoders=fitted.encoders)
    assert again.columns == fitted.columns
    np.testing.assert_allclose(again.X, fitted.X[[6, 0, 3]])
    np.testing.assert_array_equal(again.groups[0].refs, fitted.groups[0].refs[[6, 0, 3]])
    assert again.groups[0].levels == fitted.groups[0].levels


def test_scale_and_center_reuse_the_fitting_data_statistics_on_new_data(data):
    data["w"] = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    spec = ml.parse_formula("y ~ scale(x) + center(w)")
    fitted = build_design(spec, data)
    new = pd.DataFrame({"x": [0.0, 2.0], "w": [10.0, -1.0]})
    encoded = build_design(spec, new, encoders=fitted.encoders, with_response=False)
    np.testing.assert_allclose(column(encoded, "scale(x)"), (new.x - data.x.mean()) / data.x.std(ddof=1))
    np.testing.assert_allclose(column(encoded, "center(w)"), new.w - data.w.mean())
    assert encoded.y is None


def test_unseen_category_of_a_fixed_factor_is_a_data_error(data):
    spec = ml.parse_formula("y ~ a")
    fitted = build_design(spec, data)
    with pytest.raises(ml.DataError, match="'r'"):
        build_design(spec, data.assign(a=["p", "r"] * 4), encoders=fitted.encoders)


def test_unseen_group_levels_get_negative_refs_and_are_listed(data):
    spec = ml.parse_formula("y ~ (1 | g)")
    fitted = build_design(spec, data)
    new = pd.DataFrame({"g": ["g3", "new1", "g1", "new1", "new2"]})
    (group,) = build_design(spec, new, encoders=fitted.encoders, with_response=False).groups
    assert group.levels == fitted.groups[0].levels
    assert group.new_levels == ("new1", "new2")
    np.testing.assert_array_equal(group.refs, [2, -1, 0, -1, -2])


def test_numeric_group_levels_in_new_data_match_the_fitted_labels(data):
    data["plot"] = [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0]
    spec = ml.parse_formula("y ~ (1 | plot)")
    fitted = build_design(spec, data)
    new = pd.DataFrame({"plot": [3.0, 2.5, 1.0]})
    (group,) = build_design(spec, new, encoders=fitted.encoders, with_response=False).groups
    np.testing.assert_array_equal(group.refs, [2, -1, 0])
    assert group.new_levels == ("2.5",)


# -- trials and offsets ----------------------------------------------------------------

def test_binomial_responses_give_successes_and_trials():
    data = pd.DataFrame({"s": [1, 0, 3], "n": [2, 4, 5], "x": [0.1, 0.2, 0.3]})
    for formula in ("cbind(s, n - s) ~ x", "s | trials(n) ~ x"):
        d = design(formula, data)
        np.testing.assert_array_equal(d.y, [1, 0, 3])
        np.testing.assert_array_equal(d.trials, [2, 4, 5])
        assert d.offset is None
    both = design("cbind(s, n) ~ x", data)
    np.testing.assert_array_equal(both.trials, [3, 4, 8])


def test_offsets_are_summed_and_read_from_new_data_with_the_trials():
    data = pd.DataFrame({"s": [1, 0, 3], "n": [2, 4, 5], "t": [1.0, 2.0, 4.0], "x": [0.1, 0.2, 0.3]})
    spec = ml.parse_formula("cbind(s, n - s) ~ x + offset(log(t)) + offset(x)")
    d = build_design(spec, data)
    np.testing.assert_allclose(d.offset, np.log(data["t"]) + data["x"])
    assert d.columns == ("Intercept", "x")
    new = build_design(spec, data[["n", "t", "x"]], encoders=d.encoders, with_response=False)
    assert new.y is None
    np.testing.assert_array_equal(new.trials, [2, 4, 5])
    np.testing.assert_allclose(new.offset, d.offset)
    assert build_design(spec, data[["t", "x"]], encoders=d.encoders, with_response=False).trials is None
    with pytest.raises(ml.DataError, match="offset\\(log\\(t\\)\\) has 1 non-finite"):
        build_design(spec, data.assign(t=[1.0, 0.0, 2.0]))
