"""Plots of a fit: what each figure shows, on a small simulated study of growth by treatment.

The data: 10 groups, each over its own range of x, half "ambient" and half
"elevated"; one row has a missing x (so the fitted rows are not all rows).
"""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

import multilevel as ml
from multilevel.cli import main
from multilevel.results import Fit

NUM_GROUPS = 10
FORMULA = "y ~ x*trt + (1 + x || g)"


def growth(seed: int = 0, per_group: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(NUM_GROUPS), per_group)
    start = rng.uniform(0, 10, NUM_GROUPS)
    x = start[g] + rng.uniform(0, 4, g.size)
    elevated = g % 2 == 1
    y = -1 + 0.3 * x + 0.5 * elevated + rng.normal(0, 0.5, NUM_GROUPS)[g] + rng.normal(0, 0.3, g.size)
    data = pd.DataFrame({"y": y, "x": x, "trt": np.where(elevated, "elevated", "ambient"),
                         "g": [f"g{k}" for k in g], "unused": 1.0})
    data.loc[5, "x"] = np.nan
    return data


def quiet_fit(formula: str, data, **options) -> Fit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ml.fit(formula, data, chains=2, draws=200, warmup=200, seed=3, progress=False, **options)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return growth()


@pytest.fixture(scope="module")
def fit(data) -> Fit:
    return quiet_fit(FORMULA, data)


@pytest.fixture(scope="module")
def fitted_rows(data) -> pd.DataFrame:
    return data.dropna().reset_index(drop=True)


def population_lines(figure: Figure) -> list:
    return [line for line in figure.axes[0].lines if line.get_gid() == "population line"]


def group_lines(figure: Figure) -> LineCollection:
    (lines,) = [c for c in figure.axes[0].collections if c.get_gid() == "group lines"]
    return lines


# -- the fitted data travel with the fit -------------------------------------------------
def test_constant_data_holds_the_formula_columns_of_the_fitted_rows(fit, fitted_rows):
    stored = fit.idata.constant_data
    assert set(stored.data_vars) == {"y", "x", "trt", "g"}  # not "unused"
    assert stored.sizes["obs"] == len(fitted_rows) == fit.info.num_rows
    np.testing.assert_array_equal(stored["x"].values, fitted_rows["x"].to_numpy())
    assert stored["x"].dtype == np.float64
    assert list(stored["g"].values) == list(fitted_rows["g"])


def test_plots_work_on_a_loaded_fit(fit, tmp_path):
    restored = ml.load(fit.save(tmp_path / "fit.nc"))
    assert list(restored.idata.constant_data["trt"].values) == list(fit.idata.constant_data["trt"].values)
    before, after = fit.plot_lines("x", color="trt"), restored.plot_lines("x", color="trt")
    for old, new in zip(group_lines(before).get_segments(), group_lines(after).get_segments()):
        np.testing.assert_allclose(new, old)
    assert len(restored.plot_ppc(num_draws=3).axes[0].lines) == 4


