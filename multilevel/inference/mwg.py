r"""Metropolis-within-Gibbs for GLMMs with random-intercept factors, crossed or single.

Model: ``η = X b + Σ_k r_k[l_k(i)] + o_i``, ``y_i ~ f(y | η_i, θ)``, ``r_{k,l} ~ N(0, s_k²)``
(bernoulli, binomial, poisson, negbinomial; θ the negative binomial's shape).
After Papaspiliopoulos, Stumpf-Fétizon & Zanella (2023), one sweep is:

1. For each factor k, every level's effect by a Newton (Laplace) proposal from its
   conditional given everything else, accepted level by level
   (:func:`.levelnewton.newton_levels`; two passes over the rows).
2. The fixed effects jointly by a Newton proposal given the effects
   (:func:`.levelnewton.newton_fixed`).
3. For each factor k, the translation ``(b_S, r_k) → (b_S + δ, r_k - Z_k δ)`` of the
   fixed-effect columns ``S`` constant within its levels (the intercept and the level's
   own covariates; ``Z_k`` their values per level), which leaves η unchanged. Without the
   priors of ``b_S``, δ's conditional is Gaussian,
   ``N((Z_kᵀZ_k)⁻¹ Z_kᵀ r_k, s_k² (Z_kᵀZ_k)⁻¹)``; drawn from it, δ is accepted with the
   ratio of the priors of ``b_S`` (an independence MH step: O(levels), no pass over the
   rows). This is the local centring of the factor's effects on the intercept and on
   the level covariates: without it those fixed effects and the effects' projection on
   ``Z_k``, which the data inform only through their sum, move by the conditional sd of
   ``b`` given the effects, about ``1/√rows``.
4. Each ``s_k`` given its effects by slice sampling (its conditional
   ``∝ π(s) s^{-L} exp(-Σ_l r_l² / 2s²)``), then by slice sampling given the
   standardised effects ``r_k / s_k`` (the non-centred direction: the effects scale
   with ``s_k``; one pass over the rows per slice evaluation), which mixes where the
   levels are weakly informed.
5. The negative binomial's shape by slice sampling on its log.

Each sweep costs a fixed number of passes over the rows (about ``4 K + 2`` plus the
slice evaluations of step 4 and 5), vectorised over rows and levels.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..compiler import COMPILER_OPTIONS
from ..design.summary import summarise
from ..model import Model
from ..model.families import Family
from ..model.layout import SE_ADDED
from ..model.logdensity import constrain_scales, initial_position
from ..model.prior_table import PriorValues
from .conditionals import slice_sample, slice_scale
from .driver import Kernel, run_chains
from .levelnewton import newton_fixed, newton_levels
from .sampler import Draws, Options, SamplerInfo, bounded_response_problem, predicted_parameters_problem

#: The families the sampler takes (log-concave in the linear predictor).
FAMILIES = ("bernoulli", "binomial", "poisson", "negbinomial")
#: The families ``auto`` chooses it for, with crossed factors (the case measured).
AUTO_FAMILIES = ("bernoulli", "binomial")


class MwgData(NamedTuple):
    """The rows (response, trials, offset, fixed-effect columns, level references per
    factor) and the priors."""

    y: jax.Array
    trials: jax.Array | None
    offset: jax.Array
    X: jax.Array
    refs: tuple[jax.Array, ...]
    level_values: tuple[jax.Array, ...]   # per factor, (levels, |S_k|): its level-constant columns
    priors: PriorValues


class MwgStructure(NamedTuple):
    """Static: the family, the number of levels per factor, and per factor the fixed-effect
    columns constant within each of its levels (``S_k``)."""

    family: Family
    levels: tuple[int, ...]
    level_columns: tuple[tuple[int, ...], ...]


class MwgState(NamedTuple):
    """A chain's state: fixed effects, family parameters, the factors' sds and effects,
    and the linear predictor they give."""

    b: jax.Array
    aux: jax.Array
    sd: jax.Array
    effects: tuple[jax.Array, ...]
    eta: jax.Array


def _loglik(struct: MwgStructure, data: MwgData, aux: jax.Array):
    return lambda eta: struct.family.log_likelihood(data.y, eta, aux, data.trials)


def _fixed_log_prior(priors: PriorValues):
    def log_prior(b):
        return sum(p.log_prob(b[j]) for j, p in enumerate(priors.fixed))
    return log_prior


def _translate(key: jax.Array, b: jax.Array, effects: jax.Array, sd: jax.Array, Z: jax.Array, columns: tuple,
               priors: PriorValues):
    """Step 3 for one factor: ``(b, effects, accepted)`` after the translation δ of the
    columns ``S`` (``Z``: their values per level, levels × |S|)."""
    k_prop, k_acc = jax.random.split(key)
    chol = jnp.linalg.cholesky(Z.T @ Z)
    mean = jax.scipy.linalg.cho_solve((chol, True), Z.T @ effects)
    delta = mean + sd * jax.scipy.linalg.solve_triangular(chol.T, jax.random.normal(k_prop, mean.shape), lower=False)
    cols = jnp.asarray(columns)

    def log_prior(values):
        return sum(priors.fixed[j].log_prob(values[m]) for m, j in enumerate(columns))

    accepted = jnp.log(jax.random.uniform(k_acc)) < log_prior(b[cols] + delta) - log_prior(b[cols])
    delta = jnp.where(accepted, delta, 0.0)
    return b.at[cols].add(delta), effects - Z @ delta, accepted


def _scale_noncentred(key: jax.Array, loglik, base: jax.Array, refs: jax.Array, effects: jax.Array,
                      sd: jax.Array, prior):
    """Step 4's second update: ``s`` given ``w = r / s``, so that ``r = s w`` moves with it."""
    w = effects / sd

    def log_density(u):
        s, log_jac = prior.to_positive(u)
        return jnp.sum(loglik(base + (s * w)[refs])) + prior.log_prob(s) + log_jac

    s = prior.to_positive(slice_sample(key, log_density, prior.from_positive(sd), 0.5))[0]
    return s, s * w


