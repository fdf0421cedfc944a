"""``predictions``, ``comparisons``, ``slopes`` and ``datagrid`` as marginaleffects defines
them, checked against the same quantities computed by hand from the draws: for a
Gaussian model the averaged slope is the coefficient, for a logistic model an average
comparison is the mean over draws of the mean probability difference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special

import multilevel as ml
from known_fits import known_fit, stacked


def data(seed: int = 0, rows: int = 90) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"y": rng.normal(size=rows), "x": rng.normal(1, 2, rows),
                         "f": rng.choice(["a", "b", "c"], rows), "g": rng.integers(0, 4, rows)})


@pytest.mark.unit
def test_a_gaussian_slope_is_the_coefficient_and_a_level_contrast_its_dummy():
    fit = known_fit("y ~ x + f + (1 | g)", data(), means={"x": 0.8})
    slope = fit.slopes("x")
    assert slope.loc[0, "estimate"] == pytest.approx(stacked(fit, "x").mean(), rel=1e-6)
    assert slope.loc[0, "sd"] == pytest.approx(stacked(fit, "x").std(ddof=1), rel=1e-5)
    contrasts = fit.comparisons("f").set_index("contrast")
    assert list(contrasts.index) == ["b - a", "c - a"]
    assert contrasts.loc["c - a", "estimate"] == pytest.approx(stacked(fit, "f[c]").mean(), rel=1e-9)
    pairwise = fit.comparisons({"f": "pairwise"}).set_index("contrast")
    assert list(pairwise.index) == ["b - a", "c - a", "c - b"]
    difference = stacked(fit, "f[c]") - stacked(fit, "f[b]")
    assert pairwise.loc["c - b", "estimate"] == pytest.approx(difference.mean(), rel=1e-9)
    assert pairwise.loc["c - b", "q97.5"] == pytest.approx(np.quantile(difference, 0.975), rel=1e-9)


@pytest.mark.unit
def test_a_logistic_comparison_averages_probability_differences_over_rows_then_draws():
    frame = data().assign(y=lambda d: (d["y"] > 0).astype(int))
    fit = known_fit("y ~ x + f", frame, family="bernoulli", means={"x": 0.5})
    dummies = {"a": 0, "b": stacked(fit, "f[b]")[:, None], "c": stacked(fit, "f[c]")[:, None]}
    f_part = np.column_stack([np.broadcast_to(dummies[v], (len(stacked(fit, "x")), 1))[:, 0] for v in frame["f"]])
    eta = stacked(fit, "Intercept")[:, None] + np.outer(stacked(fit, "x"), frame["x"]) + f_part
    by_hand = (special.expit(eta + 2 * stacked(fit, "x")[:, None]) - special.expit(eta)).mean(axis=1)
    ours = fit.comparisons({"x": 2}).iloc[0]
    assert ours["contrast"] == "+2" and ours["estimate"] == pytest.approx(by_hand.mean(), rel=1e-9)
    assert ours["sd"] == pytest.approx(by_hand.std(ddof=1), rel=1e-9)
    ratio = fit.comparisons({"x": 2}, comparison="ratio").iloc[0]
    assert ratio["estimate"] == pytest.approx((special.expit(eta + 2 * stacked(fit, "x")[:, None])
                                               / special.expit(eta)).mean(axis=1).mean(), rel=1e-9)
    grouped = fit.comparisons("x", by="f")
    assert list(grouped["f"]) == sorted(frame["f"].unique()) and len(grouped) == 3
    per_row = fit.comparisons("x", by=False)
    assert len(per_row) == len(frame)
    predictions = fit.predictions(by="f").set_index("f")
    in_a = fit.predict(frame, summary=False)[:, (frame["f"] == "a").to_numpy()].mean(axis=1)
    assert predictions.loc["a", "estimate"] == pytest.approx(in_a.mean(), rel=1e-9)


@pytest.mark.unit
def test_datagrid_holds_the_rest_at_typical_values_and_bad_requests_say_why():
    frame = data()
    fit = known_fit("y ~ x + f + (1 | g)", frame)
    grid = fit.datagrid(x=[0, 1], f=["b", "c"])
    assert len(grid) == 4 and (grid["g"] == grid["g"].iloc[0]).all()
    one = fit.datagrid()
    assert one.loc[0, "x"] == pytest.approx(frame["x"].mean()) and one.loc[0, "f"] == "a"
    assert len(fit.predictions(grid)) == 4
    with pytest.raises(ml.DataError, match="'z' is not a column"):
        fit.datagrid(z=[1])
    with pytest.raises(ml.DataError, match="use comparisons"):
        fit.slopes("f")
    with pytest.raises(ml.DataError, match="'reference' .* or 'pairwise'"):
        fit.comparisons({"f": "all"})
    with pytest.raises(ml.DataError, match="compare by a number"):
        fit.comparisons({"x": "pairwise"})
    with pytest.raises(ml.DataError, match="by names 'h'"):
        fit.predictions(by="h")
