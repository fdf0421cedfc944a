"""The collapsed sampler's fused exact draws for one grouping factor.

* :func:`~multilevel.model.marginal.draw_one_factor` (two fused passes over the
  levels) gives the draw of the general :func:`~multilevel.model.marginal.draw_effects`
  from the same normals, to rounding (1e-10 relative), with b integrated out or
  given, for one term and for several terms on one factor.
* ``_exact_draws`` gives the same draws whatever the number of threads, and each
  is the general path's draw from its batch's normals.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from multilevel.design.suffstats import sufficient_statistics
from multilevel.inference import collapsed
from multilevel.model import HalfNormal, LKJ, Normal
from multilevel.model.layout import Term
from multilevel.model.logdensity import Position
from multilevel.model.marginal import CollapsedData, CollapsedStructure, draw_effects, draw_one_factor
from multilevel.model.prior_table import PriorValues

TERMS = {"q=1": (Term(1, False),), "q=2 correlated": (Term(2, True),),
         "(1 + x | g) + (0 + z | g)": (Term(2, True), Term(1, False))}


def one_factor(terms: tuple[Term, ...], seed: int = 0, levels: int = 7, p: int = 2):
    """Sufficient statistics and priors of a small one-factor model with the group ``terms``."""
    rng = np.random.default_rng(seed)
    q = sum(t.q for t in terms)
    refs = np.repeat(np.arange(levels), rng.integers(1, 6, levels))
    n = refs.size
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    z = np.column_stack([np.ones(n), rng.normal(size=(n, q - 1))])
    y = rng.normal(size=n) * 2 + 1
    stats = sufficient_statistics(X, y, [(refs, z, levels)])
    priors = PriorValues(tuple(Normal(0.0, 3.0) for _ in range(p)), (HalfNormal(1.0),),
                         tuple(tuple(HalfNormal(1.0) for _ in range(t.q)) for t in terms),
                         tuple(LKJ(1.0) if t.has_cor else None for t in terms))
    return CollapsedData(jax.tree_util.tree_map(jnp.asarray, stats),
                         jax.tree_util.tree_map(lambda v: jnp.asarray(v, jnp.float64), priors))


def positions(terms: tuple[Term, ...], num: int, p: int | None, seed: int = 1) -> Position:
    """``num`` random positions (b included when ``p`` is given)."""
    rng = np.random.default_rng(seed)
    return Position(None if p is None else rng.normal(size=(num, p)), rng.normal(0, 0.5, (num, 1)),
                    tuple(rng.normal(0, 0.5, (num, t.q)) for t in terms),
                    tuple(rng.normal(0, 0.5, (num, t.q * (t.q - 1) // 2)) if t.has_cor else None for t in terms))


@pytest.mark.parametrize("integrate_fixed", [True, False], ids=["b integrated", "b given"])
@pytest.mark.parametrize("name", list(TERMS))
def test_fused_draw_equals_the_general_draw(name, integrate_fixed):
    terms = TERMS[name]
    with jax.enable_x64(True):
        data = one_factor(terms)
        struct = CollapsedStructure(terms, integrate_fixed)
        pos = positions(terms, 5, None if integrate_fixed else 2)
        noise = collapsed._batch_noise(np.random.default_rng(2), data.stats, 5)
        general = jax.jit(jax.vmap(lambda eps, x: draw_effects(eps, x, data, struct)))(noise, pos)
        fused = jax.jit(jax.vmap(lambda eps, x: draw_one_factor(eps, x, data, struct)))(noise, pos)
    b, aux, sds, chols, r, deviance = general
    np.testing.assert_allclose(fused[0], b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fused[5], deviance, rtol=1e-10)
    np.testing.assert_allclose(np.stack(fused[4], axis=-1), np.concatenate(r, axis=-1), rtol=1e-10, atol=1e-12)
    for got, want in zip(jax.tree_util.tree_leaves(fused[1:4]), jax.tree_util.tree_leaves((aux, sds, chols))):
        np.testing.assert_array_equal(got, want)


def test_exact_draws_do_not_depend_on_the_number_of_threads(monkeypatch):
    terms = TERMS["(1 + x | g) + (0 + z | g)"]
    with jax.enable_x64(True):
        data = one_factor(terms)
        batch = collapsed.draws_per_batch(data.stats)
        num_chains, num_draws = 2, batch // 2 + 3   # two batches, the second one padded
        struct = CollapsedStructure(terms, True)
        pos = jax.tree_util.tree_map(lambda a: a.reshape((num_chains, num_draws) + a.shape[1:]),
                                     positions(terms, num_chains * num_draws, None))
        runs = []
        for threads in (1, 3):
            monkeypatch.setattr(collapsed.os, "cpu_count", lambda: threads)
            runs.append(collapsed._exact_draws(np.random.default_rng(5), pos, data, struct))
        seed = np.random.default_rng(5).integers(0, 2 ** 63, size=2)[1]
        noise = collapsed._batch_noise(np.random.Generator(np.random.SFC64(seed)), data.stats, batch)
        last = num_chains * num_draws - 1   # the last draw of the last chain: in the second batch
        general = jax.jit(lambda eps, x: draw_effects(eps, x, data, struct))(
            jax.tree_util.tree_map(lambda a: a[last - batch], noise),
            jax.tree_util.tree_map(lambda a: a.reshape((-1,) + a.shape[2:])[last], pos))
    for one, three in zip(jax.tree_util.tree_leaves(runs[0]), jax.tree_util.tree_leaves(runs[1])):
        np.testing.assert_array_equal(one, three)
    b, _, _, _, effects, _ = runs[0]
    last = (-1, -1)
    np.testing.assert_allclose(b[last], general[0], rtol=1e-10)
    np.testing.assert_allclose(np.concatenate([e[last] for e in effects], axis=-1),
                               np.concatenate(general[4], axis=-1), rtol=1e-10, atol=1e-12)
