r"""Blocked Gibbs sampling of Gaussian multilevel models (the JAGS workflow, converged).

Model: ``y = X b + Σ_k Z_k r_k + e``, ``e ~ N(0, σ² I)``, ``r_{k,l} ~ N(0, Σ_k)``,
``b ~ N(m₀, diag(v₀))``. One sweep:

1. For each block of grouping factors (a factor alone, or paired with a factor
   it is nested in: :attr:`multilevel.design.groups.GroupStructure.blocks`), draw the fixed effects and
   the block's group effects *jointly* given the other factors' effects: with
   the partial residual ``ỹ = y - Σ_{k ∉ block} Z_k r_k``, b is drawn from its
   conditional with the block's effects integrated out, then the effects given
   b (:func:`multilevel.model.marginal.draw_conditional`, on per-level sums of
   ``ỹ``; ``Zᵀ Z`` and ``Zᵀ X`` per level are computed once). Moving b with
   each factor's effects is what makes crossed designs mix (the collapsed
   Gibbs sampler of Papaspiliopoulos, Roberts & Zanella 2020).
   Before that draw, each independent sd of the block's terms is slice-updated
   from its conditional with the block's effects and b integrated out (a
   partially collapsed Gibbs step), which mixes as the collapsed sampler does;
   so are the one sd and the one correlation of a compound-symmetric term
   (``cs(x | g)``, :mod:`multilevel.model.compound`), the correlation on its
   unconstrained scale.
2. ``σ`` given the residual sum of squares, and each correlated block's
   covariance given its effects (:mod:`.conditionals`: conjugate draws for a
   Gamma-precision prior on σ and Inverse-Wishart priors on covariances, a
   slice update for any other prior on σ).

Smooth terms' penalised coefficients are fixed effects with prior ``N(0, sds²)``
(:mod:`multilevel.model.penalties`): before each block's draw, each smooth's sds is
slice-updated from its conditional with b and the block's effects integrated out, as
the group sds are.

Row weights and known standard errors (``weights()``, ``se()`` without sigma) weight
every sum over rows by the row's precision ``λ_i``, and the count of rows becomes
``Σ w_i`` (:mod:`multilevel.model.rownoise`); with known standard errors σ ≡ 1 and
step 2 draws no σ.

A sweep costs O(rows · factors) for the residuals and per-level sums plus
O(levels · q³); all chains of a thread advance together in one vmapped scan. The
state carries each factor's row contributions ``Z_k r_k`` (recomputed, by a gather,
only when its effects are drawn), and ``Xᵀ Λ ỹ`` comes from the per-level ``Zᵀ Λ X``:
the passes over the rows are the residual, the segment sums and the gathers.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..compiler import COMPILER_OPTIONS
from ..design import Design
from ..design.summary import summarise
from ..design.suffstats import LevelStats, SuffStats, factor_columns, sufficient_statistics
from ..model import Model
from ..model import compound
from ..model.layout import SE_ADDED, SE_KNOWN, Layout, Term
from ..model.logdensity import Params, Position, constrain_scales, initial_position
from ..model.marginal import (conditional_noise, draw_conditional, factor_scales,
                              log_conditional, log_marginal, split_effects)
from ..model.penalties import Penalty, penalised_effects
from ..model.prior_table import PriorSet, PriorValues
from ..model.rownoise import RowNoise
from ..model.priors import InverseWishart, Normal
from .conditionals import (conjugate_scale, conjugate_shape, draw_covariance, is_conjugate_scale, slice_sample,
                           slice_scale, wishart_shapes)
from .driver import Kernel, run_chains
from .sampler import (Draws, Options, PriorProblem, SamplerInfo, bounded_response_problem,
                      predicted_parameters_problem)


class GibbsData(NamedTuple):
    """The rows, the per-level sums that do not involve y, and the priors; the rows'
    precision weights (None: all 1) and their count ``Σ w_i``."""

    y: jax.Array
    X: jax.Array
    XtX: jax.Array
    refs: tuple[jax.Array, ...]  # per factor (rows,)
    z: tuple[jax.Array, ...]  # per factor (rows, Q): the columns of all its terms side by side
    blocks: tuple[tuple[LevelStats, ...], ...]  # per block, its factors' G, D (H, parent); c unused
    priors: PriorValues
    precision: jax.Array | None = None
    count: jax.Array | None = None
    Xty: jax.Array | None = None  # Xᵀ Λ y


class GibbsStructure(NamedTuple):
    """Static shape: the group terms (their factors indexed in block order), the
    blocks of factors, and whether the rows' sds are known (σ ≡ 1, not drawn)."""

    terms: tuple[Term, ...]
    blocks: tuple[tuple[int, ...], ...]
    known_sd: bool = False
    #: The smooths' penalised blocks (:mod:`multilevel.model.penalties`).
    penalties: tuple[Penalty, ...] = ()


