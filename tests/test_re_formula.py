"""``predict(re_formula=...)`` chooses the group terms as brms does: all (None), none
(``"~ 0"``, brms's ``NA``) or those named (``"~ (1 | g)"``); checked draw by draw against
the linear predictor computed by hand from the posterior draws."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import multilevel as ml


@pytest.fixture(scope="module")
def fit() -> ml.Fit:
    rng = np.random.default_rng(0)
    n = 240
    g, h, x = rng.integers(0, 6, n), rng.integers(0, 4, n), rng.normal(size=n)
    y = 1 + 0.5 * x + rng.normal(0, 1, 6)[g] + 0.3 * rng.normal(size=6)[g] * x + rng.normal(0, 0.5, 4)[h] \
        + rng.normal(0, 0.3, n)
    data = pd.DataFrame({"y": y, "x": x, "g": [f"g{j}" for j in g], "h": [f"h{j}" for j in h]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.ConvergenceWarning)
        return ml.fit("y ~ x + (1 + x | g) + (1 | h)", data, sampler="nuts", chains=2, draws=100, warmup=200,
                      progress=False)


def draws(fit: ml.Fit, name: str, level: str | None = None) -> np.ndarray:
    values = fit.idata.posterior[name]
    if level is not None:
        values = values.sel({values.dims[-1]: level})
    return values.values.reshape(-1)


def test_re_formula_keeps_the_group_effects_it_names(fit):
    new = pd.DataFrame({"x": [-1.0, 2.0], "g": ["g1", "g4"], "h": ["h2", "h0"]})
    linear = lambda **options: fit.predict(new, kind="linear", summary=False, **options)  # noqa: E731
    population = draws(fit, "Intercept")[:, None] + np.outer(draws(fit, "x"), new["x"])
    intercept_g = np.column_stack([draws(fit, "Intercept|g", lv) for lv in new["g"]])
    slope_g = np.column_stack([draws(fit, "x|g", lv) for lv in new["g"]]) * new["x"].to_numpy()
    intercept_h = np.column_stack([draws(fit, "Intercept|h", lv) for lv in new["h"]])
    np.testing.assert_allclose(linear(re_formula="~ 0"), population, rtol=1e-10)
    np.testing.assert_allclose(linear(re_formula="~ (1 | g)"), population + intercept_g, rtol=1e-10)
    np.testing.assert_allclose(linear(re_formula="~ (1 + x | g)"), population + intercept_g + slope_g,
                               rtol=1e-10)
    everything = population + intercept_g + slope_g + intercept_h
    np.testing.assert_allclose(linear(re_formula="~ (1 + x | g) + (1 | h)"), everything, rtol=1e-10)
    np.testing.assert_allclose(linear(), everything, rtol=1e-10)


def test_grouping_columns_of_left_out_terms_may_be_absent(fit):
    new = pd.DataFrame({"x": [0.0, 1.0]})
    means = fit.predict(new, re_formula="~ 0")
    assert list(means.columns[:1]) == ["x"] and np.isfinite(means["mean"]).all()
    with_g = fit.predict(new.assign(g=["g0", "g0"]), re_formula="~ (1 | g)", summary=False)
    assert with_g.shape == (200, 2)
    with pytest.raises(ml.DataError, match="'h'"):
        fit.predict(new.assign(g=["g0", "g0"]), re_formula="~ (1 | g) + (1 | h)")


@pytest.mark.parametrize("re_formula, message", [
    ("~ (1 | school)", "'school', not a grouping factor of the model; it has 'g', 'h'"),
    ("~ x + (1 | g)", "names fixed terms"),
    ("~ (1 | ", "does not parse"),
    (0, "must be None"),
])
def test_a_bad_re_formula_is_a_data_error_saying_what_is_wrong(fit, re_formula, message):
    with pytest.raises(ml.DataError, match=message):
        fit.predict(pd.DataFrame({"x": [0.0], "g": ["g0"], "h": ["h0"]}), re_formula=re_formula)
