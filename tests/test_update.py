"""``fit.update`` as brms's: a refit with only what is given changed."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import multilevel as ml

FAST = dict(chains=2, draws=150, warmup=150, progress=False)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    g, x = rng.integers(0, 6, 150), rng.normal(size=150)
    return pd.DataFrame({"y": 1 + 0.5 * x + rng.normal(0, 0.7, 6)[g] + rng.normal(size=150), "x": x,
                         "w": rng.normal(size=150), "g": g})


def quiet(call, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.ConvergenceWarning)
        return call(*args, **kwargs)


def test_update_keeps_everything_not_given(data, tmp_path):
    fit = quiet(ml.fit, "y ~ x + (1 | g)", data, priors={"b": ml.Normal(0, 1)}, sampler="nuts", seed=2, **FAST)
    again = quiet(fit.update, draws=60)
    assert again.idata.posterior.sizes["draw"] == 60 and again.sampler_info["seed"] == 2
    assert again.sampler_info["sampler"] == "nuts"
    pd.testing.assert_frame_equal(again.priors[["parameter", "prior"]], fit.priors[["parameter", "prior"]])
    same = quiet(fit.update)                              # the same model, data, seed: the same draws
    np.testing.assert_array_equal(same.idata.posterior["x"].values, fit.idata.posterior["x"].values)
    loaded = quiet(ml.load(fit.save(tmp_path / "fit.nc")).update)
    np.testing.assert_array_equal(loaded.idata.posterior["x"].values, fit.idata.posterior["x"].values)


def test_update_changes_what_is_given(data):
    fit = quiet(ml.fit, "y ~ x + (1 | g)", data, sampler="nuts", **FAST)
    bigger = quiet(fit.update, data.assign(w=data["w"]), formula="y ~ x + w + (1 | g)")
    assert "w" in bigger.idata.posterior
    student = quiet(fit.update, family="student_t", priors={"nu": ml.Gamma(2, 0.1)})
    assert "nu" in student.idata.posterior and student.info.family.name == "student_t"
    half = quiet(fit.update, data.head(75))
    assert half.info.num_rows == 75
    with pytest.raises(ml.DataError, match="column"):
        fit.update(formula="y ~ x + w + (1 | g)")          # w is not among the kept columns
