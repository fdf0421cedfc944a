"""Shared fixtures: the real data sets of ../shared/data (skipped when absent).

The CLI keeps compiled programs in a persistent cache; tests that call it in-process
would turn that cache on for the whole session, and share it with any other test
run on the machine. Tests run without it (an empty ``MULTILEVEL_CACHE_DIR``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

os.environ["MULTILEVEL_CACHE_DIR"] = ""

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def read_shared(name: str) -> pd.DataFrame:
    """A CSV from ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the real data set beside the repository")
    return pd.read_csv(path)


@pytest.fixture(scope="session")
def cheese() -> pd.DataFrame:
    """The cheese ratings with indicator columns cheese_A ... cheese_D."""
    data = read_shared("cheese.csv")
    return data.assign(**{f"cheese_{c}": (data["cheese"] == c).astype(float) for c in "ABCD"})


@pytest.fixture(scope="session")
def sleepstudy() -> pd.DataFrame:
    return read_shared("sleepstudy.csv")