class GibbsState(NamedTuple):
    """One chain's current values, on the constrained scale."""

    b: jax.Array
    sigma: jax.Array
    sds: tuple[jax.Array, ...]
    chols: tuple[jax.Array | None, ...]
    effects: tuple[jax.Array, ...]  # per factor (levels, Q)
    smooth_sds: jax.Array  # (penalties,): the smooths' sds
    contributions: tuple[jax.Array, ...] = ()  # per factor (rows,): Z_k r_k of its effects


def gibbs_problem(layout: Layout, priors: PriorSet) -> str | None:
    """None if the Gibbs sampler covers these priors, else which prior it cannot take and why."""
    for p in priors.fixed:
        if not isinstance(p.prior, Normal):
            return PriorProblem(f"the fixed effect {p.name} has the prior {p.prior}, but Gibbs draws fixed "
                                "effects from their Normal conditional: give it a Normal prior")
    for g, cor in zip(layout.groups, priors.cor):
        if cor is not None and not g.compound and not isinstance(cor.prior, InverseWishart):
            return PriorProblem(f"the correlations of the term on {g.name!r} have the prior {cor.prior}, but "
                                f"Gibbs updates a correlated block through its covariance: give 'cov|{g.name}' an "
                                "InverseWishart(df, scale) prior")
    return None


def gibbs_blocks(layout: Layout, design: Design) -> tuple[tuple[str, ...], GibbsStructure]:
    """The grouping factors, block by block, and the sampler's static structure."""
    blocks = design.structure.blocks
    factors = tuple(f for block in blocks for f in block)
    struct = GibbsStructure(layout.terms(factors), tuple(tuple(factors.index(f) for f in block) for block in blocks),
                            layout.se == SE_KNOWN, layout.penalties)
    return factors, struct


def gibbs_data(design: Design, factors: tuple[str, ...], struct: GibbsStructure, priors: PriorSet,
               noise: RowNoise | None = None) -> GibbsData:
    """Float64 arrays of the design and the per-level sums ``Zᵀ Λ Z``, ``Zᵀ Λ X`` of each block
    (``Λ`` the rows' precision weights of ``noise``; the identity if None)."""
    precision = None if noise is None else noise.precision
    count = design.num_rows if noise is None else noise.count
    columns = [factor_columns(design, f) for f in factors]
    blocks = tuple(sufficient_statistics(design.X, design.y, [columns[k] for k in block], precision).levels
                   for block in struct.blocks)
    as_float = lambda a: jnp.asarray(a, jnp.float64)  # noqa: E731
    blocks = tuple(tuple(LevelStats(as_float(lv.G), as_float(lv.D), as_float(lv.c),
                                    None if lv.H is None else as_float(lv.H),
                                    None if lv.parent is None else jnp.asarray(lv.parent))
                         for lv in block) for block in blocks)
    weighted_X = design.X if precision is None else design.X * precision[:, None]
    return GibbsData(as_float(design.y), as_float(design.X), as_float(design.X.T @ weighted_X),
                     tuple(jnp.asarray(refs) for refs, _, _ in columns),
                     tuple(as_float(z) for _, z, _ in columns), blocks,
                     jax.tree_util.tree_map(as_float, priors.values()),
                     None if precision is None else as_float(precision), as_float(count),
                     as_float(weighted_X.T @ design.y))


