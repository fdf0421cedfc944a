"""``fit.conditional_effects`` as brms's: the grid (effect over its range or levels, the
rest at means and reference levels, trials at 1) and the summaries of the expected
response over it, checked against the same quantities computed by hand from the draws."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from scipy import special

import multilevel as ml
from known_fits import known_fit, stacked
from multilevel.cli import main


def data(seed: int = 0, rows: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"y": rng.normal(size=rows), "x": rng.uniform(-2, 3, rows), "w": rng.normal(2, 1, rows),
                         "f": rng.choice(["b", "a", "c"], rows), "g": rng.integers(0, 5, rows),
                         "n": rng.integers(5, 10, rows)})


@pytest.mark.unit
def test_a_gaussian_effect_is_the_population_line_at_the_other_predictors_typical_values():
    frame = data()
    fit = known_fit("y ~ x + w + f + (1 | g)", frame, means={"x": 0.7})
    effects = fit.conditional_effects("x", resolution=5)
    grid = effects.data
    np.testing.assert_allclose(grid["x"], np.linspace(frame["x"].min(), frame["x"].max(), 5))
    assert (grid["w"] == frame["w"].mean()).all() and (grid["f"] == "a").all()     # "a": the first level
    line = stacked(fit, "Intercept")[:, None] + np.outer(stacked(fit, "x"), grid["x"]) \
        + (stacked(fit, "w") * frame["w"].mean())[:, None]                          # no group effect
    np.testing.assert_allclose(grid["mean"], line.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(grid["sd"], line.std(axis=0, ddof=1), rtol=1e-10)
    np.testing.assert_allclose(grid["q2.5"], np.quantile(line, 0.025, axis=0), rtol=1e-10)
    slope = np.diff(grid["mean"]) / np.diff(grid["x"])
    np.testing.assert_allclose(slope, stacked(fit, "x").mean(), rtol=1e-9)      # the averaged slope is b_x
    assert effects.figure.axes[0].get_xlabel() == "x"


@pytest.mark.unit
def test_a_logistic_effect_averages_the_probability_over_draws_and_takes_levels_and_a_second_variable():
    frame = data().assign(y=lambda d: (d["y"] > 0).astype(int))
    fit = known_fit("y ~ f + w", frame, family="bernoulli")
    grid = fit.conditional_effects("f").data
    assert list(grid["f"]) == ["a", "b", "c"]
    eta = stacked(fit, "Intercept")[:, None] + np.column_stack(
        [np.zeros(len(stacked(fit, "w"))), stacked(fit, "f[b]"), stacked(fit, "f[c]")]) \
        + (stacked(fit, "w") * frame["w"].mean())[:, None]
    np.testing.assert_allclose(grid["mean"], special.expit(eta).mean(axis=0), rtol=1e-10)
    by = fit.conditional_effects("f:w").data
    w = frame["w"]
    np.testing.assert_allclose(sorted(by["w"].unique()), w.mean() + np.array([-1, 0, 1]) * w.std(ddof=1))
    assert len(by) == 9
    held = fit.conditional_effects("f", conditions={"w": 0.0}).data
    np.testing.assert_allclose(held["mean"], special.expit(eta - (stacked(fit, "w") * w.mean())[:, None])
                               .mean(axis=0), rtol=1e-10)


@pytest.mark.unit
def test_a_binomial_effect_is_a_probability_trials_set_to_one():
    frame = data().assign(y=lambda d: np.random.default_rng(1).binomial(d["n"], 0.4))
    fit = known_fit("y | trials(n) ~ x", frame, family="binomial")
    grid = fit.conditional_effects("x", resolution=4).data
    assert (grid["n"] == 1).all()
    eta = stacked(fit, "Intercept")[:, None] + np.outer(stacked(fit, "x"), grid["x"])
    np.testing.assert_allclose(grid["mean"], special.expit(eta).mean(axis=0), rtol=1e-10)


def test_an_ordinal_effect_gives_each_categorys_probability():
    frame = data().assign(y=lambda d: pd.cut(d["y"], [-9, -0.5, 0.5, 9], labels=[1, 2, 3]).astype(int))
    fit = ml.fit("y ~ x", frame, family="cumulative", prior_only=True, chains=1, draws=300, progress=False)
    assert fit.sampler_info["independent_draws"]
    effects = fit.conditional_effects("x", categorical=True, resolution=7)
    assert len(effects.data) == 21 and list(effects.data["category"][:3]) == ["1", "2", "3"]
    np.testing.assert_allclose(effects.data["mean"].to_numpy().reshape(7, 3).sum(axis=1), 1.0, rtol=1e-10)
    assert [ax.get_title() for ax in effects.figure.axes] == ["category = 1", "category = 2", "category = 3"]
    with pytest.raises(ml.DataError, match="no categories"):
        known_fit("y ~ x", frame).conditional_effects("x", categorical=True)


@pytest.mark.unit
@pytest.mark.parametrize("effect, options, message", [
    ("z", {}, "name one predictor of the formula"),
    ("x:w:f", {}, "name one predictor"),
    ("x", {"conditions": {"q": 1}}, "conditions name 'q'"),
    ("x", {"resolution": 1}, "resolution must be"),
])
def test_a_bad_request_is_a_data_error_naming_what_to_give(effect, options, message):
    fit = known_fit("y ~ x + w + f", data())
    with pytest.raises(ml.DataError, match=message):
        fit.conditional_effects(effect, **options)


def test_a_loaded_fit_gives_the_same_effects(tmp_path):
    fit = known_fit("y ~ x + f + (1 | g)", data())
    again = ml.load(fit.save(tmp_path / "fit.nc"))
    pd.testing.assert_frame_equal(again.conditional_effects("x:f").data, fit.conditional_effects("x:f").data)


def test_the_effects_command_writes_the_grid_as_csv_and_the_plot(tmp_path, capsys):
    path = known_fit("y ~ x + f", data()).save(tmp_path / "fit.nc")
    assert main(["effects", str(path), "x:f", "--plot", str(tmp_path / "x.png")]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(table) == 300 and {"x", "f", "mean", "q2.5", "q97.5"} <= set(table.columns)
    assert (tmp_path / "x.png").stat().st_size > 0
    assert main(["effects", str(path), "z"]) == 2


# -- one panel per condition: the effect within levels of a group (brms's conditions = data.frame) --
@pytest.mark.unit
def test_conditions_on_group_levels_give_each_levels_line_in_its_own_panel():
    frame = data()
    fit = known_fit("y ~ x + (1 | g)", frame, means={"x": 0.7})
    effects = fit.conditional_effects("x", conditions={"g": [0, 3]}, re_formula=None, resolution=4)
    grid = effects.data
    assert list(grid["condition"].unique()) == ["g = 0", "g = 3"] and len(grid) == 8
    levels = [str(v) for v in fit.idata.posterior["Intercept|g"].coords["g"].values]
    for level, part in grid.groupby("g"):
        effect = stacked(fit, "Intercept|g")[:, levels.index(str(level))]
        line = stacked(fit, "Intercept")[:, None] + effect[:, None] + np.outer(stacked(fit, "x"), part["x"])
        np.testing.assert_allclose(part["mean"], line.mean(axis=0), rtol=1e-10)
    assert [ax.get_title() for ax in effects.figure.axes] == ["g = 0", "g = 3"]
    population = fit.conditional_effects("x", conditions={"g": [0, 3]}, resolution=4).data   # re_formula "~ 0"
    np.testing.assert_allclose(population["mean"][:4], population["mean"][4:])
    rows = fit.conditional_effects("x", conditions=pd.DataFrame({"g": [1, 2, 4]}), re_formula=None, resolution=3)
    assert len(rows.figure.axes) == 3 and list(rows.data["condition"].unique()) == ["g = 1", "g = 2", "g = 4"]
    with pytest.raises(ml.DataError, match="which the effect 'x' varies"):
        fit.conditional_effects("x", conditions={"x": [0, 1]})
    with pytest.raises(ml.DataError, match="at most 16"):
        fit.conditional_effects("x", conditions={"g": list(range(17))})


def test_the_effects_command_takes_conditions_and_group_effects(tmp_path, capsys):
    fit = known_fit("y ~ x + (1 | g)", data())
    path = fit.save(tmp_path / "fit.nc")
    assert main(["effects", str(path), "x", "--condition", "g=0,3", "--group-effects"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    expected = fit.conditional_effects("x", conditions={"g": [0, 3]}, re_formula=None).data
    np.testing.assert_allclose(table["mean"], expected["mean"], rtol=1e-6)
    assert list(table["condition"].unique()) == ["g = 0", "g = 3"]
    assert main(["effects", str(path), "x", "--condition", "g"]) == 2
    assert "write COL=V1,V2" in capsys.readouterr().err
