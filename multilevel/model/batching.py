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
    """``fn(inputs[i:i+batch], *args)`` over the leading axis, gathered into numpy arrays.

    ``inputs`` is a pytree of arrays sharing their leading axis; the last batch is
    padded by repeating the final element and trimmed afterwards. Each batch's
    output is copied into the result as it arrives (no list of parts to join).
    """
    total = jax.tree_util.tree_leaves(inputs)[0].shape[0]

    def one(start: int):
        index = np.minimum(np.arange(start, start + batch), total - 1)
        return start, jax.device_get(fn(jax.tree_util.tree_map(lambda a: a[index], inputs), *args))

    def put(out, start: int, part) -> None:
        stop = min(start + batch, total)
        jax.tree_util.tree_map(lambda o, a: o.__setitem__(slice(start, stop), np.asarray(a)[:stop - start]),
                               out, part)

    x64 = jax.config.jax_enable_x64
    out = None
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for start, part in pool.map(lambda start: _in_x64(x64, one, start), range(0, total, batch)):
            if out is None:
                out = jax.tree_util.tree_map(lambda a: np.empty((total,) + np.shape(a)[1:], np.asarray(a).dtype),
                                             part)
            put(out, start, part)
    return out


def _in_x64(x64: bool, fn: Callable, *args):
    """``fn(*args)`` in a worker thread, with the caller's ``jax_enable_x64``."""
    with jax.enable_x64(x64):
        return fn(*args)