def _contribution(data: GibbsData, k: int, effects: jax.Array) -> jax.Array:
    """``Z_k r_k``: each row's group contribution from factor k (a gather, no dense Z)."""
    return jnp.sum(data.z[k] * effects[data.refs[k]], axis=1)


def _weighted(data: GibbsData, resid: jax.Array) -> jax.Array:
    """``Λ ỹ``: the residuals times the rows' precision weights."""
    return resid if data.precision is None else data.precision * resid


def _factor_D(data: GibbsData, struct: GibbsStructure, k: int) -> jax.Array:
    """``Zᵀ Λ X`` per level of factor k, (levels, Q, p), from its block's statistics."""
    i = next(i for i, block in enumerate(struct.blocks) if k in block)
    return data.blocks[i][struct.blocks[i].index(k)].D


def _block_stats(data: GibbsData, struct: GibbsStructure, block: tuple[int, ...], level_stats: tuple,
                 resid: jax.Array, effects: list) -> SuffStats:
    """The block's sufficient statistics for the partial residual ``ỹ = y - Σ_{k ∉ block} Z_k r_k``
    (``resid``): its per-level ``Zᵀ Λ ỹ`` by segment sums; ``Xᵀ Λ ỹ = Xᵀ Λ y - Σ_{k ∉ block}
    Σ_l D_{k,l}ᵀ r_{k,l}`` from the per-level ``D = Zᵀ Λ X`` (no pass over the rows);
    ``Zᵀ Λ Z``, ``Zᵀ Λ X`` and ``Xᵀ Λ X`` were computed once."""
    weighted = _weighted(data, resid)
    levels = tuple(lv._replace(c=jax.ops.segment_sum(data.z[k] * weighted[:, None], data.refs[k],
                                                     num_segments=lv.G.shape[0]))
                   for lv, k in zip(level_stats, block))
    Xty = data.Xty
    for k, r in enumerate(effects):
        if k not in block:
            Xty = Xty - jnp.einsum("lqp,lq->p", _factor_D(data, struct, k), r)
    return SuffStats(data.count, resid @ weighted, Xty, data.XtX, levels)


def _aux(sigma: jax.Array, smooth_sds: jax.Array, struct: GibbsStructure) -> jax.Array:
    """The constrained ``aux`` as the layout orders it: σ (unless known), then the smooths' sds."""
    return smooth_sds if struct.known_sd else jnp.concatenate([sigma[None], smooth_sds])


def _update_smooth_sds(key: jax.Array, stats: SuffStats, Ts: list, sigma: jax.Array, smooth_sds: jax.Array,
                       data: GibbsData, struct: GibbsStructure) -> jax.Array:
    """Slice-update each smooth's sds from its conditional with b and the block's effects
    integrated out (partially collapsed, as :func:`_update_block_sds`)."""
    first = 0 if struct.known_sd else 1
    for j, key_j in enumerate(jax.random.split(key, len(struct.penalties))):
        prior = data.priors.aux[first + j]

        def log_density(u, j=j, prior=prior):
            s, log_jac = prior.to_positive(u)
            trial = smooth_sds.at[j].set(s)
            aux = _aux(sigma, trial, struct)
            loglik = log_marginal(stats, sigma, Ts, data.priors.fixed, aux, struct.penalties)
            return loglik + prior.log_prob(s) + log_jac

        u = slice_sample(key_j, log_density, prior.from_positive(smooth_sds[j]), 1.0)
        smooth_sds = smooth_sds.at[j].set(prior.to_positive(u)[0])
    return smooth_sds


