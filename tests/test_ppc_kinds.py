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
    with pytest.raises(ml.DataError, match="kind must be one of density, bars, stat"):
        fit.plot_ppc(kind="violin")
