r"""The Gaussian marginal likelihood from per-level sufficient statistics.

Model: ``y = X b + Z r + e`` with ``e ~ N(0, σ² I)``; group effects on one
grouping factor, or on an inner factor nested in an outer one. For a factor,
``r_l ~ N(0, Σ)`` with ``Σ = T Tᵀ`` (T block-diagonal over its terms, each block
``diag(sd) L``). The effects integrate out level by level (Woodbury), innermost
factor first. For one level with data precision ``E``, linear term ``f`` and
cross term ``F`` to the coefficients β that remain (b, and the parent level's
effects for an inner factor), with ``B = I + Tᵀ E T = R Rᵀ``,
``w = R⁻¹ Tᵀ f`` and ``W = R⁻¹ Tᵀ F``:

.. math::
   \log|V| \mathrel{+}= \log|B|, \qquad
   Q(β) \mathrel{-}= \|w - W β\|^2 .

For a single factor ``E = G/σ², f = c/σ², F = D/σ²``; starting from
``Q(b) = (yᵀy - 2bᵀXᵀy + bᵀXᵀXb)/σ²`` this leaves ``Q(b) = bᵀAb - 2bᵀg + k`` and
``log|V| = n log σ² + Σ log|B_l|``. An inner level has ``F = [D, H]/σ²`` (H the
cross-products with its parent's columns), and its terms in the parent's
effects are subtracted from the parent level's ``E, f, F`` before the parent is
integrated. ``B ≥ I`` keeps this stable as the sds go to zero. With Normal priors
``b ~ N(m₀, diag(v₀))`` the fixed effects integrate out too: ``P = A + diag(1/v₀)``,
``h = g + m₀/v₀`` and

.. math::
   \log p(y | σ, Σ) = -\tfrac12 [n \log 2π + \log|V| + \sum \log v₀
       + \log|P| + k + \sum m₀²/v₀ - hᵀ P^{-1} h].

Row weights and known standard errors (``weights()``, ``se()``) change only the
sums: the statistics are weighted by each row's precision and ``n`` is the sum of
the weights (:mod:`multilevel.model.rownoise`); with known standard errors and no
sigma, ``σ ≡ 1`` (:attr:`CollapsedStructure.known_sd`) and the densities below
leave out the constant ``-½ Σ w_i log s_i²`` (the deviance adds it back:
:attr:`~multilevel.model.record.Model.deviance_shift`).

Given (σ, Σ): ``b ~ N(P⁻¹h, P⁻¹)``, then, outermost factor first, each level's
``r = T u`` with ``u ~ N(B⁻¹ Tᵀ (f - F β), B⁻¹)``, exactly; :func:`draw_effects`, which also gives the
deviance from the same sums (:func:`residual_sum_of_squares`).
With one factor, :mod:`multilevel.model.onefactor` computes the same sums in a
few fused passes, with a hand-written gradient.
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..design.suffstats import SuffStats
from . import linalg, onefactor
from .layout import Term
from .logdensity import Position, constrain_scales
from .penalties import Penalty, fixed_log_prior, penalised_effects, prior_moments
from .prior_table import PriorValues
from .priors import Normal


class CollapsedData(NamedTuple):
    """What the collapsed log density reads: statistics and priors."""

    stats: SuffStats
    priors: PriorValues


class CollapsedStructure(NamedTuple):
    """Static shape: the group terms (their factors indexed in nesting order, outermost
    first), whether b is integrated out, and whether the rows' sds are known (``se()``
    without sigma: the statistics carry the precisions, σ ≡ 1 and the position has no
    ``aux``)."""

    terms: tuple[Term, ...]
    integrate_fixed: bool
    known_sd: bool = False
    #: The smooths' penalised blocks (:mod:`multilevel.model.penalties`).
    penalties: tuple[Penalty, ...] = ()


def residual_scale(aux: jax.Array, struct: CollapsedStructure) -> jax.Array:
    """σ from the constrained ``aux``: its first entry, or 1 when the rows' sds are known."""
    return jnp.ones(()) if struct.known_sd else aux[0]


def gaussian_fixed_priors(priors: PriorValues) -> bool:
    """Whether every fixed effect has a Normal prior (so b can be integrated out)."""
    return all(isinstance(p, Normal) for p in priors.fixed)


