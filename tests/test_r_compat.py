"""R compatibility: formulas as lme4's and brms's help pages, tests and vignettes write them.

Each formula below is copied from the file named in its comment (lme4 at commit 32b5bfdc,
brms's ``man/``), run on the real data set it was written for (``../shared/data``, with
the columns R's copy has as factors made categorical) or on a simulated frame with the
columns it needs. Each builds a model (parsing, design, priors: all that depends on the
formula; sampling does not), a few fit with short chains, and those outside our model
class raise our own error. The design tests check the fixed-effects matrix against R's
``model.matrix`` where its output is published or derived by hand from R's coding rules.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.design import build_design
from multilevel.design.rfunctions import r_round
from multilevel.formula import parse_formula
from multilevel.results.response_levels import modelled_level

from conftest import read_shared


def _categorical(data: pd.DataFrame, *names: str) -> pd.DataFrame:
    """The frame with ``names`` as strings: the columns R's copy of the data has as factors."""
    return data.assign(**{name: data[name].astype(str) for name in names})


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(101)
    simulated = {
        # lme4 tests/testthat/test-lmer.R: d <- data.frame(z = rnorm(200), f = factor(sample(1:10, 200, TRUE)))
        "d": pd.DataFrame({"z": rng.normal(size=200),
                           "f": pd.Categorical(rng.integers(1, 11, 200).astype(str), [str(i) for i in range(1, 11)])}),
        # lme4 tests/testthat/test-predict.R: groups = rep(1:3, each = 100), x, dv = rnorm(300)
        "train": pd.DataFrame({"groups": np.repeat([1, 2, 3], 100), "x": rng.normal(size=300),
                               "dv": rng.normal(size=300)}),
        # lme4 man/gopherdat2.Rd: shells, year, prev, Area, Site
        "gopher": pd.DataFrame({"shells": rng.poisson(2, 60), "year": np.tile([2004, 2005, 2006], 20),
                                "prev": rng.uniform(0, 80, 60), "Area": rng.uniform(1, 5, 60),
                                "Site": np.repeat([f"s{i}" for i in range(10)], 6)}),
        # brms man/brm.Rd: epilepsy's count, zBase, Trt, patient
        "epilepsy": pd.DataFrame({"count": rng.poisson(5, 80), "zBase": rng.normal(size=80),
                                  "Trt": np.tile(["0", "1"], 40), "patient": np.repeat(np.arange(20), 4)}),
        # brms man/brm.Rd: data4 <- data.frame(ntrials, success, x)
        "data4": pd.DataFrame({"ntrials": np.full(100, 10), "success": rng.binomial(10, 0.4, 100),
                               "x": rng.normal(size=100)}),
        # brms man/emmeans-brms-helpers.Rd: mtcars' mpg and cyl
        "mtcars": pd.DataFrame({"mpg": rng.uniform(10, 34, 32), "cyl": rng.choice([4, 6, 8], 32)}),
    }
    return simulated


def _real(name: str) -> pd.DataFrame:
    data = read_shared(f"{name}.csv")
    if name == "cbpp":
        return _categorical(data, "herd", "period")
    if name == "grouseticks":
        return _categorical(data, "YEAR", "BROOD", "INDEX", "LOCATION")
    return data


