"""Priors without data: ``ml.default_priors`` is the table a fit would use, and
``ml.fit(..., prior_only=True)`` draws exactly from the priors.

Each parameter's draws are compared with its prior by a Kolmogorov–Smirnov test
with p > ``FALSE_ALARM / k`` over the k parameters of the model: a correct sampler
fails the test with probability below 1e-3 (the draws are independent, so the
test's nominal rate holds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import multilevel as ml
from agreement import FALSE_ALARM


def data(seed: int = 0, rows: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"y": rng.integers(1, 5, rows), "x": rng.normal(size=rows),
                         "g": rng.integers(0, 6, rows), "h": rng.integers(0, 3, rows)})


@pytest.mark.unit
def test_default_priors_is_the_table_a_fit_would_use():
    table = ml.default_priors("y ~ x + (1 + x | g)", data(), family="poisson", priors={"b": ml.Normal(0, 1)})
    model = ml.build_model("y ~ x + (1 + x | g)", data(), family="poisson", priors={"b": ml.Normal(0, 1)})
    pd.testing.assert_frame_equal(table, model.priors.table())
    assert table.set_index("parameter").loc["x", "source"] == "b"


def test_prior_only_draws_each_parameter_from_its_prior():
    priors = {"Intercept": ml.Normal(1, 2), "b": ml.StudentT(4, 0, 1), "sigma": ml.Exponential(2.0),
              "sd|g": ml.HalfNormal(0.5), "sd|h": ml.GammaPrecision(3, 2), "cor": ml.LKJ(2.0)}
    fit = ml.fit("y ~ x + (1 + x | g) + (1 | h)", data(), priors=priors, prior_only=True, chains=2, draws=2000,
                 seed=3, posterior_predictive=True, progress=False)
    assert fit.sampler_info["sampler"] == "prior"
    post = fit.idata.posterior
    laws = {"Intercept": stats.norm(1, 2), "x": stats.t(4), "sigma": stats.expon(scale=0.5),
            "sd(Intercept|g)": stats.halfnorm(scale=0.5), "sd(x|g)": stats.halfnorm(scale=0.5),
            # 1/s² ~ Gamma(3, rate 2): P(s <= v) = P(1/s² >= 1/v²)
            "sd(Intercept|h)": lambda v: stats.gamma(3, scale=0.5).sf(v ** -2.0),
            # a 2 x 2 LKJ(2) correlation is 2 Beta(2, 2) - 1
            "cor(Intercept,x|g)": lambda r: stats.beta(2, 2).cdf((r + 1) / 2)}
    for name, law in laws.items():
        cdf = law.cdf if hasattr(law, "cdf") else law
        p = stats.kstest(post[name].values.reshape(-1), cdf).pvalue
        assert p > FALSE_ALARM / len(laws), f"{name}: draws do not follow the prior (KS p = {p:.2g})"
    effects = post["Intercept|g"].values.reshape(-1, 6) / post["sd(Intercept|g)"].values.reshape(-1, 1)
    assert stats.kstest(effects.reshape(-1), "norm").pvalue > FALSE_ALARM
    assert fit.idata.posterior_predictive["y"].shape == (2, 2000, 120)


def test_prior_only_keeps_ordinal_thresholds_in_order_and_draws_them_as_sorted_independent_priors():
    fit = ml.fit("y ~ x", data(), family="cumulative", priors={"Intercept": ml.Normal(0, 1)}, prior_only=True,
                 chains=1, draws=4000, progress=False)
    thresholds = np.stack([fit.idata.posterior[f"Intercept[{k}]"].values.reshape(-1) for k in (1, 2, 3)], -1)
    assert np.all(np.diff(thresholds, axis=1) > 0)
    # the smallest of three independent N(0, 1): P(min <= v) = 1 - (1 - Φ(v))³
    p = stats.kstest(thresholds[:, 0], lambda v: 1 - stats.norm.sf(v) ** 3).pvalue
    assert p > FALSE_ALARM


@pytest.mark.unit
def test_prior_only_takes_no_sampler():
    with pytest.raises(ml.SamplerError, match="takes no sampler"):
        ml.fit("y ~ x", data(), prior_only=True, sampler="nuts")