def factor_scales(sds, chols, terms: tuple[Term, ...]) -> list[jax.Array]:
    """``T`` per factor, with ``Σ = T Tᵀ``: block-diagonal over the factor's terms, each
    block ``diag(sd) L``."""
    blocks = [sd[:, None] * chol if chol is not None else jnp.diag(sd) for sd, chol in zip(sds, chols)]
    num_factors = max((t.factor for t in terms), default=-1) + 1
    return [jax.scipy.linalg.block_diag(*[b for b, t in zip(blocks, terms) if t.factor == k])
            for k in range(num_factors)]


class _Level(NamedTuple):
    """One factor after integration: Cholesky factors of B and the effective f, F (b part)."""

    R: jax.Array  # (levels, q, q)
    f: jax.Array  # (levels, q)
    F: jax.Array  # (levels, q, p)


class _Reduced(NamedTuple):
    """The quadratic form in b left after integrating out every group effect."""

    log_det_v: jax.Array
    A: jax.Array
    g: jax.Array
    k: jax.Array
    levels: tuple  # a _Level per factor; for one factor with q <= UNROLL_MAX, its OneFactor sums


def _t_products(T: jax.Array, E: jax.Array, f: jax.Array, F: jax.Array):
    """``Tᵀ E_l T``, ``Tᵀ f_l`` and ``Tᵀ F_l`` for every level, each as one plain matrix
    product on reshaped arrays (batched tiny matmuls are slow on CPU)."""
    L, q, m = F.shape
    TET = (E.reshape(L, q * q) @ jnp.kron(T, T)).reshape(L, q, q)
    TF = jnp.swapaxes((jnp.swapaxes(F, 1, 2).reshape(L * m, q) @ T).reshape(L, m, q), 1, 2)
    return TET, f @ T, TF


def _cross(a: jax.Array, b: jax.Array) -> jax.Array:
    """``aᵀ b`` per level for (levels, q, m) arrays, by broadcasting (no batched matmul)."""
    return jnp.sum(a[:, :, :, None] * b[:, :, None, :], axis=1)


def _segment(values: jax.Array, parent: jax.Array, num_parents: int) -> jax.Array:
    return jax.ops.segment_sum(values, parent, num_segments=num_parents)


def _reduce(stats: SuffStats, sigma: jax.Array, Ts: list[jax.Array]) -> _Reduced:
    if len(stats.levels) == 1 and Ts[0].shape[0] <= linalg.UNROLL_MAX:
        return _reduce_one(stats, sigma, Ts[0])
    s2 = sigma * sigma
    p = stats.Xty.shape[0]
    A, g, k = stats.XtX / s2, stats.Xty / s2, stats.yty / s2
    log_det_v = stats.n * jnp.log(s2)
    carry = None
    levels = [None] * len(stats.levels)
    for depth in reversed(range(len(stats.levels))):
        lv, T = stats.levels[depth], Ts[depth]
        E, f, F = lv.G / s2, lv.c / s2, lv.D / s2
        if carry is not None:
            E, f, F = E - carry[0], f - carry[1], F - carry[2]
        F_all = F if lv.H is None else jnp.concatenate([F, lv.H / s2], axis=2)
        TET, Tf, TF = _t_products(T, E, f, F_all)
        R = linalg.cholesky(jnp.eye(T.shape[0]) + TET)
        w = linalg.solve_lower(R, Tf)
        W = linalg.solve_lower(R, TF)
        num_levels, q = w.shape
        W_b = W[..., :p].reshape(num_levels * q, p)
        A = A - W_b.T @ W_b
        g = g - W_b.T @ w.reshape(num_levels * q)
        k = k - jnp.sum(w * w)
        log_det_v = log_det_v + jnp.sum(linalg.log_det_from_cholesky(R))
        if lv.H is not None:
            W_r = W[..., p:]
            num_parents = stats.levels[depth - 1].c.shape[0]
            carry = (_segment(_cross(W_r, W_r), lv.parent, num_parents),
                     _segment(_cross(W_r, w[..., None])[..., 0], lv.parent, num_parents),
                     _segment(_cross(W_r, W[..., :p]), lv.parent, num_parents))
        levels[depth] = _Level(R, f, F)
    return _Reduced(log_det_v, A, g, k, tuple(levels))