#: (source, data set, formula, options of ml.fit): formulas that must build a model.
BUILDS = [
    ("lme4 man/Dyestuff.Rd", "Dyestuff", "Yield ~ 1|Batch", {}),
    ("lme4 man/Penicillin.Rd", "Penicillin", "diameter ~ (1|plate) + (1|sample)", {}),
    ("lme4 man/lmer.Rd", "sleepstudy", "Reaction ~ Days + (Days | Subject)", {}),
    ("lme4 man/lmer.Rd", "sleepstudy", "Reaction ~ Days + (Days || Subject)", {}),
    ("lme4 man/sleepstudy.Rd", "sleepstudy", "Reaction ~ Days + (1|Subject) + (0+Days|Subject)", {}),
    ("lme4 tests/lmer-1.R", "sleepstudy", "log(Reaction) ~ log(Days+1) + (log(Days+1)|Subject)", {}),
    ("lme4 tests/testthat/test-methods.R", "sleepstudy", "Reaction ~ log(1+Days) + (1 | Subject)", {}),
    ("lme4 tests/testthat/test-glmernb.R", "sleepstudy", "Reaction > 250 ~ Days + (1|Subject)",
     {"family": "poisson"}),
    ("lme4 man/cbpp.Rd", "cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
     {"family": "binomial"}),
    ("lme4 man/cbpp.Rd", "cbpp", "incidence / size ~ period + (1 | herd)",
     {"family": "binomial", "weights": "size"}),
    ("lme4 man/grouseticks.Rd", "grouseticks", "TICKS~YEAR+HEIGHT+(1|BROOD)+(1|INDEX)+(1|LOCATION)",
     {"family": "poisson"}),
    ("lme4 tests/testthat/test-lmer.R", "d", "z~ as.numeric(f) + 1|f", {}),
    ("lme4 tests/testthat/test-predict.R", "train", "dv ~ . - groups + (1 | groups)", {}),
    ("lme4 man/gopherdat2.Rd", "gopher", "shells ~ factor(year) + prev + offset(log(Area)) + (1|Site)",
     {"family": "poisson"}),
    ("brms man/brm.Rd", "epilepsy", "count ~ zBase * Trt + (1|patient)", {"family": "poisson"}),
    ("brms man/brm.Rd", "data4", "success | trials(ntrials) ~ x", {"family": "binomial(probit)"}),
    ("brms man/emmeans-brms-helpers.Rd", "mtcars", "log(mpg) ~ factor(cyl)", {}),
]

#: (source, data set, formula, options): formulas outside our model class, refused with our error.
REFUSED = [
    # brms's category-specific effects of an sratio model
    ("brms man/brm.Rd", "epilepsy", "count ~ period + carry + cs(treat)", {"family": "sratio"}),
    # brms's monotonic effects
    ("brms man/mo.Rd", "epilepsy", "count ~ mo(zBase) + (1|patient)", {"family": "poisson"}),
    # nlme's correlation structures written into a formula
    ("nlme man/corAR1.Rd", "sleepstudy", "Reaction ~ Days + nlme::corAR1(Days)", {}),
]


