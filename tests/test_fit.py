"""The public fit API end to end on small simulated data: names, shapes, options."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import multilevel as ml


def small_data(seed: int = 0, groups: int = 8, per_group: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    x = rng.normal(size=g.size)
    a = rng.normal(0, 1.0, groups)
    s = rng.normal(0, 0.5, groups)
    y = 2.0 + 0.5 * x + a[g] + s[g] * x + rng.normal(0, 0.7, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g]})


@pytest.fixture(scope="module")
def corr_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ml.fit("y ~ x + (1 + x | g)", small_data(), chains=2, draws=300, warmup=300,
                      seed=1, progress=False)


def test_posterior_uses_the_public_parameter_names(corr_fit):
    names = set(corr_fit.idata.posterior.data_vars)
    assert {"Intercept", "x", "sigma", "sd(Intercept|g)", "sd(x|g)", "cor(Intercept,x|g)",
            "Intercept|g", "x|g"} == names
    assert list(corr_fit.idata.posterior["Intercept|g"].coords["g"].values) == [f"g{i}" for i in range(8)]


def test_summary_has_the_documented_columns_and_rows(corr_fit):
    table = corr_fit.summary()
    assert list(table.columns) == ["mean", "sd", "q2.5", "q50", "q97.5", "mcse_mean", "mcse_sd",
                                   "ess_bulk", "ess_tail", "r_hat", "ess_per_sec"]
    assert "Intercept|g[g3]" in table.index and "cor(Intercept,x|g)" in table.index
    narrow = corr_fit.summary(prob=0.5, group_effects=False)
    assert list(narrow.columns[2:5]) == ["q25", "q50", "q75"]
    assert not any("|g[" in name for name in narrow.index)


def test_idata_has_sample_stats_and_pointwise_log_likelihood(corr_fit):
    idata = corr_fit.idata
    assert idata.posterior.sizes["chain"] == 2 and idata.posterior.sizes["draw"] == 300
    assert {"diverging", "acceptance_rate", "n_steps", "tree_depth", "lp", "step_size"} <= set(idata.sample_stats)
    assert idata.log_likelihood["y"].shape == (2, 300, 96)


def test_posterior_recovers_the_simulation(corr_fit):
    # The data are fixed (NumPy's generator is the same on every machine); only the Monte
    # Carlo error of the interval ends varies, and each truth is >= 7 quantile MCSEs inside.
    table = corr_fit.summary()
    for name, truth in (("x", 0.5), ("sigma", 0.7)):
        assert table.loc[name, "q2.5"] < truth < table.loc[name, "q97.5"]


def test_same_seed_same_draws_and_other_seed_other_draws():
    data = small_data(3)
    kwargs = dict(chains=2, draws=50, warmup=50, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = ml.fit("y ~ x + (1 | g)", data, seed=5, **kwargs)
        b = ml.fit("y ~ x + (1 | g)", data, seed=5, **kwargs)
        c = ml.fit("y ~ x + (1 | g)", data, seed=6, **kwargs)
    np.testing.assert_array_equal(a.idata.posterior["x"].values, b.idata.posterior["x"].values)
    assert not np.array_equal(a.idata.posterior["x"].values, c.idata.posterior["x"].values)


def test_user_data_is_never_modified():
    data = small_data()
    data.loc[3, "x"] = np.nan
    before = data.copy()
    with pytest.warns(UserWarning, match="dropped 1 of 96 rows"):
        ml.fit("y ~ log1p(abs(x)) + (1 | g)", data, chains=1, draws=20, warmup=20, progress=False)
    pd.testing.assert_frame_equal(data, before)


def test_save_and_load_round_trip_without_the_data(corr_fit, tmp_path):
    path = corr_fit.save(tmp_path / "sub" / "fit.nc")
    assert [p.name for p in path.parent.iterdir()] == ["fit.nc"]  # no temporary file left behind
    restored = ml.load(path)
    pd.testing.assert_frame_equal(restored.summary(), corr_fit.summary())
    new = pd.DataFrame({"x": [0.0, 1.0], "g": ["g0", "g1"]})
    pd.testing.assert_frame_equal(restored.predict(new), corr_fit.predict(new))
    assert restored.priors.equals(corr_fit.priors)


@pytest.mark.unit
@pytest.mark.parametrize("option, value, match", [
    ("chains", 0, "chains must be a whole number"),
    ("draws", 2.5, "draws must be a whole number"),
    ("target_accept", 1.5, "target_accept must be between 0 and 1"),
    ("sampler", "magic", "unknown sampler 'magic'"),
    ("seed", -1, "seed must be a non-negative"),
])
def test_bad_sampler_options_raise_sampler_error(option, value, match):
    with pytest.raises(ml.SamplerError, match=match):
        ml.fit("y ~ x + (1 | g)", small_data(), **{option: value})


def test_convergence_warning_names_the_parameters():
    with pytest.warns(ml.ConvergenceWarning, match=r"R-hat > 1.01 or bulk ESS < 400: .*sd\(Intercept\|g\)"):
        ml.fit("y ~ x + (1 | g)", small_data(), chains=2, draws=10, warmup=10, progress=False)


def test_save_and_load_keep_names_with_slashes(tmp_path):
    data = small_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ml.fit("y ~ I(x/2) + (1 | g)", data, chains=1, draws=20, warmup=20, progress=False)
    restored = ml.load(fit.save(tmp_path / "fit.nc"))
    assert "I(x/2)" in restored.idata.posterior
    pd.testing.assert_frame_equal(restored.summary(), fit.summary())
