"""fixef, ranef, coef, varcorr and the display of a fit, as brms and lme4 define them.

Every fit here is saved and read back with ``ml.load`` first: the accessors must work
from the file alone. Identities that hold draw by draw (coef = fixef + ranef, a
covariance = sd_i sd_j cor_ij) are checked exactly on the draws; summaries of the
same draws computed by two routes agree to 1e-12 (summation order only).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import multilevel as ml
from multilevel.model.layout import GroupLayout, Layout
from multilevel.results import accessors

FAST = dict(chains=2, draws=150, warmup=150, progress=False)


def grouped_data(seed: int = 0, groups: int = 8, per_group: int = 10, second: int = 0) -> pd.DataFrame:
    """y = 2 + 0.5 x + a_g + s_g x (+ c_h) + noise; ``second`` levels of a crossed factor h."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    x = rng.normal(size=g.size)
    y = 2.0 + 0.5 * x + rng.normal(0, 1.0, groups)[g] + rng.normal(0, 0.5, groups)[g] * x
    data = {"x": x, "g": [f"g{i:03d}" for i in g]}
    if second:
        h = rng.integers(0, second, g.size)
        y = y + rng.normal(0, 0.7, second)[h]
        data["h"] = [f"h{i}" for i in h]
    return pd.DataFrame({"y": y + rng.normal(0, 0.7, g.size), **data})


def fit_and_load(formula: str, data: pd.DataFrame, path) -> ml.Fit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of these short runs
        fit = ml.fit(formula, data, seed=1, **FAST)
    fit.save(path)
    return ml.load(path)


@pytest.fixture(scope="module")
def slope_fit(tmp_path_factory):
    """Correlated intercept and slope, ``y ~ x + (1 + x | g)``, read back from its file."""
    return fit_and_load("y ~ x + (1 + x | g)", grouped_data(), tmp_path_factory.mktemp("fits") / "slope.nc")


@pytest.fixture(scope="module")
def crossed_fit(tmp_path_factory):
    return fit_and_load("y ~ x + (1 | g) + (1 | h)", grouped_data(groups=6, second=4),
                        tmp_path_factory.mktemp("fits") / "crossed.nc")


@pytest.fixture(scope="module")
def many_levels_fit(tmp_path_factory):
    return fit_and_load("y ~ x + (1 | g)", grouped_data(groups=200, per_group=3),
                        tmp_path_factory.mktemp("fits") / "many.nc")


# -- fixef --------------------------------------------------------------------------
def test_fixef_has_one_row_per_population_effect_and_matches_summary(slope_fit):
    table = slope_fit.fixef()
    assert list(table.index) == ["Intercept", "x"]
    assert list(table.columns) == ["mean", "sd", "q2.5", "q97.5"]
    rows = slope_fit.summary(group_effects=False).loc[["Intercept", "x"], table.columns]
    np.testing.assert_allclose(table.to_numpy(), rows.to_numpy(), rtol=0, atol=1e-12)


def test_fixef_draws_are_the_stacked_posterior_and_prob_names_the_interval(slope_fit):
    draws = slope_fit.fixef(summary=False)
    assert draws.shape == (2 * 150, 2) and list(draws.columns) == ["Intercept", "x"]
    np.testing.assert_array_equal(draws["x"].to_numpy(), slope_fit.idata.posterior["x"].values.ravel())
    assert list(slope_fit.fixef(prob=0.5).columns) == ["mean", "sd", "q25", "q75"]


# -- ranef and coef -------------------------------------------------------------------
def test_ranef_is_tidy_with_every_level_and_term(slope_fit):
    table = slope_fit.ranef()
    assert list(table.columns) == ["group", "level", "term", "mean", "sd", "q2.5", "q97.5"]
    levels = [f"g{i:03d}" for i in range(8)]
    assert list(table["level"]) == levels * 2 and list(table["term"]) == ["Intercept"] * 8 + ["x"] * 8
    effects = slope_fit.idata.posterior["x|g"].values.reshape(-1, 8)
    np.testing.assert_allclose(table.loc[table.term == "x", "mean"], effects.mean(axis=0), rtol=0, atol=1e-12)


def test_coef_is_fixef_plus_ranef_draw_by_draw(slope_fit):
    fixed = slope_fit.fixef(summary=False)
    deviations = slope_fit.ranef(summary=False)
    totals = slope_fit.coef(summary=False)
    assert list(totals.columns) == list(deviations.columns)
    assert totals.columns.names == ["group", "level", "term"] and totals.shape == (300, 16)
    for group, level, term in totals.columns:
        np.testing.assert_array_equal(totals[(group, level, term)].to_numpy(),
                                      fixed[term].to_numpy() + deviations[(group, level, term)].to_numpy())
    summary = slope_fit.coef()
    np.testing.assert_allclose(summary["mean"], totals.mean(axis=0).to_numpy(), rtol=0, atol=1e-12)


def test_coef_of_a_column_without_a_fixed_effect_is_the_deviation_alone(tmp_path):
    fit = fit_and_load("y ~ 1 + (0 + x | g)", grouped_data(), tmp_path / "noslope.nc")
    deviations, totals = fit.ranef(summary=False), fit.coef(summary=False)
    slopes = [key for key in totals.columns if key[2] == "x"]
    assert len(slopes) == 8
    pd.testing.assert_frame_equal(totals[slopes], deviations[slopes])


