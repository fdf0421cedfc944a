"""DIC, WAIC, LOO and the comparison of fits.

DIC follows JAGS: D(θ) = -2 Σ log p(y_i | θ) conditional on the group effects,
p_D = D̄ - D(θ̄) and DIC = D(θ̄) + 2 p_D. Its parts are checked against an
independent numpy computation from the posterior draws, and its behaviour on
models whose effective number of parameters is known.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

import multilevel as ml
from multilevel.results import assemble
from multilevel.design import build_design

VAGUE = {"Intercept": ml.Normal(0, 1000), "b": ml.Normal(0, 1000), "sigma": ml.GammaPrecision(0.001, 0.001)}
RANDOM = "log(dnow) ~ diam*trt + (1 + diam || tree)"


def quiet_fit(*args, **kwargs) -> ml.Fit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ml.fit(*args, progress=False, **kwargs)


@pytest.fixture(scope="module")
def growth():
    data = ml.datasets.simulate_growth(seed=2)
    return data[data["tree"] <= 150]


@pytest.fixture(scope="module")
def fits(growth):
    priors = {**VAGUE, "sd": ml.GammaPrecision(0.001, 0.001)}
    return {
        "fixed": quiet_fit("log(dnow) ~ diam*trt", growth, priors=VAGUE, sampler="gibbs", chains=2,
                           draws=600, warmup=200),
        "random": quiet_fit(RANDOM, growth, priors=priors, sampler="gibbs", chains=2, draws=600, warmup=200),
        "nfert": quiet_fit("log(dnow) ~ diam*trt + nfert + (1 + diam || tree)", growth, priors=priors,
                           sampler="gibbs", chains=2, draws=600, warmup=200),
    }


def test_dic_parts_match_an_independent_computation(fits, growth):
    fit = fits["random"]
    design = build_design(ml.parse_formula(RANDOM), growth)
    post = fit.idata.posterior
    b = np.stack([post[c].values for c in design.columns], axis=-1)  # (chain, draw, p)
    sigma = post["sigma"].values
    eta = b @ design.X.T
    for g in design.groups:
        r = np.stack([post[f"{c}|tree"].values for c in g.columns], axis=-1)  # (chain, draw, levels, q)
        eta = eta + np.einsum("cdnq,nq->cdn", r[:, :, g.refs, :], g.z)
    deviance = -2 * stats.norm.logpdf(design.y, eta, sigma[..., None]).sum(axis=-1)
    eta_hat = eta.mean(axis=(0, 1))
    d_hat = -2 * stats.norm.logpdf(design.y, eta_hat, sigma.mean()).sum()

    dic = fit.dic()
    assert dic.d_bar == pytest.approx(deviance.mean(), rel=1e-9)
    assert dic.d_hat == pytest.approx(d_hat, rel=1e-9)
    assert dic.p_d == pytest.approx(dic.d_bar - dic.d_hat, rel=1e-12)
    assert dic.dic == pytest.approx(dic.d_hat + 2 * dic.p_d, rel=1e-12)


def test_p_d_of_a_regression_is_its_number_of_parameters(fits):
    # 4 coefficients and sigma, all well identified: p_D is 5 up to O(1/n) and Monte Carlo
    # error. The latter is that of the mean deviance: sd(D) ≈ sqrt(2 p_D) ≈ 3.3 at bulk ESS
    # ~1000 of 1200 Gibbs draws, MCSE ≈ 0.1 (observed p_D 5.13), so 0.7 is >= 5.5 MCSEs away
    # from the expected value: a false alarm below 1e-7.
    assert fits["fixed"].dic().p_d == pytest.approx(5.0, abs=0.7)


def test_dic_ranks_the_random_effects_model_far_ahead(fits):
    fixed, random = fits["fixed"].dic(), fits["random"].dic()
    assert random.dic < fixed.dic - 1000     # observed 736 vs 2799; the MCSE of a DIC is ~1
    assert 0 < random.p_d < 2 * 150 + 6  # at most two effects per tree plus the globals


@pytest.mark.parametrize("ic", ["dic", "waic", "loo"])
def test_compare_ranks_models_with_every_criterion(fits, ic):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = ml.compare(fits, ic=ic)
    assert list(table["rank"]) == [0, 1, 2]
    assert table.index[-1] == "fixed"
    if ic == "dic":
        assert {"dic", "p_d", "d_bar", "d_hat", "dic_diff"} <= set(table.columns)
        assert table["dic_diff"].iloc[0] == 0 and (table["dic_diff"].diff().iloc[1:] >= 0).all()
    else:
        assert {f"elpd_{ic}", f"p_{ic}", "elpd_diff", "se", "dse"} <= set(table.columns)


def test_compare_rejects_bad_requests(fits, growth):
    with pytest.raises(ml.MultilevelError, match="ic must be"):
        ml.compare(fits, ic="aic")
    with pytest.raises(ml.MultilevelError, match="at least two"):
        ml.compare({"one": fits["fixed"]})
    other = quiet_fit("log(dnow) ~ diam", growth.iloc[:300], priors=VAGUE, sampler="gibbs", chains=2,
                      draws=100, warmup=50)
    with pytest.raises(ml.MultilevelError, match="different numbers of rows"):
        ml.compare({"a": fits["fixed"], "b": other}, ic="dic")


def test_waic_and_loo_come_from_the_stored_log_likelihood(fits):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        waic, loo = fits["fixed"].waic(), fits["fixed"].loo()
    assert np.isfinite(waic["elpd_waic"]) and np.isfinite(loo["elpd_loo"])
    assert loo["elpd_loo"] == pytest.approx(waic["elpd_waic"], abs=2 * loo["se"])


def test_dic_without_stored_log_likelihood_uses_the_samplers_deviances(growth, monkeypatch):
    priors = {**VAGUE, "sd": ml.GammaPrecision(0.001, 0.001)}
    kwargs = dict(priors=priors, sampler="gibbs", chains=2, draws=300, warmup=100, seed=5)
    stored = quiet_fit(RANDOM, growth, **kwargs)
    monkeypatch.setattr(assemble, "MAX_LOGLIK_VALUES", 0)
    unstored = quiet_fit(RANDOM, growth, **kwargs)
    assert "log_likelihood" not in unstored.idata.groups()
    np.testing.assert_allclose(unstored.idata.sample_stats["deviance"], stored.idata.sample_stats["deviance"],
                               rtol=1e-8)
    assert unstored.dic().dic == pytest.approx(stored.dic().dic, rel=1e-8)
    with pytest.raises(ml.MultilevelError, match="log-likelihood"):
        unstored.waic()


def test_dic_survives_save_and_load(fits, tmp_path):
    path = fits["random"].save(tmp_path / "fit.nc")
    assert ml.load(path).dic() == fits["random"].dic()
