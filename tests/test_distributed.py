"""Fitting a Dask DataFrame: statistics computed where the data live, same posterior.

A Parquet data set written by the test is read by a local Dask cluster (two
worker processes). The sufficient statistics that Dask computes partition by
partition equal those of the same data in memory, and the fit has the same
posterior as the in-memory fit (``agreement.assert_agree``: both converged, every
mean and sd within the z limit of combined MCSEs; false alarm < 1e-3 for each
check, less still here, as both fits use the same seed and their draws are
correlated).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from agreement import assert_agree
from multilevel.design import build_design
from multilevel.design.distributed import distributed_statistics
from multilevel.design.suffstats import design_statistics
from multilevel.formula import parse_formula

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

FORMULA = "y ~ scale(x) + kind + (1 + x | school/class)"


def schools(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    school = np.repeat(np.arange(12), 40)
    klass = np.repeat(np.arange(96), 5) % 8
    x = rng.normal(2, 3, school.size)
    kind = rng.choice(["a", "b", "c"], school.size)
    y = (1 + 0.4 * x + (kind == "b") + rng.normal(0, 1, 12)[school] + 0.2 * rng.normal(0, 1, 12)[school] * x
         + rng.normal(0, 0.5, 96)[school * 8 + klass] + rng.normal(0, 1, school.size))
    data = pd.DataFrame({"y": y, "x": x, "kind": kind, "school": school, "class": klass})
    data.loc[[3, 50, 400], "x"] = np.nan
    return data.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # levels spread over partitions


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def parquet(tmp_path_factory):
    path = tmp_path_factory.mktemp("schools")
    data = schools()
    for i, rows in enumerate(np.array_split(np.arange(len(data)), 5)):
        data.iloc[rows].to_parquet(path / f"part-{i}.parquet")
    return data, path


def test_dask_statistics_equal_in_memory_statistics(client, parquet):
    data, path = parquet
    spec = parse_formula(FORMULA)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_dask = distributed_statistics(spec, dd.read_parquet(path))
        design = build_design(spec, data)
    assert from_dask.order == ("school", "school:class") and from_dask.num_partitions == 5
    assert from_dask.dropped_rows == 3
    assert from_dask.encoders.levels == design.encoders.levels
    np.testing.assert_allclose(from_dask.encoders.stats["scale(x)"], design.encoders.stats["scale(x)"], rtol=1e-12)
    in_memory = design_statistics(design, from_dask.order)
    for a, b in zip(from_dask.stats[:4], in_memory[:4]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-8)
    for a, b in zip(from_dask.stats.levels, in_memory.levels):
        for x, y in zip(a, b):
            if x is not None:
                np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-8)


def test_dask_fit_has_the_in_memory_posterior(client, parquet):
    data, path = parquet
    kwargs = dict(chains=4, draws=500, warmup=500, seed=3, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        remote = ml.fit(FORMULA, dd.read_parquet(path), **kwargs)
        local = ml.fit(FORMULA, data, **kwargs)
    assert "Dask DataFrame (5 partitions)" in remote.sampler_info["reason"]
    assert remote.priors.equals(local.priors)
    assert_agree(remote, local)
    new = pd.DataFrame({"x": [1.0, 2.0], "kind": ["a", "c"], "school": [0, 99], "class": [1, 1]})
    assert remote.predict(new, new_groups="zero")["mean"].notna().all()


@pytest.mark.unit
def test_dask_frame_needs_the_collapsed_sampler(parquet):
    _, path = parquet
    with pytest.raises(ml.SamplerError, match="collapsed sampler"):
        ml.fit(FORMULA, dd.read_parquet(path), sampler="nuts")