def mwg_step(key: jax.Array, state: MwgState, data: MwgData, struct: MwgStructure):
    """One sweep (steps 1-5 of the module notes)."""
    K = len(struct.levels)
    keys = iter(jax.random.split(key, 5 * K + 2))
    b, aux, effects, eta = state.b, state.aux, list(state.effects), state.eta
    sds = [state.sd[k] for k in range(K)]
    loglik = _loglik(struct, data, aux)
    accepted, translated = [], [jnp.ones(())] * K
    for k in range(K):
        base = eta - effects[k][data.refs[k]]
        effects[k], acc = newton_levels(next(keys), loglik, base, data.refs[k], effects[k], sds[k])
        eta = base + effects[k][data.refs[k]]
        accepted.append(jnp.mean(acc))
    base = eta - data.X @ b
    b, acc_b = newton_fixed(next(keys), loglik, _fixed_log_prior(data.priors), base, data.X, b)
    eta = base + data.X @ b
    for k in range(K):
        prior = data.priors.sd[k][0]
        if struct.level_columns[k]:
            b, effects[k], acc = _translate(next(keys), b, effects[k], sds[k], data.level_values[k],
                                            struct.level_columns[k], data.priors)
            translated[k] = acc.astype(jnp.float64)
        sds[k] = slice_scale(next(keys), prior, struct.levels[k], jnp.sum(effects[k] ** 2), sds[k])
        base = eta - effects[k][data.refs[k]]
        sds[k], effects[k] = _scale_noncentred(next(keys), loglik, base, data.refs[k], effects[k], sds[k], prior)
        eta = base + effects[k][data.refs[k]]
    if struct.family.name == "negbinomial":
        prior = data.priors.aux[0]

        def log_shape(u):
            shape, log_jac = prior.to_positive(u)
            return jnp.sum(_loglik(struct, data, shape[None])(eta)) + prior.log_prob(shape) + log_jac

        aux = prior.to_positive(slice_sample(next(keys), log_shape, prior.from_positive(aux[0]), 0.5))[0][None]
    state = MwgState(b, aux, jnp.stack(sds), tuple(effects), eta)
    info = {"position": (b, aux, state.sd, state.effects),
            "accept_effects": jnp.stack(accepted), "accept_translation": jnp.stack(translated), "accept_fixed": acc_b}
    return state, info