def _update_block_sds(key: jax.Array, stats: SuffStats, block: tuple[int, ...], sds: list, chols: list,
                      sigma: jax.Array, b: jax.Array, data: GibbsData, struct: GibbsStructure,
                      aux: jax.Array | None = None) -> tuple[list, list]:
    """Slice-update each independent sd of the block's terms, and the sd and correlation of
    each compound-symmetric one, from its conditional with the block's effects (and b,
    under its Normal prior) integrated out: partially collapsed Gibbs (van Dyk & Park
    2008), valid because the next draw, of (b, r_block), conditions on neither. Mixes as
    the collapsed sampler does, where updating an sd given its effects would crawl (few
    levels, or effects the data barely inform). Returns the sds and correlation factors."""
    def block_loglik(trial_sds, trial_chols):
        Ts = factor_scales(trial_sds, trial_chols, struct.terms)
        Ts = [Ts[k] for k in block]
        return (log_marginal(stats, sigma, Ts, data.priors.fixed, aux, struct.penalties) if b.shape[0]
                else log_conditional(stats, sigma, Ts, b))

    terms = [t for t, term in enumerate(struct.terms) if term.factor in block and not term.has_cor]
    shared = [t for t, term in enumerate(struct.terms) if term.factor in block and term.compound]
    keys = iter(jax.random.split(key, sum(struct.terms[t].q for t in terms) + 2 * len(shared) or 1))
    for t in terms:
        for j, prior in enumerate(data.priors.sd[t]):
            def log_density(u, t=t, j=j, prior=prior):
                s, log_jac = prior.to_positive(u)
                trial = sds[:t] + [sds[t].at[j].set(s)] + sds[t + 1:]
                return block_loglik(trial, chols) + prior.log_prob(s) + log_jac

            # about twice the posterior sd of log s, for levels that inform it well
            width = 2.0 / stats.levels[block.index(struct.terms[t].factor)].G.shape[0] ** 0.5
            u = slice_sample(next(keys), log_density, prior.from_positive(sds[t][j]), width)
            sds[t] = sds[t].at[j].set(prior.to_positive(u)[0])
    for t in shared:
        q, prior, eta = struct.terms[t].q, data.priors.sd[t][0], data.priors.cor[t].eta
        width = 2.0 / stats.levels[block.index(struct.terms[t].factor)].G.shape[0] ** 0.5

        def log_sd(u, t=t, q=q, prior=prior):
            s, log_jac = prior.to_positive(u)
            return block_loglik(sds[:t] + [jnp.full(q, s)] + sds[t + 1:], chols) + prior.log_prob(s) + log_jac

        u = slice_sample(next(keys), log_sd, prior.from_positive(sds[t][0]), width)
        sds[t] = jnp.full(q, prior.to_positive(u)[0])

        def log_cor(u, t=t, q=q, eta=eta):
            rho, log_jac = compound.correlation(u, q)
            trial = chols[:t] + [compound.cholesky(rho, q)] + chols[t + 1:]
            return block_loglik(sds, trial) + compound.log_prior(rho, q, eta) + log_jac

        start = compound.unconstrained(chols[t][1, 0], q)    # row 1 of the factor of R(ρ) starts with ρ
        u = slice_sample(next(keys), log_cor, start, 2.0 * width)
        chols[t] = compound.cholesky(compound.correlation(u, q)[0], q)
    return sds, chols


