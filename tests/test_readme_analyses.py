"""The README's worked analyses, of the cheese data and of cbpp, run as written.

The python code of a section is executed on the real file (skipped when
``../shared/data`` is absent), in a temporary directory, with every fit shortened
to 2 chains of 200 draws after 200 warmup so that it runs in seconds; the checks
are on what the analysis leaves behind, each a property every correct run has.
The cbpp analysis fits by NUTS and refits once per herd, so it is in the slow tier.
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
CBPP = "## A worked analysis: from priors to answers (cbpp)"
SHORT = {"chains": 2, "draws": 200, "warmup": 200, "progress": False}


def section_code(heading: str, blocks: int | None = None) -> str:
    """The python blocks (the first ``blocks`` of them, or all) between ``heading`` (a
    second-level one) and the next second-level heading."""
    text = README.read_text()
    start = text.index(heading) + len(heading)
    end = re.compile(r"^## ", re.M).search(text, start)
    body = text[start:end.start() if end else len(text)]
    return "\n".join(re.findall(r"```python\n(.*?)```", body, re.S)[:blocks])


def run_section(code: str, data: str, tmp_path: Path, monkeypatch) -> dict:
    """Run ``code`` with the real ``data`` file, short fits, in ``tmp_path``; its namespace."""
    if not (SHARED_DATA / data).exists():
        pytest.skip(f"{SHARED_DATA / data} is absent: the section reads the real data")
    fit = ml.fit
    monkeypatch.setattr(ml, "fit", lambda *args, **options: fit(*args, **{**options, **SHORT}))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code.replace("../shared/data/", f"{SHARED_DATA}/"), str(README), "exec"), namespace)
    return namespace


def test_the_cheese_analysis_runs_from_priors_to_cross_validation(tmp_path, monkeypatch):
    code = section_code(SECTION)
    assert "ml.load(" in code and "prior_only=True" in code and ".kfold(" in code
    namespace = run_section(code, "cheese.csv", tmp_path, monkeypatch)
    loaded = namespace["fit"]
    assert (tmp_path / "cheese.nc").exists() and isinstance(loaded, ml.Fit)
    assert loaded.sampler_info["draws"] == SHORT["draws"]
    assert namespace["prior"].sampler_info["draws"] == SHORT["draws"]
    assert len(namespace["kfold"].kfold_i) == 160 and len(set(namespace["kfold"].folds)) == 10
    assert namespace["loo"]["elpd_loo"] < 0


@pytest.mark.slow
def test_the_cbpp_analysis_runs_from_priors_to_leaving_each_herd_out(tmp_path, monkeypatch):
    code = section_code(CBPP, blocks=1)
    assert "ml.load(" in code and "prior_only=True" in code and ".kfold(" in code
    namespace = run_section(code, "cbpp.csv", tmp_path, monkeypatch)
    assert (tmp_path / "cbpp.nc").exists() and namespace["fit"].sampler_info["draws"] == SHORT["draws"]
    assert namespace["prior"].sampler_info["independent_draws"]