def test_a_fit_without_its_data_cannot_draw_lines_or_ppc(fit):
    dd = pytest.importorskip("dask.dataframe")
    frame = dd.from_pandas(growth().dropna(), npartitions=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dask_fit = ml.fit("y ~ x + (1 | g)", frame, chains=1, draws=50, warmup=50, progress=False)
    assert "constant_data" not in dask_fit.idata.groups()
    with pytest.raises(ml.MultilevelError, match="plot_lines needs the fitted data.*Dask"):
        dask_fit.plot_lines("x")
    with pytest.raises(ml.MultilevelError, match="plot_ppc needs the fitted data"):
        dask_fit.plot_ppc()
    assert isinstance(dask_fit.plot_trace(), Figure)  # the draws alone suffice for a trace


# -- trace ----------------------------------------------------------------------------------
def test_trace_has_a_density_and_a_trace_per_parameter_with_a_colour_per_chain(fit):
    figure = fit.plot_trace()
    names = ["Intercept", "x", "trt[elevated]", "x:trt[elevated]", "sigma", "sd(Intercept|g)", "sd(x|g)"]
    assert len(figure.axes) == 2 * len(names)
    assert [ax.get_title(loc="left") for ax in figure.axes[::2]] == names  # no group effects by default
    for density, trace in zip(figure.axes[::2], figure.axes[1::2]):
        assert len(density.lines) == len(trace.lines) == 2
        assert trace.lines[0].get_color() != trace.lines[1].get_color()
        assert len(trace.lines[0].get_xdata()) == 200


def test_trace_of_named_parameters_including_one_group_level(fit):
    figure = fit.plot_trace(["sigma", "x|g[g3]"])
    assert len(figure.axes) == 4
    np.testing.assert_array_equal(figure.axes[3].lines[1].get_ydata(),
                                  fit.idata.posterior["x|g"].sel(g="g3").values[1])
    with pytest.raises(ml.MultilevelError, match="no parameter named 'tau'"):
        fit.plot_trace(["tau"])
    with pytest.raises(ml.MultilevelError, match=r"one value per level.*x\|g\[g0\]"):
        fit.plot_trace(["x|g"])


# -- fitted lines ------------------------------------------------------------------------------
def test_lines_one_per_group_over_its_own_range_and_one_population_line_per_colour(fit, fitted_rows):
    figure = fit.plot_lines("x", color="trt")
    segments = group_lines(figure).get_segments()
    assert len(segments) == NUM_GROUPS
    ranges = fitted_rows.groupby("g")["x"].agg(["min", "max"])
    for segment, (low, high) in zip(segments, ranges.to_numpy()):
        assert segment[0, 0] == pytest.approx(low) and segment[-1, 0] == pytest.approx(high)
        assert len(segment) >= 20
    population = population_lines(figure)
    assert [line.get_label() for line in population] == ["trt = ambient", "trt = elevated"]
    assert {"trt = ambient", "trt = elevated"} <= {t.get_text() for t in figure.axes[0].get_legend().get_texts()}
    colours = group_lines(figure).get_colors()
    for k, segment in enumerate(segments):
        level = fitted_rows.loc[fitted_rows["g"] == f"g{k}", "trt"].iloc[0]
        line = population[["ambient", "elevated"].index(level)]
        assert tuple(colours[k]) == pytest.approx(to_rgba(line.get_color(), colours[k][3]))
    assert figure.axes[0].get_xlabel() == "x" and figure.axes[0].get_ylabel() == "y"


def test_lines_are_predictions_at_the_posterior_means(fit, fitted_rows):
    means = fit.summary()["mean"]
    figure = fit.plot_lines("x", color="trt")
    elevated = population_lines(figure)[1]
    grid = elevated.get_xdata()
    rows = fitted_rows[fitted_rows["trt"] == "elevated"]
    assert grid.min() == pytest.approx(rows["x"].min()) and grid.max() == pytest.approx(rows["x"].max())
    expected = (means["Intercept"] + means["trt[elevated]"]) + (means["x"] + means["x:trt[elevated]"]) * grid
    np.testing.assert_allclose(elevated.get_ydata(), expected, rtol=1e-6)
    g2 = group_lines(figure).get_segments()[2]  # g2 is ambient
    expected = (means["Intercept"] + means["Intercept|g[g2]"]) + (means["x"] + means["x|g[g2]"]) * g2[:, 0]
    np.testing.assert_allclose(g2[:, 1], expected, rtol=1e-6)


def test_lines_of_a_model_without_group_terms_are_the_population_lines_alone(data):
    figure = quiet_fit("y ~ log(x) + trt", data, sampler="nuts").plot_lines("x")
    assert not [c for c in figure.axes[0].collections if c.get_gid() == "group lines"]
    (line,) = population_lines(figure)
    assert np.ptp(np.diff(line.get_ydata())) > 1e-6  # log(x) is drawn as a curve


def test_lines_name_the_column_at_fault(fit, monkeypatch):
    with pytest.raises(ml.MultilevelError, match="x='unused' is not a column the formula uses"):
        fit.plot_lines("unused")
    with pytest.raises(ml.MultilevelError, match="x='trt' is not numeric"):
        fit.plot_lines("trt")
    monkeypatch.setattr("multilevel.results.plots.MAX_COLOURS", 9)
    with pytest.raises(ml.MultilevelError, match="color='g' has 10 levels; give a column with at most 9"):
        fit.plot_lines("x", color="g")
    with pytest.raises(ml.MultilevelError, match="group='trt' is not a grouping factor"):
        fit.plot_lines("x", group="trt")


# -- group effects --------------------------------------------------------------------------------
def test_effects_one_panel_per_column_levels_sorted_by_posterior_mean(fit):
    figure = fit.plot_effects()
    assert [ax.get_title() for ax in figure.axes] == ["Intercept|g", "x|g"]
    means = fit.idata.posterior["Intercept|g"].mean(("chain", "draw")).to_series()
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert labels == list(means.sort_values().index)
    (points,) = figure.axes[0].collections[1:2]
    np.testing.assert_allclose(points.get_offsets()[:, 0], np.sort(means.to_numpy()))
    assert len(fit.plot_effects(column="x").axes) == 1
    with pytest.raises(ml.MultilevelError, match="column='z' is not an effect of g"):
        fit.plot_effects(column="z")


def test_effects_of_many_levels_leave_out_the_level_names():
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(300), 2)
    data = pd.DataFrame({"y": rng.normal(size=g.size) + rng.normal(size=300)[g], "g": g})
    figure = quiet_fit("y ~ 1 + (1 | g)", data).plot_effects()
    assert len(figure.axes[0].get_yticklabels()) == 0
    assert "300 levels of g" in figure.axes[0].get_ylabel()


