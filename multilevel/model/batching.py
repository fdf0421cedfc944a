"""Map a jitted function over many draws in fixed-size batches.

A jitted function compiles once per input shape. Mapping it over all draws at
once would compile again for every new number of draws; mapping it over padded
batches of one fixed size compiles it once per model structure.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import jax
import numpy as np

#: Draws per batch.
BATCH = 256


def map_batches(fn: Callable, inputs, *args, batch: int = BATCH):
    """``fn(inputs[i:i+batch], *args)`` over the leading axis, concatenated as numpy arrays.

    ``inputs`` is a pytree of arrays sharing their leading axis; the last batch is
    padded by repeating the final element and trimmed afterwards.
    """
    total = jax.tree_util.tree_leaves(inputs)[0].shape[0]
    def one(start: int):
        index = np.minimum(np.arange(start, start + batch), total - 1)
        out = jax.device_get(fn(jax.tree_util.tree_map(lambda a: a[index], inputs), *args))
        return jax.tree_util.tree_map(lambda a: np.asarray(a)[:min(batch, total - start)], out)

    x64 = jax.config.jax_enable_x64
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        parts = list(pool.map(lambda start: in_x64(x64, one, start), range(0, total, batch)))
    return jax.tree_util.tree_map(lambda *p: np.concatenate(p), *parts)


def in_x64(x64: bool, fn: Callable, *args):
    """``fn(*args)`` in a worker thread, with the caller's ``jax_enable_x64``."""
    with jax.enable_x64(x64):
        return fn(*args)
