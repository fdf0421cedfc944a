"""The Gibbs sampler targets the same posterior as the exact answer and the other samplers.

* fixed effects only, vague priors: the exact posterior is Student-t around OLS;
* one grouping factor (FACE-like), and a correlated block with an
  InverseWishart prior: agreement with the collapsed sampler within Monte
  Carlo error on every parameter, group effects included;
* crossed factors with the default (non-conjugate) sd priors: agreement with
  NUTS, and ``sampler="auto"`` picks Gibbs;
* what the Gibbs sampler cannot take raises PriorError naming the prior.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special

import multilevel as ml
from agreement import assert_agree, assert_converged, assert_within_mcse
from multilevel.design import build_design

VAGUE = {"Intercept": ml.Normal(0, 1000), "b": ml.Normal(0, 1000), "sigma": ml.GammaPrecision(0.001, 0.001)}
VAGUE_SD = {**VAGUE, "sd": ml.GammaPrecision(0.001, 0.001)}


def quiet_fit(*args, **kwargs) -> ml.Fit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ml.fit(*args, progress=False, **kwargs)


def exact_regression_posterior(X: np.ndarray, y: np.ndarray, shape: float, rate: float):
    """Means and sds of b, and E[σ], under a flat prior on b and 1/σ² ~ Gamma(shape, rate).

    b | y is multivariate t with ν = n - p + 2 shape degrees of freedom around the OLS
    estimate, scale² = (RSS + 2 rate)/ν · (XᵀX)⁻¹; 1/σ² | y ~ Gamma(shape + (n - p)/2,
    rate + RSS/2), so E[σ] = sqrt(rate') Γ(shape' - 1/2) / Γ(shape').
    """
    n, p = X.shape
    b_hat, *_ = np.linalg.lstsq(X, y, rcond=None)
    rss = float(np.sum((y - X @ b_hat) ** 2))
    nu = n - p + 2 * shape
    scale2 = (rss + 2 * rate) / nu * np.diag(np.linalg.inv(X.T @ X))
    a, r = shape + (n - p) / 2, rate + rss / 2
    sigma_mean = np.sqrt(r) * np.exp(special.gammaln(a - 0.5) - special.gammaln(a))
    return b_hat, np.sqrt(scale2 * nu / (nu - 2)), sigma_mean


def test_fixed_effects_match_the_exact_student_t_posterior():
    data = ml.datasets.simulate_growth(seed=1)
    fit = quiet_fit("log(dnow) ~ diam*trt", data, priors=VAGUE, sampler="gibbs", chains=4, draws=1500,
                    warmup=100, seed=1)
    design = build_design(ml.parse_formula("log(dnow) ~ diam*trt"), data)
    mean, sd, sigma_mean = exact_regression_posterior(design.X, design.y, 0.001, 0.001)
    table = fit.summary()
    assert_converged(table, chains=4, ess_min=1000)
    assert_matches_exact(table, list(design.columns), mean, sd, sigma_mean)


def assert_matches_exact(table, names, mean, sd, sigma_mean) -> None:
    """Posterior means and sds of the coefficients, and E[sigma], within the z limit of
    ``agreement.z_limit`` of the exact values: 2p + 1 comparisons with one fit (z = 4.44
    for p = 4), false alarm < 1e-3 in all."""
    estimate = pd.concat([table.loc[names, "mean"], table.loc[names, "sd"].add_prefix("sd "),
                          table.loc[["sigma"], "mean"]])
    mcse = pd.concat([table.loc[names, "mcse_mean"], table.loc[names, "mcse_sd"].add_prefix("sd "),
                      table.loc[["sigma"], "mcse_mean"]])
    exact = pd.Series(np.concatenate([mean, sd, [sigma_mean]]), index=estimate.index)
    assert_within_mcse(estimate, exact, mcse, what="posterior moments")


def test_one_grouping_factor_agrees_with_the_collapsed_sampler():
    data = ml.datasets.simulate_growth(seed=4)
    data = data[data["tree"] <= 120]
    formula = "log(dnow) ~ diam*trt + (1 + diam || tree)"
    gibbs = quiet_fit(formula, data, priors=VAGUE_SD, sampler="gibbs", chains=4, draws=2000, warmup=500)
    collapsed = quiet_fit(formula, data, priors=VAGUE_SD, sampler="collapsed", chains=4, draws=1000)
    assert gibbs.sampler_info["sampler"] == "gibbs"
    assert_agree(gibbs, collapsed)


def simulate_correlated(seed: int, groups: int = 30, per_group: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    x = rng.normal(size=g.size)
    effects = rng.multivariate_normal([0, 0], [[1.0, 0.5], [0.5, 0.5]], size=groups)
    y = 1 + 0.5 * x + effects[g, 0] + effects[g, 1] * x + rng.normal(0, 0.7, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def test_inverse_wishart_block_agrees_with_the_collapsed_sampler():
    """The conjugate covariance draw (Gibbs) and the InverseWishart density on (sd, L)
    (collapsed) target the same posterior."""
    data = simulate_correlated(seed=2)
    priors = {"Intercept": ml.Normal(0, 10), "b": ml.Normal(0, 10), "sigma": ml.GammaPrecision(1, 1),
              "cov": ml.InverseWishart(df=4, scale=1)}
    gibbs = quiet_fit("y ~ x + (1 + x | g)", data, priors=priors, sampler="gibbs", chains=4, draws=2000,
                      warmup=500)
    collapsed = quiet_fit("y ~ x + (1 + x | g)", data, priors=priors, sampler="collapsed", chains=4, draws=1000)
    assert "cov|g" in set(gibbs.priors["parameter"])
    assert_agree(gibbs, collapsed)


def simulate_crossed(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = np.meshgrid(np.arange(25), np.arange(15), indexing="ij")
    a, b = np.repeat(a.ravel(), 2), np.repeat(b.ravel(), 2)
    x = rng.normal(size=a.size)
    y = 2 + 0.3 * x + rng.normal(0, 0.8, 25)[a] + rng.normal(0, 0.4, 15)[b] + rng.normal(0, 1, a.size)
    keep = rng.uniform(size=a.size) < 0.8  # unbalanced
    return pd.DataFrame({"y": y, "x": x, "a": a, "b": b})[keep]


def test_crossed_factors_use_gibbs_and_agree_with_nuts():
    data = simulate_crossed(seed=3)
    gibbs = quiet_fit("y ~ x + (1 | a) + (1 | b)", data, chains=4, draws=2000, warmup=500)
    nuts = quiet_fit("y ~ x + (1 | a) + (1 | b)", data, sampler="nuts", chains=4, draws=1000)
    assert gibbs.sampler_info["sampler"] == "gibbs"
    assert "crossed" in gibbs.sampler_info["reason"]
    assert_agree(gibbs, nuts)


@pytest.mark.unit
def test_a_factor_nested_in_another_is_drawn_in_the_same_block():
    rng = np.random.default_rng(0)
    lecturer = rng.integers(0, 40, 600)
    data = pd.DataFrame({"y": rng.normal(size=600), "student": rng.integers(0, 50, 600),
                         "lecturer": lecturer, "dept": lecturer // 10})
    design = build_design(ml.parse_formula("y ~ 1 + (1 | student) + (1 | lecturer) + (1 | dept)"), data)
    assert set(design.structure.blocks) == {("student",), ("dept", "lecturer")}


@pytest.mark.unit
def test_gibbs_rejects_priors_it_cannot_sample():
    data = simulate_correlated(seed=0)
    with pytest.raises(ml.PriorError, match="StudentT.*nuts"):
        ml.fit("y ~ x + (1 | g)", data, priors={"b": ml.StudentT(3, 0, 1)}, sampler="gibbs", progress=False)
    with pytest.raises(ml.PriorError, match="InverseWishart.*nuts"):
        ml.fit("y ~ x + (1 + x | g)", data, sampler="gibbs", progress=False)


def test_auto_falls_back_to_nuts_when_gibbs_cannot_take_the_priors():
    data = simulate_crossed(seed=0)
    fit = quiet_fit("y ~ x + (1 | a) + (1 | b)", data, priors={"b": ml.StudentT(3, 0, 1)}, chains=2, draws=200,
                    warmup=200)
    assert fit.sampler_info["sampler"] == "nuts"
    assert "Gibbs cannot" in fit.sampler_info["reason"]


def test_no_group_terms_with_auto_sampler():
    data = simulate_correlated(seed=0)
    fit = quiet_fit("y ~ x", data, chains=2, draws=200, warmup=200)
    assert fit.sampler_info["reason"].endswith("no group terms: effects integrated out exactly")


def test_a_sweep_carries_each_factors_row_contributions_and_the_fixed_effect_sums_of_its_rows():
    """The state's ``Z_k r_k`` are those of its effects, and ``Xᵀ Λ ỹ`` from the per-level
    ``Zᵀ Λ X`` equals the pass over the (weighted) rows, to rounding."""
    import jax
    import jax.numpy as jnp

    from multilevel.design.summary import summarise
    from multilevel.inference import gibbs
    from multilevel.model.logdensity import initial_position

    rng = np.random.default_rng(4)
    lecturer = rng.integers(0, 12, 300)
    data = pd.DataFrame({"y": rng.normal(size=300), "x": rng.normal(size=300), "w": rng.uniform(0.5, 2, 300),
                         "student": rng.integers(0, 20, 300), "lecturer": lecturer, "dept": lecturer // 4})
    with jax.enable_x64(True):
        model = ml.build_model("y | weights(w) ~ x + (1 | student) + (1 | lecturer) + (1 | dept)", data)
        design = model.working_design()
        factors, struct = gibbs.gibbs_blocks(model.layout, design)
        data_ = gibbs.gibbs_data(design, factors, struct, model.priors, model.row_noise())
        position = initial_position(rng, summarise(design), model.layout, model.priors, model.family)
        step = jax.jit(gibbs.gibbs_step, static_argnums=3)
        state = gibbs._initial_state(position, data_, struct, model.layout)
        for key in jax.random.split(jax.random.PRNGKey(0), 3):
            state = step(key, state, data_, struct)[0]
        for k, r in enumerate(state.effects):
            np.testing.assert_allclose(state.contributions[k], gibbs._contribution(data_, k, r), rtol=1e-12)
        for block, level_stats in zip(struct.blocks, data_.blocks):
            resid = data_.y - sum(state.contributions[k] for k in range(len(factors)) if k not in block)
            stats = gibbs._block_stats(data_, struct, block, level_stats, resid, list(state.effects))
            np.testing.assert_allclose(stats.Xty, data_.X.T @ (data_.precision * resid), rtol=1e-10)
