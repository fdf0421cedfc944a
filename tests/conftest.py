"""Shared fixtures: the real data sets of ../shared/data (skipped when absent).

Fits keep compiled programs in a persistent cache; tests that fit in-process
would turn that cache on for the whole session, and share it with any other test
run on the machine. Tests run without it (an empty ``MULTILEVEL_CACHE_DIR``).

Every compiled XLA program keeps memory mappings of its machine code; the whole
suite compiles enough of them to pass Linux's limit of 65,530 mappings per process
(``vm.max_map_count``), and the next compilation crashes. Each module's compiled
programs are released when the module is done.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import pandas as pd
import pytest

os.environ["MULTILEVEL_CACHE_DIR"] = ""



@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop the module's compiled programs after it (see the module notes)."""
    yield
    jax.clear_caches()


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
