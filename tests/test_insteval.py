"""Crossed random effects at scale (slow tier): InstEval with the default sampler.

73,421 ratings, 2,972 students crossed with 1,128 lecturers nested in 14
departments. ``sampler="auto"`` picks the Gibbs sampler, which converges with
4 chains × 1000 draws: bulk ESS >= 400 and R-hat within the limit for its ESS
(``agreement.rhat_limit``: 1.01 at the bulk ESS of ~3000 the benchmark measures;
false alarm < 1e-3) on the fixed effects, sigma and the sds. (Its speed is
measured by benchmarks/bench_insteval.py.)
"""

from __future__ import annotations

import warnings

import pytest

import multilevel as ml
from agreement import assert_converged
from conftest import read_shared


@pytest.mark.slow
def test_insteval_converges_with_the_default_sampler():
    data = read_shared("InstEval.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ml.fit("y ~ service + (1 | s) + (1 | d) + (1 | dept)", data, chains=4, draws=1000, warmup=1000,
                     progress=False)
    assert fit.sampler_info["sampler"] == "gibbs"
    assert fit.sampler_info["blocks"] == [["s"], ["dept", "d"]]
    assert_converged(fit.summary(group_effects=False), chains=4, ess_min=400, what="InstEval")
