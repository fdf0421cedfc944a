"""``fit.hypothesis``: brms's ``hypothesis()`` on the library's parameter names.

The fit here is built from draws the test chose (``known_fits``: no sampler runs)
and read back from its file, so every expected number is computed from the same
draws with numpy: a probability is a count of draws, an estimate and error the
mean and sd (``ddof=1``) of ``left - right``, an interval ``numpy.quantile``.
Agreement is exact up to summation order (1e-12).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

import multilevel as ml
from known_fits import known_fit, stacked
from multilevel.cli import main
from multilevel.results.hypothesis import hypothesis_table

pytestmark = pytest.mark.unit

LEVELS = ["north", "south", "New York"]


def ratings(seed: int = 0, rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"y": rng.normal(size=rows), "x": rng.normal(size=rows),
                         "cheese": rng.choice(list("ABC"), rows), "g": rng.choice(LEVELS, rows)})


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[ml.Fit, str]:
    """``y ~ x + cheese + (1 + x | g)`` from known draws (x centred at 0.4), saved to a file."""
    fit = known_fit("y ~ x + cheese + (1 + x | g)", ratings(), means={"x": 0.4, "cheese[B]": 0.2})
    path = tmp_path_factory.mktemp("fits") / "known.nc"
    fit.save(path)
    return fit, str(path)


@pytest.fixture(scope="module")
def fit(saved) -> ml.Fit:
    return ml.load(saved[1])


def caret_at(message: str) -> int:
    """The position the caret of an error message points at, in the text on the line above."""
    *_, text_line, caret_line = message.splitlines()
    assert text_line.startswith("  ") and caret_line.strip() == "^"
    return len(caret_line) - 3


# -- one-sided hypotheses ------------------------------------------------------------------------
def test_greater_than_counts_the_draws_where_it_holds(fit):
    d = stacked(fit, "x") - 0.2
    row = fit.hypothesis("x > 0.2").iloc[0]
    p = np.mean(d > 0)
    assert 0 < p < 1
    assert row["hypothesis"] == "x > 0.2"
    assert row["post_prob"] == p and row["evid_ratio"] == pytest.approx(p / (1 - p), rel=1e-12)
    np.testing.assert_allclose([row["estimate"], row["error"]], [d.mean(), d.std(ddof=1)], rtol=0, atol=1e-12)


def test_a_one_sided_hypothesis_has_a_one_sided_interval(fit):
    table = fit.hypothesis(["x > 0.2", "2 * x + Intercept < 1"])
    assert list(table.columns) == ["hypothesis", "estimate", "error", "lower", "upper", "evid_ratio", "post_prob"]
    greater = stacked(fit, "x") - 0.2
    assert table.loc["x > 0.2", "lower"] == pytest.approx(np.quantile(greater, 0.05), abs=1e-12)
    assert table.loc["x > 0.2", "upper"] == np.inf
    less = 2 * stacked(fit, "x") + stacked(fit, "Intercept") - 1  # brms: left - right < 0
    row = table.loc["2 * x + Intercept < 1"]
    assert row["lower"] == -np.inf and row["upper"] == pytest.approx(np.quantile(less, 0.95), abs=1e-12)
    assert row["post_prob"] == np.mean(less < 0)
    assert row["estimate"] == pytest.approx(less.mean(), abs=1e-12)


def test_a_hypothesis_that_every_draw_supports_has_infinite_evidence(fit):
    row = fit.hypothesis("sigma > 0").iloc[0]
    assert row["post_prob"] == 1 and row["evid_ratio"] == np.inf
    assert fit.hypothesis("sigma < 0").iloc[0][["post_prob", "evid_ratio"]].tolist() == [0, 0]


def test_prob_sets_the_interval_one_sided_or_central_under_the_same_column_names(fit):
    d = stacked(fit, "x")
    table = fit.hypothesis(["x > 0", "x = 0"], prob=0.9)
    assert list(table.columns[3:5]) == ["lower", "upper"]
    assert table.iloc[0]["lower"] == pytest.approx(np.quantile(d, 0.1), abs=1e-12)   # one-sided 90%
    np.testing.assert_allclose(table.iloc[1][["lower", "upper"]].astype(float), np.quantile(d, [0.05, 0.95]),
                               rtol=0, atol=1e-12)
    with pytest.raises(ml.DataError, match="prob must be between 0 and 1"):
        fit.hypothesis("x > 0", prob=95)


# -- equality ---------------------------------------------------------------------------------
def test_equality_has_the_central_interval_and_no_evidence_ratio(fit):
    d = stacked(fit, "cheese[B]") - stacked(fit, "cheese[C]")
    row = fit.hypothesis("cheese[B] - cheese[C] = 0").iloc[0]
    np.testing.assert_allclose(row[["estimate", "error", "lower", "upper"]].astype(float),
                               [d.mean(), d.std(ddof=1), *np.quantile(d, [0.025, 0.975])], rtol=0, atol=1e-12)
    assert np.isnan(row["evid_ratio"]) and np.isnan(row["post_prob"])  # Savage-Dickey needs prior draws
    same = fit.hypothesis("cheese[B] == cheese[C]").iloc[0]
    assert same["estimate"] == row["estimate"]


# -- the library's names ----------------------------------------------------------------------
def test_every_kind_of_parameter_can_be_named(fit):
    hypotheses = {
        "icc": "sd(Intercept|g)^2 / (sd(Intercept|g)^2 + sigma^2) > 0.5",
        "cor": "cor(Intercept,x|g) < 0",
        "levels": "Intercept|g[New York] - Intercept|g[north] = 0",
        "quoted": "`sd(x|g)` > `sd(Intercept|g)`",
        "slope": "x + x|g[south] > 0",
    }
    draws = fit.hypothesis(hypotheses, summary=False)
    sd_a, sd_x, sigma = (stacked(fit, n) for n in ("sd(Intercept|g)", "sd(x|g)", "sigma"))
    effects = stacked(fit, "Intercept|g")  # (draws, levels), levels in the fit's order
    level = {name: i for i, name in enumerate(fit.idata.posterior["Intercept|g"].coords["g"].values)}
    expected = {
        "icc": sd_a ** 2 / (sd_a ** 2 + sigma ** 2) - 0.5,
        "cor": stacked(fit, "cor(Intercept,x|g)"),
        "levels": effects[:, level["New York"]] - effects[:, level["north"]],
        "quoted": sd_x - sd_a,
        "slope": stacked(fit, "x") + stacked(fit, "x|g")[:, level["south"]],
    }
    assert list(draws.columns) == list(hypotheses) and len(draws) == 2 * 400
    for name, values in expected.items():
        np.testing.assert_allclose(draws[name], values, rtol=1e-12, atol=1e-12, err_msg=name)


def test_a_dict_names_the_rows_and_a_list_uses_the_text(fit):
    table = fit.hypothesis({"positive slope": "x > 0", "B above C": "cheese[B] > cheese[C]"})
    assert list(table.index) == ["positive slope", "B above C"]
    assert list(table["hypothesis"]) == ["x > 0", "cheese[B] > cheese[C]"]
    assert list(fit.hypothesis(["x > 0", " x < 1 "]).index) == ["x > 0", "x < 1"]
    draws = fit.hypothesis(["x > 0", "x < 1"], summary=False)
    np.testing.assert_array_equal(draws["x < 1"], stacked(fit, "x") - 1)


def test_the_fit_in_memory_and_read_back_give_the_same_table(saved, fit):
    original = saved[0]
    hypotheses = ["x > 0", "Intercept|g[New York] < 0", "sigma = 1"]
    pd.testing.assert_frame_equal(original.hypothesis(hypotheses), fit.hypothesis(hypotheses))


# -- the expression language (on a posterior of a few variables) ------------------------------
def toy_posterior() -> xr.Dataset:
    rng = np.random.default_rng(3)
    scalars = {name: rng.normal(1.0, 1.0, (2, 50)) for name in ("x", "x2", "x:z", "a")}
    scalars["s"] = rng.gamma(2.0, 1.0, (2, 50))
    return xr.Dataset({**{k: (("chain", "draw"), v) for k, v in scalars.items()},
                       "a|g": (("chain", "draw", "g"), rng.normal(size=(2, 50, 2)))}, coords={"g": ["u", "v w"]})


def toy_draws(text: str) -> np.ndarray:
    return hypothesis_table(toy_posterior(), {"h": text}, summary=False)["h"].to_numpy()


def toy(name: str) -> np.ndarray:
    return toy_posterior()[name].values.ravel()


@pytest.mark.parametrize("text, expected", [
    ("-x^2 = 0", lambda: -(toy("x") ** 2)),              # ^ binds tighter than unary minus
    ("2^-1 = x", lambda: 0.5 - toy("x")),               # a signed exponent
    ("s^2^0.5 = 0", lambda: toy("s") ** (2 ** 0.5)),      # ^ is right-associative
    ("x ** 2 = 0", lambda: toy("x") ** 2),
    ("x - -1 = 0", lambda: toy("x") + 1),
    ("1 - x - a = 0", lambda: 1 - toy("x") - toy("a")),    # - is left-associative
    ("x / 2 / a = 0", lambda: toy("x") / 2 / toy("a")),
    ("2 * (x + a) > 1e-1", lambda: 2 * (toy("x") + toy("a")) - 0.1),
    ("exp(log(s)) + sqrt(s) + abs(x) = .5", lambda: toy("s") + np.sqrt(toy("s")) + np.abs(toy("x")) - 0.5),
    ("x > a", lambda: toy("x") - toy("a")),
    ("x < (a + 1)", lambda: toy("x") - (toy("a") + 1)),
])
def test_arithmetic_follows_r_precedence(text, expected):
    np.testing.assert_allclose(toy_draws(text), expected(), rtol=1e-12)


def test_names_match_longest_first_and_only_as_whole_words():
    np.testing.assert_allclose(toy_draws("x:z - x2 > x"), toy("x:z") - toy("x2") - toy("x"), rtol=1e-12)
    np.testing.assert_allclose(toy_draws("a|g[v w] > a"), toy_posterior()["a|g"].values[..., 1].ravel()
                               - toy("a"), rtol=1e-12)
    with pytest.raises(ml.DataError, match=r"no parameter named 'xz' \(close names: x:z, x\)"):
        toy_draws("xz > 0")


# -- errors -----------------------------------------------------------------------------------
def test_an_unknown_name_is_named_with_close_names_and_a_caret(fit):
    with pytest.raises(ml.DataError) as error:
        fit.hypothesis("cheese[B] - cheese[E] = 0")
    message = str(error.value)
    assert message.startswith("hypothesis 'cheese[B] - cheese[E] = 0': no parameter named 'cheese[E]' "
                              "(close names: ")
    assert "cheese[B]" in message.splitlines()[0] and "cheese[C]" in message.splitlines()[0]
    assert caret_at(message) == len("cheese[B] - ")


def test_an_unknown_level_lists_the_levels_of_that_effect(fit):
    with pytest.raises(ml.DataError, match=r"no parameter named 'Intercept\|g\[east\]' \(close names: .*"
                                           r"Intercept\|g\[.*\]"):
        fit.hypothesis("Intercept|g[east] > 0")
    with pytest.raises(ml.DataError, match=r"Intercept\|g has one value per level: .* e\.g\. Intercept\|g\["):
        fit.hypothesis("Intercept|g > 0")
    with pytest.raises(ml.DataError, match=r"no parameter named 'beta'"):
        fit.hypothesis({"named": "`beta` > 0"})


@pytest.mark.parametrize("text, position, reason", [
    ("x + * 2 > 0", 4, "'*' where a parameter, a number or '(' is expected"),
    ("x > ", 3, "the expression ends where a parameter"),
    ("(x + 1 > 0", 7, "a comparison inside parentheses"),
    ("2 * (x + 1 > 0", 11, "a comparison inside parentheses"),
    ("(x + 1", 0, "this '(' is not closed"),
    ("x + 1) > 0", 5, "')' without a matching '('"),
    ("2 x > 0", 2, "an operator is missing before 'x'"),
    ("x $ 1 > 0", 2, "unexpected character '$'"),
    ("x >= 0", 2, "'>=' is not a comparison here: write '>'"),
    ("`x > 0", 0, "this backquote is not closed"),
])
def test_a_malformed_hypothesis_shows_a_caret_under_the_fault(fit, text, position, reason):
    with pytest.raises(ml.DataError) as error:
        fit.hypothesis(text)
    message = str(error.value)
    assert message.startswith(f"hypothesis {text.strip()!r}: {reason}")
    assert caret_at(message) == position


def test_a_hypothesis_is_one_comparison(fit):
    with pytest.raises(ml.DataError) as error:
        fit.hypothesis(["x > 0", "0 < x < 1"])
    message = str(error.value)
    assert message.startswith("hypothesis '0 < x < 1': a second comparison ('<', then '<')")
    assert caret_at(message) == len("0 < x ")
    with pytest.raises(ml.DataError, match="hypothesis 'x': no comparison: write the hypothesis as 'left > right'"):
        fit.hypothesis("x")


def test_values_that_are_not_finite_and_arguments_that_are_not_hypotheses_are_refused(fit):
    with pytest.raises(ml.DataError, match=r"hypothesis 'log\(x\) > 0' is not finite for \d+ of 800 draws"):
        fit.hypothesis("log(x) > 0")
    for bad, reason in ((3, "must be a string such as 'x > 0'"), ([], "no hypotheses given"),
                        (["x > 0", None], "a hypothesis must be a string"), ({1: "x > 0"}, "must be strings")):
        with pytest.raises(ml.DataError, match=reason):
            fit.hypothesis(bad)


# -- group-level effects, level by level (brms's scope and group) -------------------------------
def test_scope_ranef_tests_each_levels_deviation_and_coef_its_coefficient(fit):
    levels = list(fit.idata.posterior["x|g"].coords["g"].values)
    deviations = stacked(fit, "x|g")                  # (draws, levels)
    ranef = fit.hypothesis(["x > 0", "Intercept - x = 0"], scope="ranef", group="g")
    assert list(ranef.columns[:3]) == ["group", "level", "hypothesis"]
    assert list(ranef["level"]) == [level for level in levels for _ in range(2)]
    assert (ranef["group"] == "g").all() and list(ranef.index) == ["x > 0", "Intercept - x = 0"] * len(levels)
    for j, level in enumerate(levels):
        rows = ranef[ranef["level"] == level]
        assert rows.iloc[0]["post_prob"] == np.mean(deviations[:, j] > 0)
        difference = stacked(fit, "Intercept|g")[:, j] - deviations[:, j]
        assert rows.iloc[1]["estimate"] == pytest.approx(difference.mean(), abs=1e-12)
    coef = fit.hypothesis("x > 0.3", scope="coef", group="g", summary=False)
    assert list(coef.columns) == [(level, "x > 0.3") for level in levels]
    np.testing.assert_allclose(coef.to_numpy(), stacked(fit, "x")[:, None] + deviations - 0.3, atol=1e-12)


def test_scope_and_group_are_checked_and_named(fit):
    with pytest.raises(ml.DataError, match="scope must be one of 'standard', 'ranef', 'coef', got 'fixef'"):
        fit.hypothesis("x > 0", scope="fixef")
    with pytest.raises(ml.DataError, match="group= must be one of 'g', got None"):
        fit.hypothesis("x > 0", scope="ranef")
    with pytest.raises(ml.DataError, match="group='h' is for scope='ranef' or scope='coef'"):
        fit.hypothesis("x > 0", group="h")
    with pytest.raises(ml.DataError, match=r"effect columns of g \(Intercept, x\).*no parameter named 'sigma'"):
        fit.hypothesis("sigma > 0", scope="coef", group="g")


# -- the command line ---------------------------------------------------------------------------
def test_the_cli_prints_the_table_of_a_saved_fit(saved, fit, capsys):
    assert main(["hypothesis", saved[1], "x > 0", "cheese[B] - cheese[C] = 0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["estimate", "error", "lower", "upper", "evid_ratio", "post_prob"]
    assert lines[2].startswith("x > 0 ") and lines[3].startswith("cheese[B] - cheese[C] = 0 ")
    expected = fit.hypothesis("x > 0").iloc[0]
    assert float(lines[2].split()[-1]) == pytest.approx(expected["post_prob"], abs=1e-4)


def test_the_cli_reports_a_bad_hypothesis_with_exit_status_2(saved, capsys):
    assert main(["hypothesis", saved[1], "x > 0", "cheese[E] > 0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("multilevel: error: hypothesis 'cheese[E] > 0': no parameter named 'cheese[E]'")
    assert err.splitlines()[-1] == "  ^"


def test_a_prior_only_fit_gives_an_equality_the_savage_dickey_evidence_ratio():
    """x's draws are N(0.4, 0.3²) (known_fit) and its prior N(0, 1): the ratio of the two
    densities at 0 is N(0; 0.4, 0.3) / N(0; 0, 1) = 0.676. Each kernel density estimate
    from 800 or 2000 draws is within ~6% of its density at 0 (bias of Scott's bandwidth
    ~3%, sd ~3%), so 20% is > 3 sds of the ratio's error."""
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"y": rng.normal(size=50), "x": rng.normal(size=50)})
    fit = known_fit("y ~ x", data, means={"x": 0.4})
    prior = ml.fit("y ~ x", data, priors={"b": ml.Normal(0, 1)}, prior_only=True, chains=1, draws=2000,
                   progress=False)
    table = fit.hypothesis("x = 0", prior=prior)
    exact = stats.norm.pdf(0, 0.4, 0.3) / stats.norm.pdf(0, 0, 1)
    assert table["evid_ratio"].iloc[0] == pytest.approx(exact, rel=0.2)
    assert table["post_prob"].iloc[0] == pytest.approx(table["evid_ratio"].iloc[0] / (1 + table["evid_ratio"].iloc[0]))
    assert np.isnan(fit.hypothesis("x = 0")["evid_ratio"].iloc[0])
    with pytest.raises(ml.DataError, match="prior_only=True"):
        fit.hypothesis("x = 0", prior="normal(0, 1)")


def test_the_cli_tests_a_hypothesis_at_each_level_of_a_group(saved, fit, capsys):
    assert main(["hypothesis", saved[1], "x > 0", "--scope", "coef", "--group", "g"]) == 0
    lines = capsys.readouterr().out.splitlines()
    levels = fit.idata.posterior["x|g"].coords["g"].values
    assert lines[0].split()[:2] == ["estimate", "error"] and len(lines) == 2 + len(levels)
    expected = fit.hypothesis("x > 0", scope="coef", group="g")
    assert [float(line.split()[-1]) for line in lines[2:]] == pytest.approx(list(expected["post_prob"]), abs=1e-4)