@lru_cache(maxsize=None)
def mwg_kernel(struct: MwgStructure) -> Kernel:
    """The sampler's pure kernel for one structure (cached: compiled once per structure)."""

    def init(key, state, data):
        return state

    def step(key, state, data):
        return mwg_step(key, state, data, struct)

    return Kernel(init, step)


def mwg_problem(model: Model) -> str | None:
    """Why the sampler cannot fit ``model`` (None if it can)."""
    family = model.family
    if family.name not in FAMILIES:
        return f"the {family.name} family is not one of {', '.join(FAMILIES)}"
    if getattr(family, "link", None) not in (None, "logit", "probit", "log", "cloglog"):
        return f"the {family.link} link is not log-concave in the linear predictor"
    if (varying := predicted_parameters_problem(model)) is not None:
        return varying
    if (bounded := bounded_response_problem(model)) is not None:
        return bounded
    if model.spec.weights is not None or model.layout.se == SE_ADDED or model.spec.se is not None:
        return "row weights and known standard errors are not supported"
    if not model.has_rows:
        return f"it needs the rows, and the model was built from a {model.source}"
    if model.layout.smooths:
        return "smooth terms are not supported"
    groups = model.layout.groups
    if not groups:
        return "there are no group terms"
    names = [g.name for g in groups]
    if len(set(names)) < len(names):
        return f"a grouping factor has more than one term ({', '.join(names)})"
    for g in groups:
        if g.q != 1 or g.columns != ("Intercept",):
            return f"the term of {g.name} is not a random intercept alone ({', '.join(g.columns)}): random slopes"
    return None


def mwg_data(model: Model) -> tuple[MwgData, MwgStructure]:
    """The rows and priors as arrays, and the static structure."""
    design = model.design
    num = design.num_rows
    as_float = lambda v: jnp.asarray(v, jnp.float64)  # noqa: E731
    refs = tuple(jnp.asarray(g.refs, jnp.int32) for g in design.groups)
    columns = tuple(level_columns(design.X, g.refs, len(g.levels)) for g in design.groups)
    values = tuple(as_float(_level_values(design.X[:, list(c)], g.refs, len(g.levels)))
                   for c, g in zip(columns, design.groups))
    data = MwgData(as_float(design.y), None if design.trials is None else as_float(design.trials),
                   as_float(np.zeros(num) if design.offset is None else design.offset), as_float(design.X), refs,
                   values, jax.tree_util.tree_map(as_float, model.priors.values()))
    return data, MwgStructure(model.family, tuple(len(g.levels) for g in design.groups), columns)


def _level_values(X: np.ndarray, refs: np.ndarray, num: int) -> np.ndarray:
    """Each level's mean of the columns of ``X`` (levels × columns); 0 for a level without rows."""
    counts = np.maximum(np.bincount(refs, minlength=num), 1)
    return np.stack([np.bincount(refs, X[:, j], minlength=num) for j in range(X.shape[1])], axis=1).reshape(
        num, X.shape[1]) / counts[:, None]


def level_columns(X: np.ndarray, refs: np.ndarray, num: int) -> tuple[int, ...]:
    """The fixed-effect columns constant within every level of a factor and linearly
    independent across its levels (kept in column order: the intercept first), ``S_k``
    of the module notes."""
    means = _level_values(X, refs, num)
    constant = np.all(np.abs(X - means[refs]) <= 1e-12 * (1.0 + np.abs(X)), axis=0)
    kept: list[int] = []
    for j in np.flatnonzero(constant):
        if np.linalg.matrix_rank(means[:, kept + [j]]) == len(kept) + 1:
            kept.append(int(j))
    return tuple(kept)


