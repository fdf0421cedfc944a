"""Stage 1: ``parse_formula`` reads lme4/brms formula syntax into a frozen FormulaSpec.

Each test states one rule of the formula language as R, lme4 and brms define it,
or one promise about the errors: a FormulaError repeats the formula and puts a
caret under the position at fault, and nothing in a formula is ever evaluated.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

import multilevel as ml
from multilevel.formula import BinOp, Call, GroupTerm, Neg, Num, Terms, Var, parse_formula, term_name
from multilevel.formula.spec import spec_from_dict, spec_to_dict

#: Pure unit and property tests: no sampler runs (``make test-unit``).
pytestmark = pytest.mark.unit


def fixed_terms(formula: str) -> list[str]:
    """Names of the fixed-effect terms (without the intercept) of ``formula``."""
    return [term_name(t) for t in parse_formula(formula).fixed.terms]


def has_intercept(formula: str) -> bool:
    return parse_formula(formula).fixed.intercept


def group_terms(formula: str) -> list[str]:
    return [str(g) for g in parse_formula(formula).groups]


def formula_error(formula: str) -> ml.FormulaError:
    with pytest.raises(ml.FormulaError) as info:
        parse_formula(formula)
    return info.value


def caret_column(error: ml.FormulaError) -> int:
    """Column in the formula that the caret of the message points at.

    The message ends with two lines: the formula and the caret, indented alike.
    """
    *_, formula_line, caret_line = str(error).split("\n")
    assert formula_line.endswith(error.formula)
    assert caret_line.strip() == "^"
    return caret_line.index("^") - (len(formula_line) - len(error.formula))


# -- the response ------------------------------------------------------------------

@pytest.mark.parametrize("func", ["log", "log1p", "exp", "sqrt", "scale", "center"])
def test_response_transform_is_a_call_on_the_column(func):
    spec = parse_formula(f"{func}(y) ~ x")
    assert spec.response == Call(func, (Var("y"),))
    assert str(spec.response) == f"{func}(y)"


def test_response_I_arithmetic_uses_power_and_unary_minus_with_r_precedence():
    # In R, ^ binds tighter than unary minus: -x^3 is -(x^3).
    spec = parse_formula("I(y^2 + -x**3) ~ 1")
    y_squared = BinOp("^", Var("y"), Num(2.0))
    minus_x_cubed = Neg(BinOp("^", Var("x"), Num(3.0)))
    assert spec.response == Call("I", (BinOp("+", y_squared, minus_x_cubed),))


def test_double_star_is_the_same_power_as_caret():
    assert parse_formula("I(y**2) ~ x").response == parse_formula("I(y^2) ~ x").response


def test_power_is_right_associative_and_arithmetic_left_associative():
    response = parse_formula("I(2^3^2 - a - b) ~ 1").response.args[0]
    power = BinOp("^", Num(2.0), BinOp("^", Num(3.0), Num(2.0)))
    assert response == BinOp("-", BinOp("-", power, Var("a")), Var("b"))


def test_nested_parentheses_group_arithmetic():
    response = parse_formula("I(((a + b)) * (c - (d - e))) ~ 1").response.args[0]
    assert response == BinOp("*", BinOp("+", Var("a"), Var("b")),
                             BinOp("-", Var("c"), BinOp("-", Var("d"), Var("e"))))
    assert str(response) == "(a+b)*(c-(d-e))"


def test_multiplication_binds_tighter_than_addition_inside_I():
    response = parse_formula("y ~ I(a + b * c)").fixed.terms[0][0]
    assert response == Call("I", (BinOp("+", Var("a"), BinOp("*", Var("b"), Var("c"))),))


def test_numbers_print_back_exactly_so_distinct_constants_name_distinct_columns():
    assert fixed_terms("y ~ I(x * 1234567) + I(x * 1234568) + I(x^0.5) + I(2 * x)") == [
        "I(x*1234567)", "I(x*1234568)", "I(x^0.5)", "I(2*x)"]


def test_C_marks_a_column_as_categorical():
    spec = parse_formula("y ~ C(year)")
    assert spec.fixed.terms == ((Call("C", (Var("year"),)),),)
    assert fixed_terms("y ~ C(year)") == ["C(year)"]


# -- the intercept -----------------------------------------------------------------

@pytest.mark.parametrize("formula", ["y ~ 0 + x", "y ~ x - 1", "y ~ -1 + x", "y ~ x + 0", "y ~ 1 + x - 1",
                                     "y ~ x + -1"])
def test_zero_or_minus_one_removes_the_intercept(formula):
    assert not has_intercept(formula)
    assert fixed_terms(formula) == ["x"]


@pytest.mark.parametrize("formula", ["y ~ x", "y ~ 1 + x", "y ~ 0 + x + 1", "y ~ 1"])
def test_intercept_is_implicit_and_one_keeps_it(formula):
    assert has_intercept(formula)


# -- formula algebra ---------------------------------------------------------------

def test_star_expands_to_main_effects_and_interaction():
    assert fixed_terms("y ~ a*b") == ["a", "b", "a:b"]
    assert fixed_terms("y ~ a*b*c") == ["a", "b", "c", "a:b", "a:c", "b:c", "a:b:c"]


def test_colon_is_the_interaction_alone():
    assert fixed_terms("y ~ a:b") == ["a:b"]
    assert has_intercept("y ~ a:b")


def test_slash_nests_the_right_side_within_the_left():
    assert fixed_terms("y ~ a/b") == ["a", "a:b"]
    assert fixed_terms("y ~ a/(b + c)") == ["a", "a:b", "a:c"]
    assert fixed_terms("y ~ (a + b)/c") == ["a", "b", "a:b:c"]


def test_power_of_a_sum_gives_interactions_up_to_that_order():
    assert fixed_terms("y ~ (a + b)^2") == ["a", "b", "a:b"]
    assert fixed_terms("y ~ (a + b + c)^2") == ["a", "b", "c", "a:b", "a:c", "b:c"]


def test_an_interaction_is_the_same_term_whatever_the_order_of_its_factors():
    assert fixed_terms("y ~ a:b + b:a") == ["a:b"]
    assert fixed_terms("y ~ a*b - b:a") == ["a", "b"]


def test_minus_removes_a_term_and_repeats_are_kept_once():
    assert fixed_terms("y ~ a*b - a") == ["b", "a:b"]
    assert fixed_terms("y ~ x + x + log(x) + log(x)") == ["x", "log(x)"]


def test_main_effects_come_before_interactions():
    assert fixed_terms("y ~ a:b + c") == ["c", "a:b"]


# -- group terms -------------------------------------------------------------------

def test_random_intercept_term():
    (term,) = parse_formula("y ~ x + (1 | g)").groups
    assert term == GroupTerm(Terms(True, ()), (Var("g"),), True)
    assert fixed_terms("y ~ x + (1 | g)") == ["x"]


def test_a_slope_in_a_group_term_implies_the_intercept():
    (term,) = parse_formula("y ~ (x | g)").groups
    assert term.effects == Terms(True, ((Var("x"),),))
    assert term.correlated


def test_zero_plus_slope_is_a_slope_without_intercept():
    (term,) = parse_formula("y ~ (0 + x | g)").groups
    assert term.effects == Terms(False, ((Var("x"),),))


def test_single_bar_is_correlated_double_bar_independent():
    (corr,) = parse_formula("y ~ (1 + x | g)").groups
    (indep,) = parse_formula("y ~ (1 + x || g)").groups
    assert corr.correlated and not indep.correlated
    assert corr.effects == indep.effects == Terms(True, ((Var("x"),),))


def test_factors_and_transforms_may_appear_inside_a_group_term():
    (term,) = parse_formula("y ~ (1 + f + C(year) + log(x) | g)").groups
    assert [term_name(t) for t in term.effects.terms] == ["f", "C(year)", "log(x)"]


def test_grouping_by_an_interaction():
    (term,) = parse_formula("y ~ (1 | a:b)").groups
    assert term.group == (Var("a"), Var("b"))
    assert term.group_name == "a:b"


def test_nested_grouping_expands_to_the_outer_factor_and_the_interaction():
    nested = parse_formula("y ~ x + (1 | a/b)").groups
    assert nested == parse_formula("y ~ x + (1 | a) + (1 | a:b)").groups
    assert [str(g) for g in parse_formula("y ~ (1 + x || school/class)").groups] == [
        "(1 + x || school)", "(1 + x || school:class)"]


def test_several_group_terms_crossed_and_nested():
    assert group_terms("y ~ x + (1 | subject) + (1 + x | item)") == ["(1 | subject)", "(1 + x | item)"]
    assert group_terms("y ~ (1 | a) + (1 | a:b) + (0 + x || c)") == [
        "(1 | a)", "(1 | a:b)", "(0 + x || c)"]


def test_group_terms_do_not_touch_the_fixed_intercept():
    assert has_intercept("y ~ (1 | g)") and fixed_terms("y ~ (1 | g)") == []
    assert not has_intercept("y ~ 0 + (1 | g)")


# -- names ---------------------------------------------------------------------------

def test_backticks_quote_names_with_spaces_and_symbols():
    spec = parse_formula("`log radon` ~ `floor level` + `a-b`")
    assert spec.response == Var("log radon")
    assert fixed_terms("`log radon` ~ `floor level` + `a-b`") == ["floor level", "a-b"]


def test_names_may_contain_dots_and_are_not_mistaken_for_functions():
    spec = parse_formula("log.radon ~ floor.level + log(u.full) + x.1")
    assert spec.response == Var("log.radon")
    assert spec.fixed.terms == ((Var("floor.level"),), (Call("log", (Var("u.full"),)),), (Var("x.1"),))


def test_variables_lists_every_column_once_in_order_of_use():
    spec = parse_formula("log(y) ~ x*f + scale(z) + (1 + x | g) + (1 | g:h)")
    assert spec.variables() == ("y", "x", "f", "z", "g", "h")
    assert spec.variables(response=False) == ("x", "f", "z", "g", "h")


def test_spec_is_frozen():
    spec = parse_formula("y ~ x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.formula = "y ~ z"


# -- errors: a FormulaError with a caret under the position at fault ------------------

@pytest.mark.parametrize("formula, column", [
    ("y ~ x +", 7),                       # trailing '+': the predictor is missing at the end
    ("y ~ x + (1 | g) + ", 18),
    ("y ~ foo(x)", 4),                    # unknown function: caret at its name
    ("y ~ x + __import__('os')", 8),
    ("y ~ log(os.system(x))", 8),
    ("y ~ (| g)", 5),                     # nothing before the bar
    ("y ~ x + (1 | )", 13),               # nothing after the bar
    ("y ~ (0 | g)", 4),                   # a group term with no effects at all
    ("y x", 2),                           # missing '~'
    ("y + x", 5),
    ("~ x", 0),
    ("y ~ x $ z", 6),                     # a character formulas do not use
    ("y ~ x; import os", 5),
    ("y ~ x + 'z'", 8),
    ("y ~ (x + z", 10),                   # unbalanced parentheses
    ("y ~ x + z)", 9),
    ("log(y ~ x", 6),
    ("y ~ x + (1 | g", 14),
    ("y ~ x + 3", 8),                     # a number as a term
    ("y ~ 2.5*x", 4),
    ("y ~ (a + b)^x", 12),                # a power that is not a whole number
    ("y ~ (1 | log(g))", 9),              # grouping by something that is not a column
    ("y ~ x + (1 | g) - (1 | h)", 18),    # removing a group term
])
def test_syntax_error_points_at_the_position_at_fault(formula, column):
    error = formula_error(formula)
    assert error.formula == formula
    assert formula in str(error)
    assert caret_column(error) == column
    assert error.position == column


def test_unknown_function_message_names_it_and_lists_the_allowed_ones():
    message = str(formula_error("y ~ foo(x)"))
    assert "'foo'" in message
    for allowed in ("log", "scale", "I", "C"):
        assert allowed in message


def test_formula_code_is_never_evaluated():
    # Were either evaluated, SystemExit would escape instead of a FormulaError.
    for formula in ("y ~ __import__('sys').exit(3)", "__import__('sys').exit(3) ~ x",
                    "y ~ I(__import__('sys').exit(3))", "y ~ exit(3)"):
        formula_error(formula)


@pytest.mark.parametrize("formula", ["", "   ", "y ~", "y ~ x ~ z", "y ~ x x", "y ~ ()",
                                     "y ~ log(x, 2, 3)", "y ~ C(log(x))", "y ~ a * (1 | g)",
                                     "y ~ `x", "y ~ x |"])
def test_other_malformed_formulas_raise_formula_error(formula):
    error = formula_error(formula)
    assert isinstance(error, ml.MultilevelError) and isinstance(error, ValueError)
    assert 0 <= error.position <= len(formula)


def test_a_formula_that_is_not_a_string_is_a_formula_error():
    with pytest.raises(ml.FormulaError, match="string"):
        parse_formula(["y ~ x"])


# -- serialisation -------------------------------------------------------------------

@pytest.mark.parametrize("formula", [
    "y ~ x",
    "log(dnow) ~ diam*trt + (1 + diam || tree)",
    "I(-(y - 1)^2 / 3.5) ~ 0 + C(year) + scale(x):f + (x | a/b) + (1 | c:d)",
    "`log radon` ~ floor.level + center(`u full`)",
])
def test_spec_round_trips_through_json(formula):
    spec = parse_formula(formula)
    data = json.loads(json.dumps(spec_to_dict(spec)))
    again = spec_from_dict(data)
    assert again == spec
    assert [str(g) for g in again.groups] == [str(g) for g in spec.groups]


# -- binomial responses and offsets ---------------------------------------------------------

def test_cbind_response_keeps_the_call_and_gives_trials_as_successes_plus_failures():
    spec = parse_formula("cbind(incidence, size - incidence) ~ period + (1 | herd)")
    assert spec.response == Call("cbind", (Var("incidence"), BinOp("-", Var("size"), Var("incidence"))))
    assert spec.successes == Var("incidence") and spec.trials is None and spec.has_trials
    assert spec.trials_expr == Var("size")          # n - s + s, written n: new data need no response
    assert parse_formula("cbind(s, f) ~ x").trials_expr == BinOp("+", Var("s"), Var("f"))


def test_trials_after_a_bar_in_the_response():
    spec = parse_formula("s | trials(n) ~ x")
    assert spec.response == Var("s") and spec.trials == Var("n") and spec.trials_expr == Var("n")
    assert spec.variables() == ("s", "n", "x") and spec.variables(response=False) == ("x",)


def test_offsets_are_kept_apart_from_the_terms():
    spec = parse_formula("y ~ x + offset(log(exposure)) + (1 | g) + offset(z)")
    assert spec.offsets == (Call("log", (Var("exposure"),)), Var("z"))
    assert [term_name(t) for t in spec.fixed.terms] == ["x"] and spec.fixed.intercept
    assert spec.variables(response=False) == ("x", "g", "exposure", "z")


@pytest.mark.parametrize("formula, column, match", [
    ("log(cbind(a, b)) ~ x", 4, "cbind"),
    ("y ~ cbind(a, b)", 4, "whole response"),
    ("cbind(a, b) | trials(n) ~ x", 12, "already gives the trials"),
    ("y | foo(w) ~ x", 4, "takes addition terms"),
    ("trials(n) ~ x", 0, "follows the response"),
    ("y ~ x + (offset(t) | g)", 9, "term of its own"),
    ("y ~ x - offset(t)", 8, "cannot be removed"),
    ("y ~ offset(t):x", 13, "term of its own"),
    ("y ~ x*offset(t)", 6, "term of its own"),
    ("cbind(a) ~ x", 0, "takes 2 argument"),
])
def test_malformed_binomial_and_offset_forms_point_at_the_fault(formula, column, match):
    error = formula_error(formula)
    assert match in str(error)
    assert caret_column(error) == column


@pytest.mark.parametrize("formula", [
    "cbind(incidence, size - incidence) ~ period + (1 | herd)",
    "s | trials(n) ~ x + offset(log(t)) + (1 | g)",
])
def test_binomial_and_offset_specs_round_trip_through_json(formula):
    spec = parse_formula(formula)
    assert spec_from_dict(json.loads(json.dumps(spec_to_dict(spec)))) == spec
