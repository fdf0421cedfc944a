"""Exact collapsed sampling of Gaussian models with one grouping factor or two nested ones.

NUTS explores only the variance parameters (σ, the group sds and correlations,
and the fixed effects when a non-Normal prior keeps them from being integrated
out) on the exact marginal posterior of :mod:`multilevel.model.marginal`, whose
cost per gradient depends on the number of levels, not rows. For every draw,
the fixed and group effects are then drawn exactly from their Gaussian
conditional. There is no funnel left: the group effects never enter NUTS.

Row weights (``weights()``) and known standard errors without sigma (``se()``) weight
the statistics by each row's precision (:mod:`multilevel.model.rownoise`); with
known standard errors there is no σ, and NUTS explores the group sds alone.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache, partial

import jax
import numpy as np

from ..compiler import COMPILER_OPTIONS, jit
from ..design.summary import summarise
from ..design.suffstats import SuffStats, design_statistics
from ..model import Model
from ..model.layout import SE_ADDED, SE_KNOWN, Layout
from ..model.batching import BATCH
from ..model.logdensity import Position, initial_position
from ..model.marginal import (CollapsedData, CollapsedStructure, draw_one_factor, finish_draw, fused_draws,
                              gaussian_fixed_priors, make_collapsed_logdensity, prepare_draw)
from ..model.prior_table import PriorSet
from .driver import run_chains
from .nuts import NutsConfig, Sites, nuts_kernel
from .sampler import Draws, Options, SamplerInfo, bounded_response_problem, predicted_parameters_problem


def collapsed_structure(layout: Layout, priors: PriorSet, order: tuple[str, ...]) -> CollapsedStructure:
    """The static structure for group factors in nesting ``order`` (outermost first)."""
    return CollapsedStructure(layout.terms(order), bool(layout.fixed) and gaussian_fixed_priors(priors.values()),
                              layout.se == SE_KNOWN, layout.penalties)


class CollapsedSampler:
    """Gaussian models with one grouping factor or a nested pair: variance parameters by
    NUTS on the exact marginal posterior, then exact draws of the effects."""

    name = "collapsed"

    def problem(self, model: Model) -> str | None:
        if not model.family.gaussian_marginal:
            return f"the {model.family.name} family has no closed-form marginal likelihood"
        if (varying := predicted_parameters_problem(model)) is not None:
            return varying
        if (bounded := bounded_response_problem(model)) is not None:
            return bounded
        factors = model.structure.names
        if len(factors) > 2:
            return f"more than two grouping factors ({', '.join(factors)}) are not collapsed yet"
        if model.structure.order is None:
            return f"the grouping factors {' and '.join(factors)} are crossed, not nested"
        if model.layout.se == SE_ADDED:
            return (f"{model.spec.se} makes each row's variance sigma² + se², not sigma² times a known "
                    "factor, so the effects do not integrate out in closed form")
        struct = collapsed_structure(model.layout, model.priors, model.structure.order)
        if struct.known_sd and not struct.terms and (struct.integrate_fixed or not model.layout.fixed):
            return (f"with {model.spec.se}, no sigma and no group terms every parameter is drawn exactly: "
                    "nothing is left for NUTS to explore")
        return None

    def suits(self, model: Model) -> str:
        order = model.structure.order
        if not model.has_rows:
            return f"{model.source}: sufficient statistics computed by Dask, effects integrated out exactly"
        if not order:
            where = "no group terms"
        elif len(order) == 1:
            where = f"one grouping factor ({order[0]})"
        else:
            where = f"nested grouping factors ({' within '.join(reversed(order))})"
        if model.spec.se is not None:
            where += f", known standard errors {model.spec.se} as each row's sd"
        if model.spec.weights is not None:
            where += f", {model.spec.weights} as row weights"
        if model.layout.smooths:
            where += (f", smooths whose penalised coefficients are Gaussian given "
                      f"{', '.join(name for name, _ in model.layout.smooths)}")
        return f"Gaussian with {where}: effects integrated out exactly"

    def run(self, model: Model, seed: int, options: Options) -> Draws:
        """Sample exactly from the sufficient statistics of the factors in nesting order
        (computed here from the rows, less any offset, or given by the model)."""
        order = model.structure.order
        if model.stats is not None:
            stats, summary = model.stats, model.summary
        else:
            design, noise = model.working_design(), model.row_noise()
            stats, summary = design_statistics(design, order, noise.precision), summarise(design)
            stats = stats._replace(n=np.asarray(noise.count))
        layout, priors = model.layout, model.priors
        struct = collapsed_structure(layout, priors, order)
        data = CollapsedData(jax.tree_util.tree_map(_float64_unless_index, stats),
                             jax.tree_util.tree_map(lambda v: jax.device_put(np.asarray(v, np.float64)),
                                                    priors.values()))
        logdensity = _scaled_logdensity(make_collapsed_logdensity(struct))
        rng = np.random.default_rng(seed)
        scales = position_scales(stats, struct, len(layout.aux))
        starts = []
        for _ in range(options.chains):
            full = initial_position(rng, summary, layout, priors, model.family)
            start = full._replace(b=None if struct.integrate_fixed else full.b, z=())
            starts.append(jax.tree_util.tree_map(lambda v, s: np.asarray(v) / s, start, scales))
        config = NutsConfig(options.warmup, options.target_accept, options.max_treedepth, ("b", "aux", "sd", "cor"))
        keys = np.random.default_rng([seed, 0])
        run = run_chains(nuts_kernel(logdensity, config, Sites.of(starts[0])), starts, (data, scales),
                         num_warmup=options.warmup, num_draws=options.draws, rng=keys, progress=options.progress,
                         compiler_options=COMPILER_OPTIONS)
        positions = jax.tree_util.tree_map(lambda v, s: v * s, run.positions, scales)
        started = time.perf_counter()
        b, aux, sds, chols, r, deviance = _exact_draws(keys, positions, data, struct)
        draws_seconds = time.perf_counter() - started
        details = {"fixed_effects": "integrated out" if struct.integrate_fixed else "sampled by NUTS",
                   "target_accept": options.target_accept, "max_treedepth": options.max_treedepth}
        return Draws(b, aux, tuple(sds), tuple(chols), tuple(r), {**run.stats, "deviance": deviance + model.deviance_shift},
                     SamplerInfo(run.compile_seconds, run.sampling_seconds, True, details, run.warmup_seconds,
                                 draws_seconds))


#: The collapsed sampler.
COLLAPSED = CollapsedSampler()


def position_scales(stats: SuffStats, struct: CollapsedStructure, num_aux: int | None = None) -> Position:
    """The rough posterior sd of each unconstrained parameter, from the amount of data.

    A log-scale parameter informed by n independent values has a posterior sd of about
    ``1/sqrt(2n)``: n rows for σ, the levels of its factor for a term's sds and
    correlations. NUTS runs on the position divided by these scales, so that every
    coordinate is of order one: the regularisation of the adapted mass matrix
    (towards ``1e-3 I``) would otherwise swamp the variance of σ with 10⁶ rows
    (about 5e-7) and force tiny steps. The fixed effects, when sampled, keep scale 1; so do
    the smooths' sds (the last of the ``num_aux`` entries of ``aux``), which a few
    coefficients inform.
    """
    level_scales = [1.0 / np.sqrt(2.0 * stats.levels[term.factor].c.shape[0]) for term in struct.terms]
    aux_scale = 1.0 / np.sqrt(2.0 * float(stats.n))
    if struct.penalties:
        aux_scale = np.where(np.arange(num_aux) < num_aux - len(struct.penalties), aux_scale, 1.0)
    return Position(None if struct.integrate_fixed else 1.0, aux_scale,
                    tuple(level_scales), tuple(s if term.has_cor else None for s, term in zip(level_scales, struct.terms)))


@lru_cache(maxsize=None)
def _scaled_logdensity(logdensity):
    """``f(u, (data, scales)) = logdensity(u * scales, data)``: the density on the scaled position."""

    def scaled(position: Position, data_scales) -> jax.Array:
        data, scales = data_scales
        return logdensity(jax.tree_util.tree_map(lambda v, s: v * s, position, scales), data)

    return scaled


def _float64_unless_index(a: np.ndarray) -> jax.Array:
    """Integer arrays as they are, the rest as float64, converted by numpy and put on the
    device as they are (``jax.numpy.asarray`` outside jit would compile a program for each)."""
    a = np.asarray(a)
    return jax.device_put(a if np.issubdtype(a.dtype, np.integer) else a.astype(np.float64, copy=False))


@partial(jit, static_argnums=2)
def _prepare_batch(positions: dict, data: CollapsedData, struct: CollapsedStructure):
    return jax.vmap(lambda position: prepare_draw(position, data, struct))(positions)


@partial(jit, static_argnums=4)
def _finish_batch(noise, positions: Position, prepared, data: CollapsedData, struct: CollapsedStructure):
    b, aux, sds, chols, r, deviance = jax.vmap(
        lambda eps, position, prep: finish_draw(eps, prep, position, data, struct))(noise, positions, prepared)
    return b, aux, sds, chols, [tuple(e[..., j] for j in range(e.shape[-1])) for e in r], deviance


#: Level-draws (levels × draws) per vectorised step of the one-factor draws: their
#: intermediates then stay in cache instead of streaming through memory.
LEVEL_DRAWS_PER_STEP = 160_000
#: Effect values (draws × levels × columns) per batch of exact draws, at most: what each
#: thread holds besides the output (normals, their copy for XLA, the batch's draws).
VALUES_PER_BATCH = 1_000_000


def _draws_per_step(stats: SuffStats) -> int:
    return max(1, min(BATCH, LEVEL_DRAWS_PER_STEP // max(1, sum(lv.c.shape[0] for lv in stats.levels))))


def draws_per_batch(stats: SuffStats) -> int:
    """Draws per batch of exact draws: a multiple of the fused steps, at most ``BATCH`` draws
    and about ``VALUES_PER_BATCH`` effect values."""
    step = _draws_per_step(stats)
    values = max(1, sum(lv.c.shape[0] * lv.c.shape[1] for lv in stats.levels))
    return step * max(1, min(BATCH // step, VALUES_PER_BATCH // (values * step)))


@partial(jit, static_argnums=3)
def _fused_batch(noise, positions: Position, data: CollapsedData, struct: CollapsedStructure):
    draw = lambda eps, position: draw_one_factor(eps, position, data, struct)  # noqa: E731
    step = _draws_per_step(data.stats)
    if step >= positions.aux.shape[0]:
        b, aux, sds, chols, r, deviance = jax.vmap(draw)(noise, positions)
    else:
        b, aux, sds, chols, r, deviance = jax.lax.map(lambda args: draw(*args), (noise, positions), batch_size=step)
    columns, start = [], 0
    for term in struct.terms:
        columns.append(tuple(r[start:start + term.q]))
        start += term.q
    return b, aux, sds, chols, columns, deviance


def _draw_batch(noise, positions: Position, data: CollapsedData, struct: CollapsedStructure, shapes: bool = False):
    """Exact draws for a batch of positions: per group term, its columns, each (batch, levels).
    One factor: one program (:func:`~multilevel.model.marginal.draw_one_factor`). Otherwise two:
    compiled as one, XLA fused the level sums into the draws and ran 2.3 times slower.
    ``shapes``: only the shapes and dtypes of the result, without running anything."""
    call = (lambda f: f.eval_shape) if shapes else (lambda f: f)  # noqa: E731
    if fused_draws(data.stats):
        return call(_fused_batch)(noise, positions, data, struct)
    return call(_finish_batch)(noise, positions, call(_prepare_batch)(positions, data, struct), data, struct)


def _batch_noise(generator: np.random.Generator, stats: SuffStats, batch: int) -> tuple:
    """The standard normals of :func:`~multilevel.model.marginal.conditional_noise` for ``batch``
    draws, from a numpy generator (several times faster than JAX's threefry on CPU): ``(batch,
    p)`` for b and ``(batch, levels, Q)`` per factor, each a contiguous array that XLA reads
    in place."""
    return (generator.standard_normal((batch, stats.Xty.shape[0])),
            [generator.standard_normal((batch,) + lv.c.shape) for lv in stats.levels])


def _exact_draws(rng: np.random.Generator, positions: Position, data: CollapsedData, struct: CollapsedStructure):
    """Exact (b, r) draws and their deviances for every position, shaped ``(chain, draw, ...)``.

    Batches of :func:`draws_per_batch` draws run in a thread pool; each takes its normals from its own
    generator, seeded from ``rng`` in batch order (so the draws do not depend on the number
    of threads), and writes its draws into the output arrays, allocated once.
    """
    num_chains, num_draws = positions.aux.shape[:2]
    total = num_chains * num_draws
    flat = jax.tree_util.tree_map(lambda v: v.reshape((total,) + v.shape[2:]), positions)
    batch = draws_per_batch(data.stats)
    starts = range(0, total, batch)
    seeds = rng.integers(0, 2 ** 63, size=len(starts))
    batch_positions = lambda start: jax.tree_util.tree_map(  # noqa: E731
        lambda a: a[np.minimum(np.arange(start, start + batch), total - 1)], flat)
    noise_shapes = (jax.ShapeDtypeStruct((batch, data.stats.Xty.shape[0]), np.float64),
                    [jax.ShapeDtypeStruct((batch,) + lv.c.shape, np.float64) for lv in data.stats.levels])
    b, aux, sds, chols, columns, deviance = _draw_batch(noise_shapes, batch_positions(0), data, struct, shapes=True)
    small = jax.tree_util.tree_map(lambda a: np.empty((total,) + a.shape[1:], a.dtype), (b, aux, sds, chols, deviance))
    effects = [np.empty((total,) + c[0].shape[1:] + (len(c),), c[0].dtype) for c in columns]

    def one(index: int) -> None:
        start = starts[index]
        stop = min(start + batch, total)
        noise = _batch_noise(np.random.Generator(np.random.SFC64(seeds[index])), data.stats, batch)
        b, aux, sds, chols, columns, deviance = jax.device_get(_draw_batch(noise, batch_positions(start), data, struct))
        jax.tree_util.tree_map(lambda o, a: o.__setitem__(slice(start, stop), a[:stop - start]), small,
                               (b, aux, sds, chols, deviance))
        for out, term_columns in zip(effects, columns):
            for j, column in enumerate(term_columns):
                out[start:stop, :, j] = column[:stop - start]

    x64 = jax.config.jax_enable_x64
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(lambda index: _in_x64(x64, one, index), range(len(starts))))
    shape = lambda a: None if a is None else a.reshape((num_chains, num_draws) + a.shape[1:])  # noqa: E731
    b, aux, sds, chols, deviance = small
    return (shape(b), shape(aux), [shape(a) for a in sds], [shape(a) for a in chols], [shape(e) for e in effects],
            shape(deviance))


def _in_x64(x64: bool, fn, *args):
    """``fn(*args)`` with the caller's ``jax_enable_x64`` (worker threads do not inherit it)."""
    with jax.enable_x64(x64):
        return fn(*args)
