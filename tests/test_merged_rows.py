"""Identical rows sampled as one weighted row give the same log density.

* merging keeps the log density and its gradient (to 1e-10 relative) for logistic,
  binomial, Poisson with offsets, ordinal, weighted and right-censored models, centred
  and not, and the centring rule's information about each level (the pilot's rule; the
  data-only guess before the pilot reads the unmerged rows);
* rows that differ in anything the likelihood reads are not merged, designs where little
  would merge are left alone, and the merged rows keep their first occurrences' order;
* a NUTS fit of a logistic model with categorical predictors says it merged the rows,
  and its posterior agrees with the fit of the same data without duplicates (weights).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.inference.centering import effective_information, row_precision
from multilevel.model.logdensity import make_logdensity, model_data, structure
from multilevel.model.merged_rows import merge_identical_rows
from multilevel.model.record import build_model

RTOL = 1e-10


def _categorical_data(seed: int = 0, rows: int = 800) -> pd.DataFrame:
    """Few covariate patterns: 10 groups x 3 levels of a factor x a binary flag."""
    rng = np.random.default_rng(seed)
    g, f, flag = rng.integers(0, 10, rows), rng.integers(0, 3, rows), rng.integers(0, 2, rows)
    eta = -0.2 + 0.4 * flag + np.array([0.0, 0.5, -0.5])[f] + 0.6 * rng.normal(size=10)[g]
    p = 1 / (1 + np.exp(-eta))
    frame = pd.DataFrame({"g": g, "f": np.array(list("abc"))[f], "flag": flag, "n": 1 + (g % 3),
                          "exposure": 1.0 + (f == 1), "w": 1.0 + (g % 2)})
    frame["y"] = rng.binomial(1, p)
    frame["k"] = rng.binomial(frame["n"], p)
    frame["count"] = rng.poisson(np.exp(eta) * frame["exposure"])
    frame["rating"] = 1 + (frame["k"] > 0) + (frame["count"] > 1)
    frame["time"] = 1.0 + (frame["count"] % 3)
    frame["censored"] = np.where(frame["count"] > 2, "right", "none")
    return frame


CASES = [("bernoulli", "y | weights(w) ~ flag + f + (1 + flag | g)", True),
         ("binomial", "k | trials(n) ~ flag + f + (1 | g)", True),
         ("poisson", "count ~ flag + offset(log(exposure)) + (1 + flag || g)", False),
         ("cumulative", "rating ~ flag + (1 | g)", False),
         ("weibull", "time | cens(censored) ~ flag + (1 | g)", True)]


@pytest.mark.parametrize("family, formula, centred", CASES)
def test_merged_rows_keep_the_log_density_and_gradient(family, formula, centred):
    model = build_model(formula, _categorical_data(), family=family)
    merged = merge_identical_rows(model.design)
    assert merged.num_rows < 0.5 * model.design.num_rows
    with jax.enable_x64(True):
        _, start = model.log_density()
        struct = structure(model.layout, model.family)
        flags = (centred,) * len(model.layout.groups)
        full = model_data(model.design, model.priors, flags, family=model.family)
        small = model_data(merged, model.priors, flags, family=model.family)
        rng = np.random.default_rng(1)
        position = jax.tree_util.tree_map(lambda a: jnp.asarray(a + 0.3 * rng.normal(size=np.shape(a))), start)
        f = jax.value_and_grad(make_logdensity(struct))
        (value, grad), (value_ref, grad_ref) = f(position, small), f(position, full)
    np.testing.assert_allclose(value, value_ref, rtol=RTOL)
    for a, b in zip(jax.tree_util.tree_leaves(grad), jax.tree_util.tree_leaves(grad_ref)):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=1e-10)
    sds = [np.full(g.q, 0.7) for g in model.design.groups]
    for a, b in zip(effective_information(merged, row_precision(merged) * np.ones(merged.num_rows), sds),
                    effective_information(model.design, row_precision(model.design) * np.ones(full.y.shape[0]), sds)):
        np.testing.assert_allclose(a, b, rtol=RTOL)


def test_rows_that_differ_are_not_merged_and_order_is_kept():
    frame = pd.DataFrame({"y": [1, 0, 1, 1, 0, 1], "x": [0.5, 0.5, 0.5, 0.5, 0.5, 0.25],
                          "g": ["b", "b", "b", "a", "b", "b"]})
    frame = pd.concat([frame] * 4, ignore_index=True)
    model = build_model("y ~ x + (1 | g)", frame, family="bernoulli")
    merged = merge_identical_rows(model.design)
    # patterns in order of first occurrence: (1, .5, b), (0, .5, b), (1, .5, a), (1, .25, b)
    np.testing.assert_array_equal(merged.y, [1, 0, 1, 1])
    np.testing.assert_array_equal(merged.weights, [8, 8, 4, 4])
    np.testing.assert_array_equal(merged.X[:, 1], [0.5, 0.5, 0.5, 0.25])
    assert [model.design.groups[0].levels[r] for r in merged.groups[0].refs] == ["b", "b", "a", "b"]


def test_designs_where_few_rows_merge_are_left_alone():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"y": rng.integers(0, 2, 200), "x": rng.normal(size=200), "g": rng.integers(0, 5, 200)})
    design = build_model("y ~ x + (1 | g)", frame, family="bernoulli").design
    assert merge_identical_rows(design) is design


def test_nuts_fit_on_merged_rows_agrees_with_the_weighted_fit_of_the_patterns():
    """The same posterior from the 800 rows (merged by the sampler) and from one row per
    pattern with its count as weight: max |z| of the means below 4.5 (two independent
    fits, 2 x 600 draws each; false-alarm rate about 1e-4 over the 15 parameters)."""
    frame = _categorical_data()
    formula = "y ~ flag + f + (1 | g)"
    fit = ml.fit(formula, frame, family="bernoulli", sampler="nuts", chains=2, draws=600, warmup=300, seed=3,
                 progress=False)
    assert "merged_rows" in fit.sampler_info and "800 rows" in fit.sampler_info["merged_rows"]
    patterns = frame.groupby(["y", "flag", "f", "g"]).size().rename("w").reset_index()
    weighted = ml.fit("y | weights(w) ~ flag + f + (1 | g)", patterns, family="bernoulli", sampler="nuts",
                      chains=2, draws=600, warmup=300, seed=4, progress=False)
    a, b = fit.summary(), weighted.summary()
    rows = [r for r in a.index if r in b.index]
    assert len(rows) == 15   # 4 fixed effects, the sd and 10 group effects
    z = (a.loc[rows, "mean"] - b.loc[rows, "mean"]) / np.hypot(a.loc[rows, "mcse_mean"], b.loc[rows, "mcse_mean"])
    assert np.abs(z).max() < 4.5, z