def _reduce_one(stats: SuffStats, sigma: jax.Array, T: jax.Array) -> _Reduced:
    """:func:`_reduce` for one factor, by the fused sums of :mod:`multilevel.model.onefactor`."""
    s2 = sigma * sigma
    lv = stats.levels[0]
    p = stats.Xty.shape[0]
    sums = onefactor.level_sums(T, s2, lv.G, jnp.concatenate([lv.D, lv.c[:, :, None]], axis=2))
    num_levels, q = lv.c.shape
    log_det_v = stats.n * jnp.log(s2) + sums.ld - num_levels * q * jnp.log(s2)
    Q = sums.Q / s2
    return _Reduced(log_det_v, stats.XtX / s2 - Q[:p, :p], stats.Xty / s2 - Q[:p, p], stats.yty / s2 - Q[p, p],
                    (sums,))


def _fixed_posterior(red: _Reduced, fixed_priors: tuple, aux=None, penalties: tuple[Penalty, ...] = ()):
    """Precision P, its Cholesky factor and the mean of b given (σ, Σ) (and the smooths' sds in ``aux``)."""
    m0, v0 = prior_moments(fixed_priors, aux, penalties)
    P = red.A + jnp.diag(1.0 / v0)
    h = red.g + m0 / v0
    chol_p = jnp.linalg.cholesky(P)
    mean = jax.scipy.linalg.cho_solve((chol_p, True), h)
    return m0, v0, chol_p, h, mean


def log_marginal(stats: SuffStats, sigma: jax.Array, Ts: list[jax.Array], fixed_priors: tuple, aux=None,
                 penalties: tuple[Penalty, ...] = ()) -> jax.Array:
    """``log p(y | σ, Σ)`` with r and b integrated out (Normal priors on b, ``N(0, sds²)`` on
    the penalised columns of ``penalties``, their sds in ``aux``); ``Ts`` per factor."""
    red = _reduce(stats, sigma, Ts)
    m0, v0, chol_p, h, mean = _fixed_posterior(red, fixed_priors, aux, penalties)
    return -0.5 * (stats.n * jnp.log(2 * jnp.pi) + red.log_det_v + jnp.sum(jnp.log(v0))
                   + linalg.log_det_from_cholesky(chol_p) + red.k + jnp.sum(m0 * m0 / v0) - h @ mean)


def log_conditional(stats: SuffStats, sigma: jax.Array, Ts: list[jax.Array], b: jax.Array) -> jax.Array:
    """``log p(y | b, σ, Σ)`` with r integrated out; ``Ts`` per factor."""
    red = _reduce(stats, sigma, Ts)
    return -0.5 * (stats.n * jnp.log(2 * jnp.pi) + red.log_det_v + b @ red.A @ b - 2 * b @ red.g + red.k)


@lru_cache(maxsize=None)
def make_collapsed_logdensity(struct: CollapsedStructure):
    """``f(position, data)``: log posterior of (σ, sds, correlations[, b]) with r (and b) integrated out."""

    def logdensity(position: Position, data: CollapsedData) -> jax.Array:
        aux, sds, chols, log_prior, log_jac = constrain_scales(position, data.priors, struct.terms)
        T = factor_scales(sds, chols, struct.terms)
        sigma = residual_scale(aux, struct)
        if struct.integrate_fixed:
            loglik = log_marginal(data.stats, sigma, T, data.priors.fixed, aux, struct.penalties)
        else:
            log_prior += fixed_log_prior(position.b, data.priors.fixed, struct.penalties)
            b = penalised_effects(position.b, aux, struct.penalties)
            loglik = log_conditional(data.stats, sigma, T, b)
        return loglik + log_prior + log_jac

    return logdensity


class Conditional(NamedTuple):
    """The Gaussian conditional of (b, r) given (σ, Σ): the sums left after integrating out
    the effects and, when b is integrated out too, the Cholesky factor of its posterior
    precision and its posterior mean (else None)."""

    reduced: _Reduced
    chol_p: jax.Array | None
    mean: jax.Array | None


