"""``ml.sbc``: simulation-based calibration on the user's rows. A correct model gives
uniform ranks; one fitted with other priors than those simulated from is flagged.

The slow tests use 100 simulations: for the correct model the test's false alarm is
1e-3 by construction (Bonferroni over the parameters); the mis-specified fit shrinks
the group sd 20-fold, which moves nearly every sd rank to the top bin (a chi-square
p-value far below 1e-10), so missing it is practically impossible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.formula import parse_formula
from multilevel.results.calibration import KEPT_DRAWS, simulated_response, uniformity

PRIORS = {"Intercept": ml.Normal(0, 1), "b": ml.Normal(0, 1), "sigma": ml.HalfNormal(1), "sd": ml.HalfNormal(1)}


def rows(seed: int = 0, n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n), "g": rng.integers(0, 5, n),
                         "n": np.full(n, 8)})


@pytest.mark.unit
def test_the_simulated_response_replaces_the_response_column_only():
    frame = rows()
    spec = parse_formula("y ~ x + (1 | g)")
    out = simulated_response(frame, spec, np.arange(40.0), None)
    assert (out["y"] == np.arange(40.0)).all() and (out["x"] == frame["x"]).all() and frame["y"].iloc[1] != 1.0
    binomial = simulated_response(frame.assign(f=3, s=5), parse_formula("cbind(s, f) ~ x"), np.full(40, 2), None)
    assert (binomial["s"] == 2).all() and (binomial["f"] == 6).all()          # the trials stay 8
    with pytest.raises(ml.DataError, match="must be a column"):
        simulated_response(frame, parse_formula("log(y) ~ x"), np.arange(40.0), None)


@pytest.mark.unit
def test_uniform_ranks_pass_and_piled_ranks_fail():
    rng = np.random.default_rng(1)
    uniform = pd.DataFrame({"a": rng.integers(0, KEPT_DRAWS + 1, 200)})
    tests, calibrated = uniformity(uniform, 1e-3)
    assert calibrated and tests.loc["a", "p_value"] > 1e-3
    piled = pd.DataFrame({"a": np.full(200, KEPT_DRAWS)})
    assert not uniformity(piled, 1e-3)[1]


def test_sbc_returns_ranks_tests_and_a_figure():
    calibration = ml.sbc("y ~ x + (1 | g)", rows(), priors=PRIORS, num_simulations=6, draws=100, warmup=100,
                         progress=False)
    assert list(calibration.ranks.columns) == ["Intercept", "x", "sigma", "sd(Intercept|g)"]
    assert len(calibration.ranks) + calibration.rejected == 6
    assert calibration.ranks.to_numpy().min() >= 0 and calibration.ranks.to_numpy().max() <= KEPT_DRAWS
    assert list(calibration.tests.columns) == ["chi2", "p_value"] and len(calibration.figure.axes) == 4
    with pytest.raises(ml.SamplerError, match="num_simulations"):
        ml.sbc("y ~ x", rows(), num_simulations=1)


@pytest.mark.slow
def test_a_correct_model_is_calibrated_and_a_misspecified_one_is_flagged():
    correct = ml.sbc("y ~ x + (1 | g)", rows(n=60), priors=PRIORS, num_simulations=100, progress=False)
    assert correct.calibrated, correct.tests
    wrong = ml.sbc("y ~ x + (1 | g)", rows(n=60), priors=PRIORS, fit_priors={**PRIORS, "sd": ml.HalfNormal(0.05)},
                   num_simulations=100, progress=False)
    assert not wrong.calibrated and wrong.tests["p_value"].idxmin() == "sd(Intercept|g)"