def gibbs_step(key: jax.Array, state: GibbsState, data: GibbsData, struct: GibbsStructure):
    """One sweep; returns the new state and the draw (with its deviance)."""
    blocks, block_stats = (struct.blocks, data.blocks) if struct.blocks else (((),), ((),))
    keys = jax.random.split(key, 3 * len(blocks) + 1)
    sds, chols, smooth_sds = list(state.sds), list(state.chols), state.smooth_sds
    effects, contributions = list(state.effects), list(state.contributions)
    b = state.b
    for i, (block, level_stats) in enumerate(zip(blocks, block_stats)):
        resid = data.y - sum((contributions[k] for k in range(len(effects)) if k not in block),
                             jnp.zeros_like(data.y))
        stats = _block_stats(data, struct, block, level_stats, resid, effects)
        sds, chols = _update_block_sds(keys[3 * i], stats, block, sds, chols, state.sigma, b, data, struct,
                                       _aux(state.sigma, smooth_sds, struct))
        Ts = factor_scales(sds, chols, struct.terms)
        if struct.penalties:
            smooth_sds = _update_smooth_sds(keys[3 * i + 2], stats, [Ts[k] for k in block], state.sigma,
                                            smooth_sds, data, struct)
        noise = conditional_noise(keys[3 * i + 1], stats)
        b, drawn = draw_conditional(noise, stats, state.sigma, [Ts[k] for k in block], data.priors.fixed,
                                    None if b.shape[0] else b, _aux(state.sigma, smooth_sds, struct),
                                    struct.penalties)
        for k, r in zip(block, drawn):
            effects[k], contributions[k] = r, _contribution(data, k, r)
    resid = data.y - data.X @ b - sum(contributions, jnp.zeros_like(data.y))
    rss = resid @ _weighted(data, resid)
    n = data.count
    by_term = split_effects(effects, struct.terms)
    sigma, sds, chols = _draw_scales(keys[-1], state.sigma, tuple(sds), tuple(chols), data.priors, struct, n,
                                     rss, by_term)
    new = GibbsState(b, sigma, sds, chols, tuple(effects), smooth_sds, tuple(contributions))
    deviance = n * jnp.log(2 * jnp.pi * sigma ** 2) + rss / sigma ** 2
    aux = _aux(sigma, smooth_sds, struct)
    return new, {"position": Params(b, aux, sds, chols, tuple(by_term)), "deviance": deviance}


def _draw_scales(key: jax.Array, sigma: jax.Array, sds: tuple, chols: tuple, priors: PriorValues,
                 struct: GibbsStructure, n: int, rss: jax.Array, by_term: list[jax.Array]):
    """σ given the residuals (unless the rows' sds are known: σ stays 1), and each correlated
    block's covariance given its effects (conditionally independent). The Gamma variates of
    the conjugate draws are drawn in one call: each call site of ``jax.random.gamma`` costs
    seconds of compilation."""
    sigma_prior, cor_priors = (None if struct.known_sd else priors.aux[0]), priors.cor
    conjugate = sigma_prior is not None and is_conjugate_scale(sigma_prior)
    correlated = [(t, r) for t, (term, r) in enumerate(zip(struct.terms, by_term))
                  if term.has_cor and not term.compound]
    shapes = [jnp.atleast_1d(conjugate_shape(sigma_prior, n))] if conjugate else []
    shapes += [wishart_shapes(cor_priors[t], r.shape[0], r.shape[1]) for t, r in correlated]
    k_gamma, k_sigma, k_cov = jax.random.split(key, 3)
    variates = jax.random.gamma(k_gamma, jnp.concatenate(shapes)) if shapes else jnp.zeros(0)
    if conjugate:
        sigma, variates = conjugate_scale(sigma_prior, rss, variates[0]), variates[1:]
    elif sigma_prior is not None:
        sigma = slice_scale(k_sigma, sigma_prior, n, rss, sigma)
    sds, chols = list(sds), list(chols)
    for (t, r), k in zip(correlated, jax.random.split(k_cov, len(correlated) or 1)):
        q = r.shape[1]
        sds[t], chols[t] = draw_covariance(k, cor_priors[t], r, variates[:q])
        variates = variates[q:]
    return sigma, tuple(sds), tuple(chols)


@lru_cache(maxsize=None)
def gibbs_kernel(struct: GibbsStructure) -> Kernel:
    """The Gibbs kernel over a batch of chains: states stacked on a leading axis, all
    chains of the batch advanced together (vmapped), each with its own key (``keys``:
    one per chain)."""

    def init(key, state, data):
        return state

    def step(keys, state, data):
        return jax.vmap(gibbs_step, in_axes=(0, 0, None, None))(keys, state, data, struct)

    return Kernel(init, step)


