"""The persistent compilation cache: where it is, how it is turned off, that a user's
own JAX setting wins, and that two processes can share one directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from multilevel.compilation_cache import CACHE_ENV, cache_directory, enable_compilation_cache


@pytest.fixture
def jax_cache_settings():
    """Restore JAX's cache settings after the test (before any compilation reads them)."""
    saved = (jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs,
             jax.config.jax_enable_compilation_cache)
    jax.config.update("jax_compilation_cache_dir", None)
    yield
    jax.config.update("jax_compilation_cache_dir", saved[0])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", saved[1])
    jax.config.update("jax_enable_compilation_cache", saved[2])


def test_default_location_and_the_empty_variable_turns_it_off(monkeypatch, jax_cache_settings):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert cache_directory() == str(Path.home() / ".cache" / "multilevel" / "jax")
    monkeypatch.setenv(CACHE_ENV, "")
    assert enable_compilation_cache() is None
    assert jax.config.jax_compilation_cache_dir is None


def test_enabled_once_at_the_named_directory(monkeypatch, tmp_path, jax_cache_settings):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert enable_compilation_cache() == str(tmp_path)
    assert jax.config.jax_compilation_cache_dir == str(tmp_path)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "other"))
    assert enable_compilation_cache() == str(tmp_path)       # set already: unchanged


def test_a_users_jax_settings_win(monkeypatch, tmp_path, jax_cache_settings):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "ours"))
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "theirs"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 7.0)
    assert enable_compilation_cache() == str(tmp_path / "theirs")
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 7.0
    jax.config.update("jax_compilation_cache_dir", None)
    jax.config.update("jax_enable_compilation_cache", False)
    assert enable_compilation_cache() is None
    assert jax.config.jax_compilation_cache_dir is None


SCRIPT = """
import multilevel as ml
data = ml.datasets.simulate_growth(0).iloc[:400]
fit = ml.fit("log(dnow) ~ diam + (1 | tree)", data, chains=2, draws=100, warmup=100, progress=False, seed=3)
print(repr(float(fit.summary(group_effects=False)["mean"].sum())))
"""


@pytest.mark.slow
def test_two_processes_share_one_cache(tmp_path):
    """Two fits at once on an empty cache, then one on the cache they filled: the same
    draws each time, and entries written."""
    env = {**os.environ, CACHE_ENV: str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}

    def start():
        return subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    runs = [start(), start()]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err for _, err in outputs]
    assert any((tmp_path / "cache").iterdir())
    warm = start()
    out, err = warm.communicate(timeout=600)
    assert warm.returncode == 0, err
    assert outputs[0][0] == outputs[1][0] == out
