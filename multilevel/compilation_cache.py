"""JAX's persistent compilation cache, on by default for every fit.

A fit compiles a handful of XLA programs (the sampler's chunk, its initialisation,
the exact draws, the log-likelihood); compiling them is most of a short fit's
wall time. With the cache, a later process fitting a model of the same structure
(the same formula shape, family, priors' kinds and data sizes) reads the compiled
programs from disk instead.

The cache lives in ``$MULTILEVEL_CACHE_DIR``, by default ``~/.cache/multilevel/jax``;
setting ``MULTILEVEL_CACHE_DIR`` to the empty string turns it off. It is switched on
at the first fit of a process (never at import), and only when the user has not
configured JAX's cache: a ``jax_compilation_cache_dir`` of their own, or
``jax_enable_compilation_cache`` set to False, is left as it is.

Sharing one directory between processes is safe: JAX names an entry by a hash of
the program, the compiler options and the JAX and XLA versions, so processes that
write the same entry write the same program; it writes an entry compressed (zlib, with
a checksum, or zstd), so a process that reads an entry another is still writing
fails to decompress it, which JAX reports as a warning and answers by compiling the
program itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

#: The environment variable naming the cache directory ("" turns the cache off).
CACHE_ENV = "MULTILEVEL_CACHE_DIR"

#: Programs that compile faster than this (seconds) are not written to the cache: none, since
#: reading a small entry is faster than compiling even the smallest program.
MIN_COMPILE_SECONDS = 0.0


def cache_directory() -> str | None:
    """The directory of the persistent compilation cache, or None when it is turned off."""
    path = os.environ.get(CACHE_ENV, str(Path.home() / ".cache" / "multilevel" / "jax"))
    return path or None


def enable_compilation_cache() -> str | None:
    """Point JAX's persistent compilation cache at :func:`cache_directory`, unless the user
    configured JAX's cache or turned ours off; returns the directory in use (None: none).

    Idempotent: a second call finds the directory set and changes nothing.
    """
    if not jax.config.jax_enable_compilation_cache:
        return None
    current = jax.config.jax_compilation_cache_dir
    if current:
        return current
    path = cache_directory()
    if path is None:
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return path