def conditional(stats: SuffStats, sigma: jax.Array, Ts: list[jax.Array], fixed_priors: tuple,
                integrate_fixed: bool, aux=None, penalties: tuple[Penalty, ...] = ()) -> Conditional:
    """:class:`Conditional` for σ and the scales ``Ts`` (the smooths' sds in ``aux``)."""
    red = _reduce(stats, sigma, Ts)
    if not integrate_fixed:
        return Conditional(red, None, None)
    _, _, chol_p, _, mean = _fixed_posterior(red, fixed_priors, aux, penalties)
    return Conditional(red, chol_p, mean)


def prepare_draw(position: Position, data: CollapsedData, struct: CollapsedStructure):
    """The first half of :func:`draw_effects`: ``(aux, sds, chols, conditional)`` at a position."""
    aux, sds, chols, _, _ = constrain_scales(position, data.priors, struct.terms)
    Ts = factor_scales(sds, chols, struct.terms)
    return aux, sds, chols, conditional(data.stats, residual_scale(aux, struct), Ts, data.priors.fixed,
                                        struct.integrate_fixed, aux, struct.penalties)


def finish_draw(noise: tuple, prepared, position: Position, data: CollapsedData, struct: CollapsedStructure):
    """The second half of :func:`draw_effects`, from what :func:`prepare_draw` returned."""
    aux, sds, chols, cond = prepared
    Ts = factor_scales(sds, chols, struct.terms)
    b = None if struct.integrate_fixed else penalised_effects(position.b, aux, struct.penalties)
    sigma = residual_scale(aux, struct)
    b, by_factor = draw_from_conditional(noise, cond, data.stats, sigma, Ts, b)
    s2 = sigma ** 2
    deviance = data.stats.n * jnp.log(2 * jnp.pi * s2) + residual_sum_of_squares(data.stats, b, by_factor) / s2
    return b, aux, sds, chols, split_effects(by_factor, struct.terms), deviance


def fused_draws(stats: SuffStats) -> bool:
    """Whether :func:`draw_one_factor` serves these statistics: one factor, q <= ``UNROLL_MAX``."""
    return len(stats.levels) == 1 and stats.levels[0].c.shape[1] <= linalg.UNROLL_MAX


def draw_one_factor(noise: tuple, position: Position, data: CollapsedData, struct: CollapsedStructure):
    """:func:`draw_effects` for one factor (:func:`fused_draws`), in two fused passes over
    the levels that keep nothing per level but the draw: Q by
    :func:`~multilevel.model.onefactor.cross_sum`, then, given b, the effects and the
    levels' part of the residual sum of squares by
    :func:`~multilevel.model.onefactor.draw_level_effects`. The same draw as
    :func:`draw_effects` from the same noise, up to rounding."""
    aux, sds, chols, _, _ = constrain_scales(position, data.priors, struct.terms)
    T = factor_scales(sds, chols, struct.terms)[0]
    sigma = residual_scale(aux, struct)
    s2 = sigma * sigma
    stats, lv = data.stats, data.stats.levels[0]
    p = stats.Xty.shape[0]
    J = jnp.concatenate([lv.D, lv.c[:, :, None]], axis=2)
    eps_b, (eps_r,) = noise
    if struct.integrate_fixed:
        Q = onefactor.cross_sum(T, s2, lv.G, J) / s2
        red = _Reduced(None, stats.XtX / s2 - Q[:p, :p], stats.Xty / s2 - Q[:p, p], None, ())
        _, _, chol_p, _, mean = _fixed_posterior(red, data.priors.fixed, aux, struct.penalties)
        b = mean + jax.scipy.linalg.solve_triangular(chol_p.T, eps_b, lower=False)
    else:
        b = penalised_effects(position.b, aux, struct.penalties)
    r, level_rss = onefactor.draw_level_effects(eps_r, T, s2, sigma, b, lv.G, J)
    rss = stats.yty - 2 * b @ stats.Xty + b @ stats.XtX @ b + level_rss
    deviance = stats.n * jnp.log(2 * jnp.pi * s2) + rss / s2
    return b, aux, sds, chols, r, deviance


def draw_effects(noise: tuple, position: Position, data: CollapsedData, struct: CollapsedStructure):
    """One exact draw of (b, r) given a position of the variance parameters, and its deviance.

    ``noise``: the standard normals of :func:`conditional_noise`. Returns ``(b, aux, sds,
    chols, r, deviance)`` with ``r`` a list, per group term, of (levels, q).
    """
    return finish_draw(noise, prepare_draw(position, data, struct), position, data, struct)


