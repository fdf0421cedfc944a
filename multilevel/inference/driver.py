"""Run chains of any pure kernel: compiled chunks, parallel threads, progress bars.

Each chain is a sequence of ``num_warmup + num_draws`` kernel steps run as
``lax.scan`` chunks of a fixed length, so one compiled program serves every
chunk and every chain. Chains run in a thread pool as wide as the CPU: XLA
releases the GIL while it runs, so chains use the cores in parallel. Steps
past the last draw of the final chunk are run and discarded.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, NamedTuple

import jax
import numpy as np
from tqdm.auto import tqdm



class Kernel(NamedTuple):
    """Pure sampler functions: ``init(key, position, data) -> state`` and
    ``step(key, state, data) -> (state, info)``, ``info`` holding the position
    and the per-iteration statistics recorded in ``sample_stats``.
    """

    init: Callable
    step: Callable


@dataclass(frozen=True)
class ChainRun:
    """Draws and statistics of all chains, stacked as ``(chain, draw, ...)``."""

    positions: Any  # the kernel's positions (a pytree), each leaf (chain, draw, ...)
    stats: dict[str, np.ndarray]
    compile_seconds: float  # compiling and initialising, plus chain 1's first chunk
    sampling_seconds: float  # wall time of all warmup and sampling steps, chains in parallel
    states: list | None = None  # each chain's last kernel state, to continue it
    warmup_seconds: float = 0.0  # of sampling_seconds, until the last chain ended its warmup chunks


@lru_cache(maxsize=64)
def _compiled(kernel: Kernel, compiler_options: tuple):
    """Jitted ``init`` and chunk runner of a kernel, shared by every fit that uses it."""

    def run(state, keys, data):
        def body(state, key):
            return kernel.step(key, state, data)

        return jax.lax.scan(body, state, keys)

    options = dict(compiler_options) or None
    return jax.jit(kernel.init, compiler_options=options), jax.jit(run, compiler_options=options)


def random_keys(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Raw threefry keys (uint32 pairs) of any ``shape``, drawn by numpy: ``jax.random.split``
    would compile a program for every new shape."""
    return rng.integers(0, 2 ** 32, size=shape + (2,), dtype=np.uint32)


def run_chains(kernel: Kernel, positions: list, data: Any, *, num_warmup: int,
               num_draws: int, rng: np.random.Generator, progress: bool = True,
               chunk_size: int = 100, max_workers: int | None = None,
               compiler_options: tuple[tuple[str, object], ...] = (),
               states: list | None = None, chains_per_state: int | None = None) -> ChainRun:
    """Run one chain per initial position; keep the ``num_draws`` post-warmup draws.

    ``rng``: the source of the chains' random keys. Every chain gets its own keys,
    drawn in chain order, so a chain's draws never depend on how chains are
    scheduled. ``chains_per_state``: for kernels that advance several chains in
    one state (stacked on a leading axis), how many; their ``step`` then takes one
    key per chain, shaped ``(chains_per_state, 2)``. None: one chain per state.

    ``states``: kernel states to continue (from an earlier run's ``states``, with the same
    ``chunk_size``) instead of initialising at ``positions`` (then ignored but for their number).

    ``compiler_options``: XLA options of the compiled programs, as (name, value) pairs.

    Must be called inside ``jax.enable_x64(True)`` if the data are float64;
    worker threads enter the same context.
    """
    num_chains = len(positions)
    total = num_warmup + num_draws
    chunk = max(1, min(chunk_size, total))
    num_chunks = -(-total // chunk)
    per = chains_per_state or 1
    init_keys = random_keys(rng, (num_chains * per,))[::per]
    step_keys = random_keys(rng, (num_chains * per, num_chunks, chunk))
    if chains_per_state is not None:   # (state, chain in state, chunk, step, 2) -> (state, chunk, step, chain, 2)
        step_keys = np.moveaxis(step_keys.reshape((num_chains, per) + step_keys.shape[1:]), 1, 3)
    x64 = jax.config.jax_enable_x64

    # Compile (or find in the cache) in this thread, so that worker threads never race to;
    # continued states come from a run of the same program, compiled already.
    started = time.perf_counter()
    init, run = _compiled(kernel, compiler_options)
    first_chunk = None
    if states is None:
        states = [init(init_keys[c], positions[c], data) for c in range(num_chains)]
        first_chunk = run(states[0], step_keys[0, 0], data)
        jax.block_until_ready(first_chunk)
    compile_seconds = time.perf_counter() - started

    bars = [tqdm(total=total, desc=f"chain {c + 1} warmup", position=c, leave=False,
                 disable=not progress, dynamic_ncols=True) for c in range(num_chains)]

    def one_chain(c: int):
        with jax.enable_x64(x64):
            state, kept, warmed = states[c], [], time.perf_counter()
            for k in range(num_chunks):
                if c == 0 and k == 0 and first_chunk is not None:
                    state, info = first_chunk
                else:
                    state, info = run(state, step_keys[c, k], data)
                info = jax.device_get(info)
                start = k * chunk
                lo, hi = max(num_warmup - start, 0), min(total - start, chunk)
                if lo < hi:
                    kept.append(jax.tree_util.tree_map(lambda a: a[lo:hi], info))
                bars[c].update(min(chunk, total - start))
                if start < num_warmup <= start + chunk:
                    warmed = time.perf_counter()
                if start + chunk >= num_warmup:
                    bars[c].set_description(f"chain {c + 1} sampling")
            return state, jax.tree_util.tree_map(lambda *a: np.concatenate(a), *kept), warmed

    started = time.perf_counter()
    workers = max_workers or min(num_chains, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        finished = list(pool.map(one_chain, range(num_chains)))
    final_states, chains = [f[0] for f in finished], [f[1] for f in finished]
    sampling_seconds = time.perf_counter() - started
    warmup_seconds = max(f[2] for f in finished) - started if num_warmup else 0.0
    for bar in bars:
        bar.close()

    stacked = jax.tree_util.tree_map(lambda *a: np.stack(a), *chains)
    positions_out = stacked.pop("position")
    return ChainRun(positions_out, stacked, compile_seconds, sampling_seconds, final_states, warmup_seconds)