def _data(name: str, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return frames[name] if name in frames else _real(name)


@pytest.mark.unit
@pytest.mark.parametrize("source, name, formula, options", BUILDS, ids=[b[2] for b in BUILDS])
def test_formulas_of_lme4_and_brms_build_a_model(source, name, formula, options, frames):
    model = ml.build_model(formula, _data(name, frames), **options)
    assert model.design.num_rows == len(_data(name, frames))
    assert model.design.X.shape[1] == len(model.layout.fixed)


@pytest.mark.unit
@pytest.mark.parametrize("source, name, formula, options", REFUSED, ids=[r[2] for r in REFUSED])
def test_formulas_outside_the_model_class_raise_our_error(source, name, formula, options, frames):
    with pytest.raises(ml.MultilevelError):
        ml.build_model(formula, _data(name, frames), **options)


@pytest.mark.unit
def test_the_top_level_bar_is_the_group_term_with_an_intercept_only_fixed_part(frames):
    # lme4 reads z ~ as.numeric(f) + 1 | f as z ~ 1 + (1 + as.numeric(f) | f)
    model = ml.build_model("z~ as.numeric(f) + 1|f", frames["d"])
    (group,) = model.design.groups
    assert model.design.columns == ("Intercept",)
    assert group.name == "f" and group.columns == ("Intercept", "as.numeric(f)") and group.correlated
    # as.numeric() of a factor is its level numbers: here the levels are 1..10 in order
    np.testing.assert_array_equal(group.z[:, 1], frames["d"]["f"].astype(int).to_numpy(dtype=float))


@pytest.mark.unit
def test_dot_is_every_other_column_and_minus_removes_one(frames):
    model = ml.build_model("dv ~ . - groups + (1 | groups)", frames["train"])
    assert model.design.columns == ("Intercept", "x")
    assert [g.name for g in model.design.groups] == ["groups"]
    spec = ml.Formula("dv ~ x", "sigma ~ . - groups").parse(frames["train"].columns)
    assert [str(t[0]) for t in spec.dpars[0].fixed.terms] == ["x"]          # the response is left out


@pytest.mark.unit
def test_a_proportion_with_weights_is_the_binomial_of_its_counts():
    # lme4 man/cbpp.Rd: m1p (incidence / size, weights = size) is equivalent to m1 (cbind)
    cbpp = _real("cbpp")
    m1 = ml.build_model("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    m1p = ml.build_model("incidence / size ~ period + (1 | herd)", cbpp, family="binomial", weights="size")
    np.testing.assert_array_equal(m1p.design.y, m1.design.y)
    np.testing.assert_array_equal(m1p.design.trials, m1.design.trials)
    np.testing.assert_array_equal(m1p.design.X, m1.design.X)
    np.testing.assert_array_equal(m1p.design.groups[0].refs, m1.design.groups[0].refs)


@pytest.mark.unit
def test_a_proportion_times_its_weight_must_be_a_whole_number():
    cbpp = _real("cbpp")
    with pytest.raises(ml.DataError, match="not a whole number of successes in rows 0"):
        ml.build_model("I(incidence / size + 0.01) ~ period + (1 | herd)", cbpp, family="binomial",
                       weights="size")


@pytest.mark.unit
def test_weights_of_other_families_are_likelihood_weights():
    cbpp = _real("cbpp")
    model = ml.build_model("incidence ~ period + (1 | herd)", cbpp, family="poisson", weights="size")
    np.testing.assert_array_equal(model.design.weights, cbpp["size"].to_numpy(dtype=float))
    with pytest.raises(ml.FormulaError, match="weights are given twice"):
        ml.build_model("incidence | weights(size) ~ period", cbpp, family="poisson", weights="size")


@pytest.mark.unit
@pytest.mark.parametrize("response, values", [
    ("strings", np.array(["no", "yes", "yes", "no"] * 45)),
    ("booleans", np.array([False, True, True, False] * 45)),
    ("categorical", pd.Categorical(["no", "yes", "yes", "no"] * 45)),
])
def test_a_two_level_bernoulli_response_models_its_second_level(response, values, sleepstudy):
    model = ml.build_model("high ~ Days + (1 | Subject)", sleepstudy.assign(high=values), family="bernoulli")
    np.testing.assert_array_equal(model.design.y, np.array([0, 1, 1, 0] * 45, dtype=float))


@pytest.mark.unit
def test_a_bernoulli_response_of_three_levels_is_refused_with_what_to_write(sleepstudy):
    data = sleepstudy.assign(grade=np.array(["a", "b", "c"] * 60))
    with pytest.raises(ml.DataError, match=r"has 3 categories .* \(grade == 'c'\)"):
        ml.build_model("grade ~ Days + (1 | Subject)", data, family="bernoulli")


@pytest.mark.unit
def test_round_of_a_response_is_a_count(sleepstudy):
    model = ml.build_model("round(Reaction) ~ Days + (1 | Subject)", sleepstudy, family="poisson")
    np.testing.assert_array_equal(model.design.y, np.rint(sleepstudy["Reaction"].to_numpy()))


@pytest.mark.unit
def test_r_round_is_half_to_even_with_digits():
    # R's ?Round: round(0.5) is 0 and round(-1.5) is -2 (IEC 60559: go to the even digit)
    np.testing.assert_array_equal(r_round(np.array([0.5, 1.5, 2.5, -1.5, -0.5])), [0, 2, 2, -2, -0.0])
    np.testing.assert_array_equal(r_round(np.array([3.14159, -3.14159, 2.5]), 2), [3.14, -3.14, 2.5])
    np.testing.assert_array_equal(r_round(np.array([1234.0, 1250.0]), -2), [1200.0, 1200.0])


@pytest.mark.unit
@pytest.mark.parametrize("formula, message", [
    ("Reaction ~ as.character(Days)", "as.character\\(\\) is not supported: write factor\\(x\\)"),
    ("Reaction ~ Days + nlme::corAR1(Days)", "nlme::corAR1\\(\\) is not supported"),
    ("Reaction ~ foo::log(Days)", "functions of package 'foo' are not understood; write log\\(\\)"),
    ("Reaction ~ Days > 2", "a comparison in a term goes in parentheses"),
])
def test_r_functions_we_do_not_take_name_themselves_and_what_to_write(formula, message, sleepstudy):
    with pytest.raises(ml.FormulaError, match=message):
        ml.build_model(formula, sleepstudy)


@pytest.mark.unit
@pytest.mark.parametrize("formula, suggestion", [
    ("reaction ~ Days", "'Reaction'"), ("Reaction ~ days", "'Days'"), ("Reaction ~ Days + (1 | sub_ject)", "'Subject'"),
])
def test_a_column_that_differs_by_case_or_punctuation_is_suggested(formula, suggestion, sleepstudy):
    with pytest.raises(ml.DataError, match=f"did you mean {suggestion}"):
        ml.build_model(formula, sleepstudy)


@pytest.mark.unit
def test_namespaced_and_back_quoted_names_read_as_r_reads_them(sleepstudy):
    data = sleepstudy.rename(columns={"Reaction": "reaction time", "Subject": "the subject"})
    model = ml.build_model("`reaction time` ~ base::log(Days + 1) + (1 | `the subject`)", data)
    assert model.design.columns == ("Intercept", "log(Days+1)")
    assert model.design.groups[0].name == "the subject"


@pytest.mark.unit
@pytest.mark.parametrize("formula, line", [
    ("Reaction > 250 ~ Days + (1|Subject)", "P(Reaction > 250 = TRUE) is modelled (TRUE is 1, FALSE is 0"),
    ("high ~ Days + (1|Subject)", "P(high = yes) is modelled (yes is 1, no is 0"),
])
def test_the_summary_header_names_the_modelled_level(formula, line, sleepstudy):
    data = sleepstudy.assign(high=np.where(sleepstudy["Reaction"] > 250, "yes", "no"))
    model = ml.build_model(formula, data, family="bernoulli")
    np.testing.assert_array_equal(model.design.y, (sleepstudy["Reaction"] > 250).to_numpy(dtype=float))
    assert line in modelled_level(model.spec, model.encoders, model.family)


# -- a fit ------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::multilevel.ConvergenceWarning")   # 100 draws: a smoke test of the path
def test_the_top_level_bar_fits():
    # lme4 man/Dyestuff.Rd
    fit = ml.fit("Yield ~ 1|Batch", _real("Dyestuff"), chains=1, draws=100, warmup=100, progress=False)
    assert {"Intercept", "sigma", "sd(Intercept|Batch)"} <= set(fit.summary().index)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::multilevel.ConvergenceWarning")
@pytest.mark.parametrize("source, name, formula, options", BUILDS, ids=[b[2] for b in BUILDS])
def test_formulas_of_lme4_and_brms_fit(source, name, formula, options, frames):
    """Each formula runs through the sampler the model gets: a finite posterior for every parameter."""
    fit = ml.fit(formula, _data(name, frames), chains=2, draws=200, warmup=200, seed=3, progress=False, **options)
    summary = fit.summary()
    assert np.isfinite(summary["mean"]).all() and np.isfinite(summary["sd"]).all()


# -- the fixed-effects design against R's model.matrix ------------------------------------------

@pytest.fixture(scope="module")
def gl_frame() -> pd.DataFrame:
    """R's ?model.matrix example: dd <- data.frame(a = gl(3, 4), b = gl(4, 1, 12)), with a response
    and a number x = 1..12."""
    return pd.DataFrame({"y": np.zeros(12), "a": np.repeat(["1", "2", "3"], 4), "b": np.tile(["1", "2", "3", "4"], 3),
                         "x": np.arange(1.0, 13.0)})


def _matrix(formula: str, data: pd.DataFrame) -> dict[str, np.ndarray]:
    design = build_design(parse_formula(formula, data.columns), data)
    return {name: design.X[:, j] for j, name in enumerate(design.columns)}


def _indicator(values, level) -> np.ndarray:
    return (np.asarray(values) == level).astype(float)


@pytest.mark.unit
def test_treatment_contrasts_equal_r_model_matrix(gl_frame):
    # ?model.matrix: model.matrix(~ a + b, dd) has (Intercept), a2, a3, b2, b3, b4
    got = _matrix("y ~ a + b", gl_frame)
    assert list(got) == ["Intercept", "a[2]", "a[3]", "b[2]", "b[3]", "b[4]"]
    np.testing.assert_array_equal(got["a[2]"], [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(got["b[4]"], [0, 0, 0, 1] * 3)


@pytest.mark.unit
@pytest.mark.parametrize("formula", ["y ~ 0 + a", "y ~ a - 1", "y ~ -1 + a", "y ~ a + 0"])
def test_no_intercept_codes_every_level_as_r_does(formula, gl_frame):
    got = _matrix(formula, gl_frame)
    assert list(got) == ["a[1]", "a[2]", "a[3]"]
    for level in "123":
        np.testing.assert_array_equal(got[f"a[{level}]"], _indicator(gl_frame["a"], level))


@pytest.mark.unit
def test_factor_by_number_interaction_equals_r_model_matrix(gl_frame):
    # R: model.matrix(~ a * x) is (Intercept), a2, a3, x, a2:x, a3:x
    got = _matrix("y ~ a * x", gl_frame)
    assert list(got) == ["Intercept", "a[2]", "a[3]", "x", "a[2]:x", "a[3]:x"]
    np.testing.assert_array_equal(got["a[3]:x"], _indicator(gl_frame["a"], "3") * gl_frame["x"])


@pytest.mark.unit
def test_in_is_the_interaction_as_r_reads_it(gl_frame):
    # R: x %in% a is x:a; with an intercept and no main effect of a, a is coded in full: x:a1, x:a2, x:a3
    got = _matrix("y ~ x %in% a", gl_frame)
    assert got.keys() == _matrix("y ~ x:a", gl_frame).keys()
    assert list(got) == ["Intercept", "x:a[1]", "x:a[2]", "x:a[3]"]
    np.testing.assert_array_equal(got["x:a[2]"], _indicator(gl_frame["a"], "2") * gl_frame["x"])


@pytest.mark.unit
def test_a_logical_term_is_a_factor_of_false_and_true_named_as_r_names_it(gl_frame):
    # R: model.matrix(~ (x > 6)) has (Intercept) and `x > 6TRUE`; without the intercept, FALSE too
    got = _matrix("y ~ (x > 6)", gl_frame)
    assert list(got) == ["Intercept", "x > 6TRUE"]
    np.testing.assert_array_equal(got["x > 6TRUE"], (gl_frame["x"] > 6).astype(float))
    assert list(_matrix("y ~ 0 + (x > 6)", gl_frame)) == ["x > 6FALSE", "x > 6TRUE"]
    assert list(_matrix("y ~ I(x > 6)", gl_frame)) == ["Intercept", "I(x > 6)TRUE"]
    both = _matrix('y ~ (a == "2" & x != 6)', gl_frame)['a == "2" & x != 6TRUE']
    np.testing.assert_array_equal(both, _indicator(gl_frame["a"], "2") * (gl_frame["x"] != 6))


@pytest.mark.unit
def test_factor_of_a_number_has_levels_in_numeric_order(gl_frame):
    data = gl_frame.assign(d=np.tile([10.0, 2.0, 9.0], 4))
    got = _matrix("y ~ factor(d)", data)
    assert list(got) == ["Intercept", "factor(d)[9]", "factor(d)[10]"]       # R: factor(d)9, factor(d)10
    np.testing.assert_array_equal(got["factor(d)[10]"], _indicator(data["d"], 10.0))


@pytest.mark.unit
def test_r_functions_of_columns_compute_as_r(gl_frame):
    got = _matrix("y ~ log(x, base = 2) + pmin(x, 4) + pmax(x, 4, 10) + sign(x - 6) + ceiling(x / 5) + "
                  "floor(x / 5) + trunc(-x / 3) + as.numeric(a) + round(x / 8, 1)", gl_frame)
    x = gl_frame["x"].to_numpy()
    np.testing.assert_allclose(got["log(x, 2)"], np.log2(x), rtol=1e-15)
    np.testing.assert_array_equal(got["pmin(x, 4)"], np.minimum(x, 4))
    np.testing.assert_array_equal(got["pmax(x, 4, 10)"], np.maximum(x, 10))
    np.testing.assert_array_equal(got["sign(x-6)"], np.sign(x - 6))
    np.testing.assert_array_equal(got["ceiling(x/5)"], np.ceil(x / 5))
    np.testing.assert_array_equal(got["floor(x/5)"], np.floor(x / 5))
    np.testing.assert_array_equal(got["trunc(-x/3)"], np.trunc(-x / 3))
    np.testing.assert_array_equal(got["as.numeric(a)"], np.repeat([1.0, 2.0, 3.0], 4))   # a factor's codes
    # x / 8 = 0.125, 0.25, ..., 1.5: R's round to 1 digit; 0.25 -> 0.2 and 0.75 -> 0.8 (even digit)
    np.testing.assert_allclose(got["round(x/8, 1)"], [0.1, 0.2, 0.4, 0.5, 0.6, 0.8, 0.9, 1.0, 1.1, 1.2, 1.4, 1.5])


# -- parsing as R reads it ----------------------------------------------------------------------

@pytest.mark.unit
@pytest.mark.parametrize("formula, fixed, groups", [
    ("y ~ 1 | g", "1", ["(1 | g)"]),
    ("y ~ x + 1 | g", "1", ["(1 + x | g)"]),
    ("y ~ x || g", "1", ["(1 + x || g)"]),
    ("y ~ a * b %in% c", "1 + a + b:c + a:b:c", []),                  # %in% binds tighter than *
    ("y ~ x - 1 + (0 + x | g)", "0 + x", ["(0 + x | g)"]),
    ("y ~ x + 0 + (x - 1 | g)", "0 + x", ["(0 + x | g)"]),
    ("y ~ -1 + x - 0", "1 + x", []),                                    # R: - 0 puts the intercept back
    ("y ~ (x - 1) + z", "0 + x + z", []),                               # R's parentheses only group
    ("y ~ ((0 + x))", "0 + x", []),
    ("y ~ Days + ((1 | Subject) + (0 + Days | Subject))", "1 + Days", ["(1 | Subject)", "(0 + Days | Subject)"]),
    ("y ~ (x > 2) + !flag", "1 + x > 2 + !flag", []),
])
def test_formulas_parse_as_lme4_reads_them(formula, fixed, groups):
    spec = parse_formula(formula)
    assert str(spec.fixed) == fixed and [str(g) for g in spec.groups] == groups


@pytest.mark.unit
@pytest.mark.parametrize("formula", [
    'y ~ (sex == "F") + I(!(x > 1) | z <= 2) + round(x, 1) + log(x, base = 10) + pmin(x, z, 3)',
    "Reaction > 250 ~ factor(Days) + (1 | factor(Subject))",
])
def test_specs_with_r_expressions_survive_saving(formula):
    from multilevel.formula.spec import spec_from_dict, spec_to_dict

    spec = parse_formula(formula)
    assert spec_from_dict(spec_to_dict(spec)) == spec
    assert parse_formula(f"{spec.response} ~ {' + '.join(f'({t[0]})' for t in spec.fixed.terms)}").fixed == spec.fixed


@pytest.mark.unit
def test_new_data_is_coded_with_the_fitting_data_s_levels(gl_frame):
    spec = parse_formula("y ~ factor(x > 6) + (x > 9) + factor(round(x / 4))", gl_frame.columns)
    fitted = build_design(spec, gl_frame)
    new = pd.DataFrame({"x": [12.0, 1.0]})                               # fewer levels than in fitting
    again = build_design(spec, new, encoders=fitted.encoders, with_response=False)
    assert again.columns == fitted.columns
    expected = [row for row, x in zip(fitted.X, gl_frame["x"]) if x in (12.0, 1.0)]
    np.testing.assert_array_equal(again.X, np.array(expected)[::-1])