def conditional_noise(key: jax.Array, stats: SuffStats, batch: tuple[int, ...] = ()) -> tuple:
    """The standard normals that :func:`draw_conditional` turns into a draw: ``batch + (p,)``
    for b and ``batch + (levels, Q)`` per factor, from one call of the generator (a
    batch of draws from one key is several times faster than one key per draw)."""
    p = stats.Xty.shape[0]
    sizes = [p] + [lv.c.shape[0] * lv.c.shape[1] for lv in stats.levels]
    flat = jax.random.normal(key, batch + (sum(sizes),))
    parts = jnp.split(flat, list(itertools.accumulate(sizes[:-1])), axis=-1)
    return parts[0], [part.reshape(batch + lv.c.shape) for part, lv in zip(parts[1:], stats.levels)]


def draw_conditional(noise: tuple, stats: SuffStats, sigma: jax.Array, Ts: list[jax.Array],
                     fixed_priors: tuple, b: jax.Array | None = None, aux=None,
                     penalties: tuple[Penalty, ...] = ()):
    """An exact draw of b (unless given) and of every factor's effects (levels, Q) given
    σ and the scales ``Ts``: b from its marginal over the effects, then the effects
    given b, outermost factor first. ``noise``: standard normals shaped as
    :func:`conditional_noise` makes them."""
    cond = conditional(stats, sigma, Ts, fixed_priors, b is None, aux, penalties)
    return draw_from_conditional(noise, cond, stats, sigma, Ts, b)


def draw_from_conditional(noise: tuple, cond: Conditional, stats: SuffStats, sigma: jax.Array,
                          Ts: list[jax.Array], b: jax.Array | None = None):
    """:func:`draw_conditional` from its :class:`Conditional` (b drawn unless given)."""
    s2 = sigma ** 2
    red = cond.reduced
    eps_b, eps_r = noise
    if b is None:
        b = cond.mean + jax.scipy.linalg.solve_triangular(cond.chol_p.T, eps_b, lower=False)
    if isinstance(red.levels[0] if red.levels else None, onefactor.OneFactor):
        return b, [onefactor.draw_effects(eps_r[0], red.levels[0], Ts[0], sigma, b)]
    by_factor, parent_r = [], None
    for level, level_stats, T, eps in zip(red.levels, stats.levels, Ts, eps_r):
        linear = level.f - level.F @ b
        if level_stats.H is not None:
            linear = linear - jnp.sum(level_stats.H * parent_r[level_stats.parent][:, None, :], axis=2) / s2
        mean_u = linalg.solve_upper_t(level.R, linalg.solve_lower(level.R, linear @ T))
        u = mean_u + linalg.solve_upper_t(level.R, eps)
        parent_r = u @ T.T
        by_factor.append(parent_r)
    return b, by_factor


def residual_sum_of_squares(stats: SuffStats, b: jax.Array, by_factor: list[jax.Array]) -> jax.Array:
    r"""``‖y - Xb - Σ_k Z_k r_k‖²`` from the sums alone, for effects ``(levels, Q)`` per factor:

    .. math::
       yᵀy - 2bᵀXᵀy + bᵀXᵀXb + \sum_l [r_lᵀ G_l r_l - 2 r_lᵀ (c_l - D_l b)
       + 2 r_lᵀ H_l r_{\mathrm{parent}(l)}] .
    """
    rss = stats.yty - 2 * b @ stats.Xty + b @ stats.XtX @ b
    parent_r = None
    for lv, r in zip(stats.levels, by_factor):
        Gr = jnp.sum(lv.G * r[:, None, :], axis=2)
        rss = rss + jnp.sum(r * (Gr - 2 * (lv.c - lv.D @ b)))
        if lv.H is not None:
            rss = rss + 2 * jnp.sum(r * jnp.sum(lv.H * parent_r[lv.parent][:, None, :], axis=2))
        parent_r = r
    return rss


def split_effects(by_factor: list, terms: tuple[Term, ...]) -> list:
    """Per group term, the columns of its factor's side-by-side effects ``(..., levels, Q)``."""
    out, offsets = [], [0] * len(by_factor)
    for term in terms:
        out.append(by_factor[term.factor][..., offsets[term.factor]:offsets[term.factor] + term.q])
        offsets[term.factor] += term.q
    return out
