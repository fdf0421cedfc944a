"""``plot_ppc(kind=...)``: the check that suits the response, as bayesplot's ``ppc_bars``
and ``ppc_stat``; checked on the plotted numbers."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from known_fits import known_fit
from multilevel.results import plots


def counts(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=80)
    return pd.DataFrame({"y": rng.poisson(np.exp(0.3 + 0.4 * x)), "x": x})


@pytest.mark.unit
def test_bars_show_each_values_observed_count_and_the_replicates_spread():
    y = np.array([0, 0, 1, 2, 2, 2])
    replicates = np.array([[0, 1, 1, 2, 2, 3], [0, 0, 0, 2, 2, 2], [1, 1, 1, 1, 2, 2]])
    figure = plots.plot_ppc_bars(y, replicates, response="y")
    ax = figure.axes[0]
    assert [round(b.get_height()) for b in ax.patches] == [2, 1, 3, 0]          # values 0, 1, 2, 3
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "3"]
    medians = ax.lines[0].get_ydata()
    np.testing.assert_allclose(medians, np.median([[1, 2, 2, 1], [3, 0, 3, 0], [0, 4, 2, 0]], axis=0))
    with pytest.raises(ml.DataError, match="kind='density'"):
        plots.plot_ppc_bars(np.arange(60), np.arange(60)[None], response="y")


@pytest.mark.unit
def test_stat_compares_the_observed_statistic_with_the_replicates():
    y = np.array([1.0, 2.0, 3.0])
    replicates = np.array([[1.0, 1.0, 1.0], [3.0, 3.0, 3.0], [2.0, 2.0, 5.0], [0.0, 0.0, 0.0]])
    figure = plots.plot_ppc_stat(y, replicates, "mean", response="y")
    ax = figure.axes[0]
    assert ax.lines[0].get_xdata()[0] == 2.0
    assert ax.get_title().endswith("= 0.50")                   # means 1, 3, 3, 0: two of four >= 2
    custom = plots.plot_ppc_stat(y, replicates, lambda v: np.ptp(v), response="y")
    assert "<lambda>(y)" in custom.axes[0].get_xlabel()
    with pytest.raises(ml.DataError, match="stat must be one of"):
        plots.plot_ppc_stat(y, replicates, "skew", response="y")


def test_a_count_fit_checks_with_bars_by_default_and_takes_the_other_kinds():
    fit = known_fit("y ~ x", counts(), family="poisson")
    bars = fit.plot_ppc()
    assert len(bars.axes[0].patches) >= len(np.unique(counts()["y"]))
    stat = fit.plot_ppc(kind="stat", stat="zeros")
    assert re.search(r"P\(zeros\(y_rep\) >= zeros\(y\)\) = [01]\.\d\d$", stat.axes[0].get_title())
    assert stat.axes[0].lines[0].get_xdata()[0] == pytest.approx(np.mean(counts()["y"] == 0))
    assert fit.plot_ppc(kind="density", num_draws=5).axes[0].get_ylabel() == "density"
    with pytest.raises(ml.DataError, match="kind must be one of density, bars, stat, loo_pit"):
        fit.plot_ppc(kind="violin")


# -- grouped checks and LOO-PIT ----------------------------------------------------------------
@pytest.mark.unit
def test_a_grouped_check_draws_each_levels_rows_in_its_own_panel():
    y = np.array([0, 1, 1, 0, 2, 2])
    groups = np.array(["a", "a", "a", "b", "b", "b"])
    replicates = np.array([[0, 1, 0, 0, 2, 1], [1, 1, 1, 0, 0, 2]])
    from multilevel.results import ppc
    bars = ppc.plot_ppc_grouped(y, replicates, groups, kind="bars", group="g", response="y")
    assert [ax.get_title() for ax in bars.axes] == ["g = a", "g = b"]
    assert [[round(b.get_height()) for b in ax.patches] for ax in bars.axes] == [[1, 2, 0], [1, 0, 2]]
    stat = ppc.plot_ppc_grouped(y, replicates, groups, kind="stat", stat="max", group="g", response="y")
    assert [ax.lines[0].get_xdata()[0] for ax in stat.axes] == [1, 2]             # max of each level's y
    assert [ax.get_title() for ax in stat.axes] == ["g = a: p = 1.00", "g = b: p = 1.00"]
    many = np.arange(ppc.MAX_PANELS + 1)
    with pytest.raises(ml.DataError, match=f"group='g' has {ppc.MAX_PANELS + 1} levels"):
        ppc.plot_ppc_grouped(many, many[None], many, kind="stat", group="g", response="y")


@pytest.fixture(scope="module")
def grouped_fit() -> ml.Fit:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=60), "g": rng.choice(list("abc"), 60)})
    frame["y"] = rng.normal(frame["x"], 1.0)
    return known_fit("y ~ x + (1 | g)", frame)


@pytest.mark.unit
def test_plot_ppc_takes_a_group_and_loo_pit_without_changing_the_fit(grouped_fit):
    groups = grouped_fit.idata.groups()
    panels = grouped_fit.plot_ppc(kind="stat", stat="sd", group="g")
    observed = grouped_fit.idata.observed_data["y"].values
    levels = grouped_fit.idata.constant_data["g"].values
    expected = [np.std(observed[levels == level], ddof=1) for level in "abc"]
    np.testing.assert_allclose([ax.lines[0].get_xdata()[0] for ax in panels.axes], expected)
    assert len(grouped_fit.plot_ppc(group="g", num_draws=4).axes) == 3        # densities by level
    pit = grouped_fit.plot_ppc(kind="loo_pit")
    assert pit.axes[0].get_xlabel() == "LOO-PIT of y" and pit.axes[0].lines
    assert grouped_fit.idata.groups() == groups                               # nothing added to the fit
    with pytest.raises(ml.DataError, match="group='h' is not a column of the formula"):
        grouped_fit.plot_ppc(group="h")
    with pytest.raises(ml.DataError, match="LOO-PIT is one check of all rows"):
        grouped_fit.plot_ppc(kind="loo_pit", group="g")
