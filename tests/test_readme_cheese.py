"""The README's worked analysis of the cheese data runs as written.

The python block of the section is executed on the real file (skipped when
``../shared/data`` is absent), in a temporary directory, with every fit shortened
to 2 chains of 200 draws after 200 warmup so that it runs in seconds; the checks
are on what the analysis leaves behind, each a property every correct run has.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

import multilevel as ml
from conftest import SHARED_DATA

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## A worked analysis on the cheese data: from priors to answers"
SHORT = {"chains": 2, "draws": 200, "warmup": 200, "progress": False}


def section_code(heading: str) -> str:
    """The python blocks between ``heading`` (a second-level one) and the next second-level heading."""
    text = README.read_text()
    start = text.index(heading) + len(heading)
    end = re.compile(r"^## ", re.M).search(text, start)
    body = text[start:end.start() if end else len(text)]
    return "\n".join(re.findall(r"```python\n(.*?)```", body, re.S))


def test_the_cheese_analysis_runs_from_priors_to_cross_validation(tmp_path, monkeypatch):
    if not (SHARED_DATA / "cheese.csv").exists():
        pytest.skip(f"{SHARED_DATA / 'cheese.csv'} is absent: the section reads the real data")
    code = section_code(SECTION).replace("../shared/data/", f"{SHARED_DATA}/")
    assert "ml.load(" in code and "prior_only=True" in code and ".kfold(" in code
    fit = ml.fit
    monkeypatch.setattr(ml, "fit", lambda *args, **options: fit(*args, **{**options, **SHORT}))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, str(README), "exec"), namespace)
    loaded = namespace["fit"]
    assert (tmp_path / "cheese.nc").exists() and isinstance(loaded, ml.Fit)
    assert loaded.sampler_info["draws"] == SHORT["draws"]
    assert namespace["prior"].sampler_info["draws"] == SHORT["draws"]
    assert len(namespace["kfold"].kfold_i) == 160 and len(set(namespace["kfold"].folds)) == 10
    assert namespace["loo"]["elpd_loo"] < 0
