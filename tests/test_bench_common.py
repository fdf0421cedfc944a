"""The benchmarks' one definition of the seconds to a min bulk ESS of 400 (benchmarks/common.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

spec = importlib.util.spec_from_file_location("bench_common", Path(__file__).parents[1] / "benchmarks" / "common.py")
common = importlib.util.module_from_spec(spec)
spec.loader.exec_module(common)


def result(process, min_ess, warmup_seconds, sampling, draws_seconds=0.0, warmup=1000, draws=1000):
    split = {"imports": 1.0, "compile": 2.0, "warmup": warmup_seconds, "sampling": sampling, "draws": draws_seconds,
             "assembly": 0.5}
    return {"process_seconds": process, "min_ess": min_ess, "split": split, "warmup": warmup, "draws": draws}


def test_fixed_costs_are_not_scaled():
    """F + S × 400 / E: 10 s of which 4 s of sampling and 1 s of exact draws, ESS 200 → 5 + 5 × 2."""
    timed = result(10.0, 200.0, 1.5, 4.0, draws_seconds=1.0)
    assert common.seconds_to_ess(timed) == pytest.approx(15.0)
    assert common.ess_per_second(timed) == pytest.approx(20.0)
    # A run far past 400 still pays its fixed costs: ESS 4000 → 5 + 5 / 10.
    assert common.seconds_to_ess(result(10.0, 4000.0, 1.5, 4.0, draws_seconds=1.0)) == pytest.approx(5.5)


def test_untimed_warmup_is_shared_by_iterations():
    """Warmup not timed apart: the chains' 6 s split as 1000 warmup and 500 kept iterations → S = 2 s."""
    untimed = result(10.0, 800.0, None, 6.0, warmup=1000, draws=500)
    assert common.scaled_seconds(untimed) == (pytest.approx(2.0), True)
    assert common.seconds_to_ess(untimed) == pytest.approx(8.0 + 1.0)
    cells = dict(zip(common.STANDARD_HEADER, common.standard_cells(untimed)))
    assert cells["s to ESS 400"] == "~9.0" and cells["warmup s"] == "—"
    assert cells["other s"] == f"{10.0 - (1.0 + 2.0 + 6.0 + 0.5):.2f}"
