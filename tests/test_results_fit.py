"""The Fit is immutable once built; posterior predictive draws are built into the InferenceData."""

from __future__ import annotations

import json
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.results import Fit, FitInfo
from multilevel.results.fit import META_KEY


def small_data(seed: int = 0, groups: int = 6, per_group: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    x = rng.normal(size=g.size)
    y = 1.0 + 0.5 * x + rng.normal(0, 1.0, groups)[g] + rng.normal(0, 0.5, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g]})


@pytest.fixture(scope="module")
def fit() -> Fit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ml.fit("y ~ x + (1 | g)", small_data(), chains=2, draws=40, warmup=40, seed=2, progress=False)


def all_attrs(idata: az.InferenceData) -> dict:
    return {group: dict(idata[group].attrs) for group in idata.groups()}


# -- immutability ------------------------------------------------------------------------------
def test_building_a_fit_leaves_the_idata_given_unchanged(fit):
    idata = fit.idata.copy()
    before = all_attrs(idata)
    Fit(idata, fit.info)
    assert all_attrs(idata) == before
    assert META_KEY not in fit.idata.posterior.attrs


def test_saving_writes_the_metadata_into_the_file_only(fit, tmp_path):
    before = all_attrs(fit.idata)
    path = fit.save(tmp_path / "fit.nc")
    assert all_attrs(fit.idata) == before
    written = az.from_netcdf(path, engine="h5netcdf")
    meta = json.loads(written.posterior.attrs[META_KEY])
    assert meta["spec"]["formula"] == "y ~ x + (1 | g)"
    assert FitInfo.from_json(written.posterior.attrs[META_KEY]).layout == fit.info.layout
    restored = ml.load(path)
    pd.testing.assert_frame_equal(restored.summary(), fit.summary())
    again = ml.load(restored.save(tmp_path / "again.nc"))  # a loaded fit saves as it was loaded
    pd.testing.assert_frame_equal(again.summary(), fit.summary())


def test_the_draws_and_info_cannot_be_replaced(fit):
    with pytest.raises(AttributeError):
        fit.idata = None
    with pytest.raises(AttributeError):
        fit.info = None


# -- posterior predictive draws ------------------------------------------------------------------
def fitted_design(fit: Fit):
    from multilevel.design import build_design
    return build_design(fit.info.spec, small_data(), na_action="error", encoders=fit.info.encoders)


def test_posterior_predictive_draws_are_what_fit_stores(fit):
    from multilevel.results.predict import posterior_predictive_draws
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stored = ml.fit("y ~ x + (1 | g)", small_data(), chains=2, draws=40, warmup=40, seed=2,
                        progress=False, posterior_predictive=True)
    draws = posterior_predictive_draws(stored.idata.posterior, stored.info.layout, stored.info.family,
                                       fitted_design(stored), seed=2)
    assert draws.shape == (2, 40, 60)
    np.testing.assert_array_equal(draws, stored.idata.posterior_predictive["y"].values)


def test_make_idata_builds_the_posterior_predictive_group_whole(fit):
    from multilevel.results.posterior import make_idata
    from multilevel.results.predict import posterior_predictive_draws
    posterior = {name: fit.idata.posterior[name].values for name in fit.idata.posterior.data_vars}
    design = fitted_design(fit)
    draws = posterior_predictive_draws(posterior, fit.info.layout, fit.info.family, design, seed=7)
    stats = {name: fit.idata.sample_stats[name].values for name in fit.idata.sample_stats.data_vars}
    y = fit.idata.observed_data["y"].values
    whole = make_idata(fit.info.layout, posterior, stats, None, y, {}, posterior_predictive=draws)
    assert whole.posterior_predictive["y"].dims == ("chain", "draw", "obs")
    np.testing.assert_array_equal(whole.posterior_predictive["y"].values, draws)
    assert "posterior_predictive" not in make_idata(fit.info.layout, posterior, stats, None, y, {}).groups()


def test_a_model_without_fixed_effects_predicts():
    data = small_data(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ml.fit("y ~ 0 + (1 | g)", data, chains=1, draws=30, warmup=30, progress=False, sampler="nuts")
    draws = fit.predict(data.head(3), summary=False, kind="linear")
    effects = fit.idata.posterior["Intercept|g"].sel(g="g0").values.ravel()
    np.testing.assert_allclose(draws, np.repeat(effects[:, None], 3, axis=1))
    assert fit.predict(data.head(3), kind="posterior_predictive").shape[0] == 3


def test_timings_split_the_fit_and_the_idata_waits_for_its_first_use():
    data = small_data()
    fitted = ml.fit("y ~ x + (1 | g)", data, chains=2, draws=100, warmup=100, progress=False)
    timings = fitted.sampler_info["timings"]
    assert set(timings) == {"model", "compile", "warmup", "sampling", "draws", "sampler_other", "log_likelihood",
                            "posterior", "diagnostics", "assembly", "total"}
    assert all(v is None or v >= 0 for v in timings.values())
    assert timings["total"] >= timings["compile"] + timings["sampling"] + timings["assembly"]
    assert callable(fitted._idata)                      # summarised (the convergence check), not built
    summary = fitted.summary(group_effects=False)
    assert callable(fitted._idata)
    posterior = fitted.idata.posterior
    np.testing.assert_array_equal(posterior["x"].values, fitted._posterior["x"].values)
    assert "log_likelihood" in fitted.idata.groups()
    assert np.isclose(summary.loc["x", "mean"], float(posterior["x"].mean()))


def test_a_column_that_is_both_a_covariate_and_a_grouping_factor(tmp_path):
    """``y ~ num + (1 | num)``: the fixed effect ``num`` and the level dimension cannot share
    a name in the posterior, so the levels' dimension is ``num_levels``; every reading works."""
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"num": rng.integers(0, 5, 80)})
    data["y"] = 0.3 * data["num"] + rng.normal(0, 0.5, 5)[data["num"]] + rng.normal(size=80)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ml.fit("y ~ num + (1 | num)", data, chains=2, draws=100, warmup=100, seed=1, progress=False)
    assert fit.idata.posterior["Intercept|num"].dims == ("chain", "draw", "num_levels")
    assert len(fit.ranef()) == 5 and "num" in fit.fixef().index
    path = tmp_path / "fit.nc"
    fit.save(path)
    np.testing.assert_array_equal(ml.load(path).predict(data.head(3)), fit.predict(data.head(3)))