def _initial_state(model: Model, rng: np.random.Generator, data: MwgData) -> MwgState:
    """Fixed effects, family parameters and sds from the jittered NUTS start; effects 0."""
    position = initial_position(rng, summarise(model.working_design()), model.layout, model.priors, model.family)
    aux, sds, _, _, _ = constrain_scales(position, data.priors, model.layout.terms(), model.family.params)
    b = jnp.asarray(position.b, jnp.float64)
    effects = tuple(jnp.zeros(len(g.levels)) for g in model.layout.groups)
    sd = jnp.stack([jnp.asarray(s, jnp.float64)[0] for s in sds])
    return MwgState(b, jnp.asarray(aux, jnp.float64).reshape(-1), sd, effects, data.offset + data.X @ b)


class MwgSampler:
    """Random-intercept GLMMs (crossed or single factors): per-level Newton proposals."""

    name = "mwg"

    def problem(self, model: Model) -> str | None:
        return mwg_problem(model)

    def declines(self, model: Model) -> str | None:
        """Why ``auto`` leaves a model it can fit to NUTS: the rule is crossed factors and a
        binary or binomial response, the case measured (benchmarks/bench_crossed.py)."""
        if len(model.layout.groups) < 2:
            return "auto chooses it only for crossed factors (one here); sampler='mwg' forces it"
        if model.family.name not in AUTO_FAMILIES:
            return (f"auto chooses it only for {' and '.join(AUTO_FAMILIES)} responses, where it was measured "
                    "against NUTS; sampler='mwg' forces it")
        return None

    def suits(self, model: Model) -> str:
        names = [g.name for g in model.layout.groups]
        kind = "crossed" if len(names) > 1 else "one"
        reason = (f"{model.family.name} with {kind} random-intercept factor{'s' if len(names) > 1 else ''} "
                  f"({', '.join(names)}): per-level Newton proposals, effects centred on the intercept and the "
                  "level-constant fixed effects")
        if self.declines(model) is None:
            reason += ("; auto's rule: crossed random intercepts with a binary or binomial response, where it "
                       "measured 10.6 times NUTS's min bulk ESS per second of the whole process (50,000 rows, "
                       "2,400 × 27 crossed levels, benchmarks/bench_crossed.py)")
        return reason

    def run(self, model: Model, seed: int, options: Options) -> Draws:
        """Chains start from jittered points near the data, effects at 0; the first
        ``warmup`` sweeps are discarded (nothing is adapted)."""
        data, struct = mwg_data(model)
        rng = np.random.default_rng(seed)
        starts = [_initial_state(model, rng, data) for _ in range(options.chains)]
        run = run_chains(mwg_kernel(struct), starts, data, num_warmup=options.warmup, num_draws=options.draws,
                         rng=np.random.default_rng([seed, 0]), progress=options.progress,
                         compiler_options=COMPILER_OPTIONS)
        b, aux, sd, effects = run.positions
        names = [g.name for g in model.layout.groups]
        rates = run.stats.pop("accept_effects")
        stats = {f"accept_{name}": rates[..., k] for k, name in enumerate(names)}
        moves = run.stats.pop("accept_translation")
        stats.update({f"accept_translation_{name}": moves[..., k] for k, name in enumerate(names)
                      if struct.level_columns[k]})
        stats["accept_fixed"] = run.stats.pop("accept_fixed").astype(float)
        details = {"updates": "per-level Newton MH for each factor's effects, Newton MH for the fixed effects, "
                              "translation of each factor against its level-constant fixed effects "
                              f"({', '.join(f'{n}: {len(c)}' for n, c in zip(names, struct.level_columns))}), "
                              "slice sampling of the sds "
                              "(centred and non-centred)" + (" and the shape" if model.family.name == "negbinomial"
                                                             else ""),
                   "acceptance": {name: float(np.mean(v)) for name, v in stats.items()}}
        return Draws(np.asarray(b), np.asarray(aux).reshape(b.shape[:2] + (len(model.layout.aux),)),
                     tuple(np.asarray(sd)[..., k:k + 1] for k in range(len(names))),
                     (None,) * len(names), tuple(np.asarray(e)[..., None] for e in effects), stats,
                     SamplerInfo(run.compile_seconds, run.sampling_seconds, False, details))


#: The Metropolis-within-Gibbs sampler.
MWG = MwgSampler()