# -- posterior predictive check ----------------------------------------------------------------------
def test_ppc_draws_one_thin_density_per_draw_under_the_observed_one(fit):
    figure = fit.plot_ppc(num_draws=7, seed=1)
    lines = figure.axes[0].lines
    assert len(lines) == 8
    observed = lines[-1]
    assert observed.get_label() == "observed y"
    assert all(line.get_linewidth() < observed.get_linewidth() for line in lines[:-1])
    grid = observed.get_xdata()
    for line in lines:  # densities integrate to about one over the grid
        assert np.trapezoid(line.get_ydata(), grid) == pytest.approx(1.0, abs=0.05)
    again = fit.plot_ppc(num_draws=7, seed=1).axes[0].lines
    np.testing.assert_array_equal(again[0].get_ydata(), lines[0].get_ydata())
    assert not np.array_equal(fit.plot_ppc(num_draws=7, seed=2).axes[0].lines[0].get_ydata(),
                              lines[0].get_ydata())


def test_plots_leave_pyplot_alone(fit):
    before = plt.get_fignums()
    for figure in (fit.plot_trace(), fit.plot_effects(), fit.plot_lines("x"), fit.plot_ppc(num_draws=2)):
        assert isinstance(figure, Figure)
    assert plt.get_fignums() == before


# -- command line ----------------------------------------------------------------------------------------
def test_cli_writes_the_png_files(tmp_path, capsys):
    path = tmp_path / "growth.csv"
    growth().to_csv(path, index=False)
    out = tmp_path / "plots" / "sub"
    status = main(["fit", str(path), FORMULA, "--chains", "1", "--draws", "60", "--warmup", "60",
                   "--plots", str(out), "--lines-x", "x", "--lines-color", "trt"])
    assert status == 0
    printed = capsys.readouterr().out
    names = ["trace.png", "effects.png", "ppc.png", "lines.png"]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)  # no temporary files left
    for name in names:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(out / name) in printed
    assert main(["fit", str(path), FORMULA, "--lines-x", "x"]) == 2
    assert "--lines-x and --lines-color need --plots DIR" in capsys.readouterr().err
    assert main(["fit", str(path), FORMULA, "--plots", str(out), "--lines-x", "diameter"]) == 2
    assert "no column 'diameter'" in capsys.readouterr().err


# -- the plot functions take plain values ----------------------------------------------------------------
def test_plots_module_needs_no_fit_model_or_design():
    import ast
    import inspect

    from multilevel.results import plots
    tree = ast.parse(inspect.getsource(plots))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level}
    assert imported == {"design.columns", "errors", "files"}