def test_ranef_lists_both_grouping_factors_with_all_their_levels(crossed_fit):
    table = crossed_fit.ranef()
    assert {g: sorted(rows["level"]) for g, rows in table.groupby("group")} == {
        "g": [f"g{i:03d}" for i in range(6)], "h": [f"h{i}" for i in range(4)]}
    assert set(table["term"]) == {"Intercept"}
    assert set(crossed_fit.varcorr().query("kind == 'sd'")["group"]) == {"g", "h", "Residual"}


# -- varcorr ------------------------------------------------------------------------
def test_varcorr_sds_and_correlation_are_the_summary_rows(slope_fit):
    table = slope_fit.varcorr()
    assert list(table.columns) == ["group", "term1", "term2", "kind", "mean", "sd", "q2.5", "q97.5"]
    summary = slope_fit.summary(group_effects=False)
    named = {"sd(Intercept|g)": ("g", "Intercept", "sd"), "sd(x|g)": ("g", "x", "sd"),
             "cor(Intercept,x|g)": ("g", "Intercept", "cor"), "sigma": ("Residual", "sigma", "sd")}
    for name, (group, term1, kind) in named.items():
        row = table[(table.group == group) & (table.term1 == term1) & (table.kind == kind)]
        assert len(row) == 1, name
        np.testing.assert_allclose(row[["mean", "sd", "q2.5", "q97.5"]].to_numpy()[0],
                                   summary.loc[name, ["mean", "sd", "q2.5", "q97.5"]].to_numpy(),
                                   rtol=0, atol=1e-12, err_msg=name)


def test_varcorr_covariances_are_sd_sd_cor_draw_by_draw(slope_fit):
    posterior = slope_fit.idata.posterior
    sd_a, sd_x, cor = (posterior[n].values.ravel() for n in ("sd(Intercept|g)", "sd(x|g)", "cor(Intercept,x|g)"))
    draws = slope_fit.varcorr(summary=False)
    np.testing.assert_array_equal(draws[("g", "Intercept", "x", "cov")], sd_a * sd_x * cor)
    np.testing.assert_array_equal(draws[("g", "x", "x", "cov")], sd_x ** 2)
    table = slope_fit.varcorr()
    row = table[(table.kind == "cov") & (table.term1 == "Intercept") & (table.term2 == "x")]
    np.testing.assert_allclose(row["mean"], (sd_a * sd_x * cor).mean(), rtol=0, atol=1e-12)


# -- display ------------------------------------------------------------------------
def test_print_of_a_fit_with_200_levels_is_short_and_names_the_count(many_levels_fit):
    text = repr(many_levels_fit)
    assert len(text.splitlines()) < 40
    for part in ("Population-level effects:", "Group-level effects:", "~g (200 levels)", "sd(Intercept|g)",
                 "Family parameters:", "200 group effects", "fit.ranef()"):
        assert part in text, part
    assert "Intercept|g[" not in text


def test_repr_html_has_the_header_and_tables(slope_fit):
    page = slope_fit._repr_html_()
    assert page.startswith("<p>Formula: y ~ x + (1 + x | g)") and page.count("<table") == 3  # population, ~g, family
    assert "~g (8 levels)" in page


def test_a_fit_without_group_terms_has_empty_ranef_and_a_residual_varcorr(tmp_path):
    fit = fit_and_load("y ~ x", grouped_data(), tmp_path / "flat.nc")
    assert fit.ranef().empty and list(fit.coef().columns)[:3] == ["group", "level", "term"]
    assert fit.ranef(summary=False).shape == (300, 0)
    assert list(fit.varcorr()["group"]) == ["Residual", "Residual"]
    assert "Group-level effects" not in repr(fit) and "group effects" not in repr(fit)


# -- errors -------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["fixef", "ranef", "coef", "varcorr"])
@pytest.mark.parametrize("prob", [0, 1, 1.5, -0.1, True, "0.9", None])
def test_a_prob_outside_zero_one_is_a_data_error_naming_prob(slope_fit, method, prob):
    with pytest.raises(ml.DataError, match="prob must be"):
        getattr(slope_fit, method)(prob=prob)


@pytest.mark.unit
def test_varcorr_pairs_each_correlation_with_its_two_sds_for_three_columns():
    term = GroupLayout("g", ("Intercept", "x", "z"), ("a", "b"), correlated=True)
    layout = Layout(("Intercept", "x", "z"), ("sigma",), (term,))
    rng = np.random.default_rng(0)
    posterior = xr.Dataset({name: (("chain", "draw"), rng.uniform(0.1, 0.9, (2, 5)))
                            for name in layout.scalar_names()})
    draws = accessors.varcorr(posterior, layout, summary=False)
    value = {name: posterior[name].values.ravel() for name in posterior.data_vars}
    for a, b in (("Intercept", "x"), ("Intercept", "z"), ("x", "z")):
        np.testing.assert_array_equal(draws[("g", a, b, "cor")], value[f"cor({a},{b}|g)"])
        np.testing.assert_array_equal(draws[("g", a, b, "cov")],
                                      value[f"sd({a}|g)"] * value[f"sd({b}|g)"] * value[f"cor({a},{b}|g)"])
