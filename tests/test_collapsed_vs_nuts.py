"""The collapsed sampler and NUTS on the full model agree, parameter by parameter.

Both target the same posterior, so for every parameter (fixed effects, sigma,
group sds and correlations, and every group effect) the two posterior means
differ by less than z combined Monte Carlo standard errors,
``z sqrt(mcse_collapsed² + mcse_nuts²)``, and so do the posterior sds (with
ArviZ's ``mcse_sd``), after both fits pass the R-hat limit for their ESS; z is
the Bonferroni bound of ``agreement.assert_agree`` (false alarm < 1e-3 per test
over all ~2m comparisons: z = 5.3 for the 247 parameters of the FACE-like model).
The draws differ from machine to machine (floating point), so nothing here relies
on a seed. Models: cheese model 1 (real data), sleepstudy with correlated
intercept and slope (real data), a FACE-like tree-growth simulation, and
students in classes nested in schools.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import pandas as pd

import multilevel as ml
from agreement import assert_agree


def fit_both(formula, data, priors=None, draws=1000, seed=0):
    fits = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for sampler in ("collapsed", "nuts"):
            fits[sampler] = ml.fit(formula, data, priors=priors, sampler=sampler, chains=4,
                                   draws=draws, warmup=1000, seed=seed, progress=False)
    return fits["collapsed"], fits["nuts"]


def test_cheese_model_1(cheese):
    """With two backgrounds, the posterior of their sd has a tail ~ sd⁻⁴ (see
    test_reference_cheese.py): no fourth moment, so its posterior sd has no meaningful
    MCSE and is left out of the comparison (its mean is compared)."""
    formula = ml.datasets.CHEESE_MODELS[1][1]
    assert_agree(*fit_both(formula, cheese, ml.datasets.cheese_priors(cheese, 1), draws=2000),
                 sd_exclude=("sd(Intercept|background)",))


def test_sleepstudy_correlated_intercept_and_slope(sleepstudy):
    priors = {"Intercept": ml.Normal(250, 100), "b": ml.Normal(0, 50), "sigma": ml.HalfStudentT(3, 50),
              "sd": ml.HalfStudentT(3, 50), "cor": ml.LKJ(2)}
    assert_agree(*fit_both("Reaction ~ Days + (Days | Subject)", sleepstudy, priors))


@pytest.mark.slow
def test_face_like_growth_simulation():
    data = ml.datasets.simulate_growth(seed=4)
    data = data[data["tree"] <= 120]
    priors = {"b": ml.Normal(0, 10), "Intercept": ml.Normal(0, 10)}
    assert_agree(*fit_both("log(dnow) ~ diam*trt + (1 + diam || tree)", data, priors))


def nested_data(seed: int = 0) -> pd.DataFrame:
    """Students in classes in schools: school intercepts and slopes, class intercepts."""
    rng = np.random.default_rng(seed)
    school = np.repeat(np.arange(8), 30)
    klass = np.repeat(np.arange(48), 5)
    x = rng.normal(size=school.size)
    y = (2 + 0.5 * x + rng.normal(0, 1.0, 8)[school] + rng.normal(0, 0.4, 8)[school] * x
         + rng.normal(0, 0.5, 48)[klass] + rng.normal(0, 0.8, school.size))
    return pd.DataFrame({"y": y, "x": x, "school": school, "class": klass % 6})


def test_nested_grouping_factors():
    a, b = fit_both("y ~ x + (1 + x | school) + (1 | school:class)", nested_data())
    assert a.sampler_info["sampler"] == "collapsed" and b.sampler_info["sampler"] == "nuts"
    assert_agree(a, b)
