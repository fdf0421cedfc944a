"""Compile once: refitting a model of the same structure and shapes must not retrace
the log density, whatever the data values, prior values or seed (house style 9).

The log densities of both samplers read the variance parameters through
``constrain_scales``; a trace runs that Python function, a cached compilation
does not. Counting its calls therefore counts traces.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.model import logdensity, marginal


def data(seed: int, groups: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), 10)
    x = rng.normal(size=g.size)
    return pd.DataFrame({"y": 1 + x + rng.normal(size=groups)[g] + rng.normal(size=g.size), "x": x, "g": g})


@pytest.fixture
def trace_counter(monkeypatch):
    calls = []
    original = logdensity.constrain_scales

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(logdensity, "constrain_scales", counting)
    monkeypatch.setattr(marginal, "constrain_scales", counting)
    return calls


@pytest.mark.parametrize("sampler", ["collapsed", "nuts"])
def test_refit_with_new_values_does_not_retrace(sampler, monkeypatch, request):
    kwargs = dict(sampler=sampler, chains=2, draws=30, warmup=30, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ml.fit("y ~ x + (1 + x | g)", data(0), priors={"sigma": ml.HalfNormal(2.0)}, seed=0, **kwargs)
        calls = request.getfixturevalue("trace_counter")
        ml.fit("y ~ x + (1 + x | g)", data(1), priors={"sigma": ml.HalfNormal(5.0)}, seed=1, **kwargs)
        assert calls == [], "a refit with the same shapes retraced the log density"
        ml.fit("y ~ x + (1 + x | g)", data(2, groups=7), priors={"sigma": ml.HalfNormal(5.0)}, seed=1, **kwargs)
    assert calls, "a new number of groups must trace again (the counter works)"