def test_trace_from_arrays_draws_arviz_densities():
    from multilevel.results import plots
    rng = np.random.default_rng(0)
    draws = {"a": rng.normal(size=(3, 4000)), "b": rng.gamma(2.0, size=(3, 4000))}
    figure = plots.plot_trace(draws)
    assert [ax.get_title(loc="left") for ax in figure.axes[::2]] == ["a", "b"]
    values = draws["a"]
    spread = min(values.std(), np.subtract(*np.percentile(values, [75, 25])) / 1.34)
    width = 0.9 * spread * values.size ** -0.2  # Silverman's rule on all chains' draws
    for chain, line in enumerate(figure.axes[0].lines):  # the exact kernel estimate, inside the range
        grid, density = line.get_xdata(), line.get_ydata()
        kernels = np.exp(-0.5 * ((grid[:, None] - values[chain]) / width) ** 2) / (width * np.sqrt(2 * np.pi))
        exact = kernels.mean(axis=1)
        inner = (grid > values.min() + 4 * width) & (grid < values.max() - 4 * width)
        # binned, so exact to within half a bin (arviz.kde can be off by that much) and 1% of the peak
        slack = 0.5 * (grid[1] - grid[0]) * np.abs(np.gradient(exact, grid)) + 0.01 * exact.max()
        assert np.all(np.abs(density - exact)[inner] <= slack[inner])
    constant = plots.plot_trace({"c": np.ones((2, 10))})  # a stuck chain still gets a density
    assert all(np.isfinite(line.get_ydata()).all() for line in constant.axes[0].lines)
    with pytest.raises(ml.MultilevelError, match="no parameters to plot"):
        plots.plot_trace({})


def test_effects_from_arrays():
    from multilevel.results import plots
    rng = np.random.default_rng(1)
    effects = {"Intercept": rng.normal([3.0, -1.0, 0.5], 0.1, size=(100, 3))}
    figure = plots.plot_effects(effects, ["a", "b", "c"], "g")
    assert figure.axes[0].get_title() == "Intercept|g"
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == ["b", "c", "a"]


def test_lines_from_a_predict_callable():
    from multilevel.results import plots
    data = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "g": ["a", "a", "b", "b"]})
    calls = []

    def predict(frame):
        calls.append(frame.copy())
        offset = np.where(frame["g"] == "b", 1.0, 0.0)
        return np.stack([2 * frame["x"] + offset - 1, 2 * frame["x"] + offset + 1])  # two draws: mean 2x + offset

    figure = plots.plot_lines(data, [0, 2, 5, 7], "x", predict, response="y", groups=np.array([0, 0, 1, 1]),
                              group_name="g", grouping_columns=["g"])
    first, second = group_lines(figure).get_segments()
    np.testing.assert_allclose(first[:, 1], 2 * first[:, 0])
    np.testing.assert_allclose(second[:, 1], 2 * second[:, 0] + 1)
    assert (first[0, 0], first[-1, 0], second[0, 0], second[-1, 0]) == (0, 1, 2, 3)
    (population,) = population_lines(figure)
    np.testing.assert_allclose(population.get_ydata(), 2 * population.get_xdata())
    assert set(calls[-1]["g"]) == {"(new level)"}
    alone = plots.plot_lines(data, [0, 2, 5, 7], "x", predict, response="y")
    assert not [c for c in alone.axes[0].collections if c.get_gid() == "group lines"]


def test_ppc_densities_do_not_depend_on_how_rows_are_chunked(monkeypatch):
    from multilevel.results import plots
    rng = np.random.default_rng(2)
    y = rng.normal(size=300)
    data = pd.DataFrame({"row": np.arange(300)})
    replicates = y + rng.normal(0, 0.3, size=(4, 300))
    seeds = []

    def replicate(rows, seed):
        seeds.append(seed)
        return replicates[:, rows["row"].to_numpy()]

    whole = plots.plot_ppc(y, data, replicate, num_draws=4, response="y", seed=5)
    assert seeds == [5]
    monkeypatch.setattr("multilevel.results.plots.PPC_CHUNK_VALUES", 4 * 70)
    chunked = plots.plot_ppc(y, data, replicate, num_draws=4, response="y", seed=5)
    assert seeds[1:] == [5, 6, 7, 8, 9]
    for one, other in zip(whole.axes[0].lines, chunked.axes[0].lines):
        np.testing.assert_allclose(other.get_ydata(), one.get_ydata(), atol=1e-12)


def test_ppc_of_a_constant_replicate_is_a_kernel_at_it():
    from multilevel.results import plots
    y = np.array([0, 0, 1, 1, 1], dtype=float)
    figure = plots.plot_ppc(y, pd.DataFrame({"r": range(5)}), lambda rows, seed: np.zeros((2, len(rows))),
                            num_draws=2, response="y")
    zeros = figure.axes[0].lines[0]
    assert np.isfinite(zeros.get_ydata()).all()
    assert zeros.get_xdata()[np.argmax(zeros.get_ydata())] == pytest.approx(0.0, abs=0.01)