class GibbsSampler:
    """Blocked Gibbs for Gaussian models with Normal priors on the fixed effects and
    InverseWishart priors on correlated blocks (the JAGS workflow)."""

    name = "gibbs"

    def problem(self, model: Model) -> str | None:
        if not model.family.gaussian_marginal:
            return f"the {model.family.name} family has no conjugate updates"
        if (varying := predicted_parameters_problem(model)) is not None:
            return varying
        if (bounded := bounded_response_problem(model)) is not None:
            return bounded
        if model.layout.se == SE_ADDED:
            return (f"{model.spec.se} makes each row's variance sigma² + se², which has no conjugate "
                    "update of sigma")
        if not model.has_rows:
            return (f"Gibbs needs the rows, and the model was built from a {model.source}, which the "
                    "collapsed sampler fits from sufficient statistics")
        return gibbs_problem(model.layout, model.priors)

    def suits(self, model: Model) -> str:
        smooths = (f"; the smooths' {', '.join(name for name, _ in model.layout.smooths)} slice-updated with "
                   "their coefficients integrated out" if model.layout.smooths else "")
        return f"Gaussian: blocked Gibbs, fixed effects drawn jointly with each factor's effects{smooths}"

    def run(self, model: Model, seed: int, options: Options) -> Draws:
        """Chains start from jittered points near the data (as for NUTS); the first
        ``warmup`` sweeps are discarded (Gibbs needs no adaptation).

        Each chain has its own key sequence, drawn from ``seed`` as for every sampler;
        chains run several to a thread (vmapped), and how many share a thread never
        changes their draws.
        """
        design, layout, priors = model.working_design(), model.layout, model.priors
        chains, draws = options.chains, options.draws
        factors, struct = gibbs_blocks(layout, design)
        data = gibbs_data(design, factors, struct, priors, model.row_noise())
        rng = np.random.default_rng(seed)
        summary = summarise(design)
        starts = [_initial_state(initial_position(rng, summary, layout, priors, model.family), data, struct, layout)
                  for _ in range(chains)]
        batches = _batches(chains)
        size = chains // batches
        stacked = [jax.tree_util.tree_map(lambda *a: jnp.stack(a), *starts[i * size:(i + 1) * size])
                   for i in range(batches)]
        run = run_chains(gibbs_kernel(struct), stacked, data, num_warmup=options.warmup, num_draws=draws,
                         rng=np.random.default_rng([seed, 0]), progress=options.progress,
                         compiler_options=COMPILER_OPTIONS, chains_per_state=size)
        # (batch, draw, chain-in-batch, ...) -> (chain, draw, ...)
        unbatch = lambda a: np.swapaxes(a, 1, 2).reshape((chains, draws) + a.shape[3:])  # noqa: E731
        params = jax.tree_util.tree_map(unbatch, run.positions)
        stats = {k: unbatch(v) for k, v in run.stats.items()}
        stats["deviance"] = stats["deviance"] + model.deviance_shift
        details = {"blocks": [[factors[k] for k in block] for block in struct.blocks], "chains_per_thread": size}
        return Draws(params.b, params.aux, tuple(params.sd), tuple(params.chol), tuple(params.effects), stats,
                     SamplerInfo(run.compile_seconds, run.sampling_seconds, False, details, run.warmup_seconds))


#: The Gibbs sampler.
GIBBS = GibbsSampler()


def _batches(chains: int) -> int:
    """How many threads to run the chains in: as many as cores when they divide the
    chains (each thread advancing its chains together), else one per chain."""
    cores = os.cpu_count() or 1
    return cores if chains % cores == 0 else chains


def _initial_state(position: Position, data: GibbsData, struct: GibbsStructure, layout: Layout) -> GibbsState:
    """A chain's start from an unconstrained NUTS-style position: b, σ, sds and
    correlations as given, effects at zero (the first sweep draws them)."""
    aux, sds, chols, _, _ = constrain_scales(position, data.priors, struct.terms)
    effects = []
    for k in range(len(data.z)):
        terms = [t for t, term in enumerate(struct.terms) if term.factor == k]
        effects.append(jnp.zeros((len(layout.groups[terms[0]].levels), sum(struct.terms[t].q for t in terms))))
    sigma = jnp.ones(()) if struct.known_sd else aux[0]
    b = penalised_effects(jnp.asarray(position.b, jnp.float64), aux, struct.penalties)
    return GibbsState(b, sigma, sds, chols, tuple(effects), aux[len(aux) - len(struct.penalties):],
                      tuple(jnp.zeros_like(data.y) for _ in effects))
