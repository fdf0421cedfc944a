"""The per-term choice of centred or non-centred group effects for NUTS (small fits).

A pilot run estimates each term's sd; a term is centred when sd² times the
information its rows carry about a level's effects, the other terms integrated
out, is at least 1 for most levels (see ``multilevel/inference/centering.py``;
the rule itself, without sampling, in ``test_centering_rule.py``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from agreement import assert_agree

FIT = dict(family="poisson", chains=2, draws=150, warmup=120, seed=0, progress=False)


def counts(levels: int, rows: int, sd: float, seed: int = 0) -> pd.DataFrame:
    """Poisson counts with mean about 5, ``rows`` per level, level effects of sd ``sd``."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(levels), rows)
    eta = np.log(5.0) + rng.normal(0, sd, levels)[g]
    return pd.DataFrame({"y": rng.poisson(np.exp(eta)), "g": g})


def fit(data: pd.DataFrame, **kwargs) -> ml.Fit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ml.fit("y ~ 1 + (1 | g)", data, **{**FIT, **kwargs})


@pytest.fixture(scope="module")
def rich():
    """40 rows of mean 5 per level and sd 1: sd² × information ≈ 200 per level."""
    return fit(counts(20, 40, 1.0))


def test_a_term_with_much_data_per_level_is_centred(rich):
    assert rich.sampler_info["centering"] == {"g": "centred"}
    assert "pilot run" in rich.sampler_info["centering_reason"]["g"]
    assert rich.sampler_info["pilot_steps"] > 0


def test_a_weakly_informed_term_is_non_centred():
    info = fit(counts(20, 1, 0.3)).sampler_info      # one row per level: sd² × information ≈ 0.5
    assert info["centering"] == {"g": "non-centred"}
    assert "prior dominates" in info["centering_reason"]["g"]


def test_a_term_with_sd_near_zero_is_non_centred_although_rich_in_data():
    data = counts(20, 40, 0.0)                          # the data-only rule would centre it
    assert ml.inference.choose_centering(_design(data), ml.families.poisson()) == (True,)
    info = fit(data).sampler_info
    assert info["centering"] == {"g": "non-centred"}


def test_the_user_overrides_the_choice():
    data = counts(20, 40, 1.0)
    for centered, expected in ((False, "non-centred"), ({"g": False}, "non-centred"), (True, "centred")):
        info = fit(data, centered=centered, draws=20, warmup=20).sampler_info
        assert info["centering"] == {"g": expected}
        assert info["centering_reason"]["g"] == "set by centered="
        assert info["pilot_steps"] == 0
    with pytest.raises(ml.SamplerError, match="unknown grouping factors"):
        fit(data, centered={"h": True})


def test_centred_and_non_centred_fits_agree(rich):
    """The centred parameterisation (around the fixed intercept) is the same posterior:
    ``agreement.assert_agree`` (both converged, means and sds within the z limit; false
    alarm < 1e-3 for each check). Non-centred, this data-rich term mixes slowly (bulk ESS of
    the sd ~100 per 600 draws, ~250 per 2400), hence the longer run."""
    assert_agree(rich, fit(counts(20, 40, 1.0), centered=False, draws=2000))


def test_in_a_nested_design_the_informed_inner_term_is_centred_and_the_outer_one_not():
    """20 locations of 3 broods of 10 Poisson rows (mean ~5), brood sd 1.5, location
    sd 0.3: a brood has sd² × information ≈ 2.25 × 50 ≈ 110; a location gets from
    each brood only 1/(1.5² + 1/50), so ≈ 0.09 × 3 × 0.44 ≈ 0.12 (the pilot's sds,
    about 1.5 and 0.6: 120 and 0.45). sd² × the conditional information of the
    location's rows, 0.09 × 150 ≈ 13, would centre it too."""
    rng = np.random.default_rng(0)
    location = np.repeat(np.arange(20), 3)                                          # 60 broods
    brood = np.repeat(np.arange(location.size), 10)
    eta = np.log(5.0) + rng.normal(0, 0.3, 20)[location][brood] + rng.normal(0, 1.5, location.size)[brood]
    data = pd.DataFrame({"y": rng.poisson(np.exp(eta)), "brood": brood, "location": location[brood]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = ml.fit("y ~ 1 + (1 | brood) + (1 | location)", data, **FIT).sampler_info
    assert info["centering"] == {"brood": "centred", "location": "non-centred"}
    assert "prior dominates" in info["centering_reason"]["location"]


def _design(data: pd.DataFrame):
    from multilevel.design import build_design
    return build_design(ml.parse_formula("y ~ 1 + (1 | g)"), data)
