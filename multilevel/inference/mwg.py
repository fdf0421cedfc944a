r"""Metropolis-within-Gibbs for GLMMs with group terms of one or several (correlated or
independent) effects per level, one term per grouping factor, crossed or single.

Model: ``η = X b + Σ_k Σ_c z_{kc} r_{k,l_k(i),c} + o_i``, ``y_i ~ f(y | η_i, θ)``,
``r_{k,l} ~ N(0, Σ_k)`` (bernoulli, binomial, poisson, negbinomial; θ the negative
binomial's shape; ``Σ_k = D_k C_k C_kᵀ D_k`` with sds ``D_k`` and an LKJ-distributed
correlation factor ``C_k``, the identity for a random intercept or an ``||`` term).
After Papaspiliopoulos, Stumpf-Fétizon & Zanella (2023), one sweep is:

1. For each factor k, every level's effect vector by a Newton (Laplace) proposal from its
   conditional given everything else, accepted level by level (two passes over the rows:
   :func:`.levelnewton.newton_levels` for a random intercept,
   :func:`.levelnewton.newton_term` with the q × q Hessian for several columns).
2. The fixed effects jointly by a Student-t proposal at their conditional mode given the effects
   (:func:`.levelnewton.newton_fixed`).
3. For each factor k, the translation ``(b_T, r_{k,l}) → (b_T + δ, r_{k,l} - A_{k,l} δ)`` of
   the fixed-effect columns ``T`` that the term repeats: for its intercept, the columns
   constant within its levels (the intercept and the level's own covariates); for a slope
   on a fixed column, that column (:func:`.termcovariance.translate`). It leaves η
   unchanged; δ is drawn from its Gaussian conditional without the priors of ``b_T`` and
   accepted with their ratio (O(levels), no pass over the rows). This is the local centring
   of the effects: without it those fixed effects and the effects' mean, which the data
   inform only through their sum, move by the conditional sd of ``b`` given the effects,
   about ``1/√rows``.
4. For each factor k its covariance given the effects: each sd (and each unconstrained
   correlation coordinate) by slice sampling (:func:`.conditionals.slice_scale` for a
   random intercept, :func:`.termcovariance.slice_covariance` otherwise); then each sd
   by slice sampling given the standardised effects (the non-centred direction: the
   effects' column scales with its sd; one pass over the rows per slice evaluation),
   which mixes where the levels are weakly informed.
5. The negative binomial's shape by slice sampling on its log.

Each sweep costs a fixed number of passes over the rows (about ``4 K + 2`` plus the
slice evaluations of step 4, one set per sd, and 5), vectorised over rows and levels.
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
from ..model.priors import InverseWishart
from .conditionals import slice_sample, slice_scale
from .driver import Kernel, run_chains
from .levelnewton import level_modes, newton_fixed, newton_levels, newton_term
from .sampler import Draws, Options, SamplerInfo, bounded_response_problem, predicted_parameters_problem
from .termcovariance import (correlation_cholesky, correlation_noncentred, precision, scale_noncentred, slice_covariance,
                             translate)

#: The families the sampler takes (log-concave in the linear predictor).
FAMILIES = ("bernoulli", "binomial", "poisson", "negbinomial")
#: The families ``auto`` chooses it for, with crossed factors (the case measured).
AUTO_FAMILIES = ("bernoulli", "binomial")


class MwgData(NamedTuple):
    """The rows (response, trials, offset, fixed-effect columns, per term its level
    references and columns) and the priors."""

    y: jax.Array
    trials: jax.Array | None
    offset: jax.Array
    X: jax.Array
    refs: tuple[jax.Array, ...]
    z: tuple[jax.Array | None, ...]       # per term (rows, q); None for a random intercept alone
    shifts: tuple[jax.Array, ...]         # per term the translation maps A_l, (levels, q, |T_k|)
    priors: PriorValues


class MwgStructure(NamedTuple):
    """Static: the family, per term its number of levels and columns, whether it is
    correlated, and the fixed-effect columns it translates (``T_k``)."""

    family: Family
    levels: tuple[int, ...]
    q: tuple[int, ...]
    correlated: tuple[bool, ...]
    shift_columns: tuple[tuple[int, ...], ...]


class MwgState(NamedTuple):
    """A chain's state: fixed effects, family parameters, per term its sds (q,), its
    correlation factor's unconstrained coordinates and its effects (levels, q), and the
    linear predictor they give."""

    b: jax.Array
    aux: jax.Array
    sd: tuple[jax.Array, ...]
    cor: tuple[jax.Array, ...]
    effects: tuple[jax.Array, ...]
    eta: jax.Array


def _loglik(struct: MwgStructure, data: MwgData, aux: jax.Array):
    return lambda eta: struct.family.log_likelihood(data.y, eta, aux, data.trials)


def _fixed_log_prior(priors: PriorValues):
    def log_prior(b):
        return sum(p.log_prob(b[j]) for j, p in enumerate(priors.fixed))
    return log_prior


def _column(data: MwgData, t: int, effects: jax.Array, j: int) -> jax.Array:
    """Per row, what column ``j`` of term ``t``'s effects adds to η."""
    values = effects[data.refs[t], j]
    return values if data.z[t] is None else data.z[t][:, j] * values


def _contribution(data: MwgData, t: int, effects: jax.Array) -> jax.Array:
    """Per row, what term ``t``'s effects add to η."""
    if data.z[t] is None:
        return effects[data.refs[t], 0]
    return jnp.sum(data.z[t] * effects[data.refs[t]], axis=1)


def mwg_step(key: jax.Array, state: MwgState, data: MwgData, struct: MwgStructure):
    """One sweep (steps 1-5 of the module notes)."""
    K = len(struct.levels)
    keys = iter(jax.random.split(key, 5 * K + 2))
    b, aux, eta = state.b, state.aux, state.eta
    sds, cors, effects = list(state.sd), list(state.cor), list(state.effects)
    loglik = _loglik(struct, data, aux)
    precisions = [precision(sds[t], correlation_cholesky(cors[t], struct.q[t])) for t in range(K)]
    accepted, translated = [], [jnp.ones(())] * K
    for t in range(K):
        base = eta - _contribution(data, t, effects[t])
        if data.z[t] is None:
            moved, acc = newton_levels(next(keys), loglik, base, data.refs[t], effects[t][:, 0], sds[t][0])
            effects[t] = moved[:, None]
        else:
            effects[t], acc = newton_term(next(keys), loglik, base, data.refs[t], data.z[t], effects[t],
                                          precisions[t])
        eta = base + _contribution(data, t, effects[t])
        accepted.append(jnp.mean(acc))
    base = eta - data.X @ b
    b, acc_b = newton_fixed(next(keys), loglik, _fixed_log_prior(data.priors), base, data.X, b)
    eta = base + data.X @ b
    for t in range(K):
        priors = data.priors.sd[t]
        if struct.shift_columns[t]:
            b, effects[t], acc = translate(next(keys), b, effects[t], precisions[t], data.shifts[t],
                                           struct.shift_columns[t], data.priors)
            translated[t] = acc.astype(jnp.float64)
        if struct.q[t] == 1:
            sds[t] = slice_scale(next(keys), priors[0], struct.levels[t], jnp.sum(effects[t] ** 2), sds[t][0])[None]
        else:
            sds[t], cors[t] = slice_covariance(next(keys), effects[t], sds[t], cors[t], priors, data.priors.cor[t])
        column_key = next(keys)
        column_keys = jax.random.split(column_key, struct.q[t]) if struct.q[t] > 1 else [column_key]
        for j, sub in enumerate(column_keys):
            s, ratio, eta = scale_noncentred(sub, loglik, eta, _column(data, t, effects[t], j), sds[t][j], priors[j])
            sds[t], effects[t] = sds[t].at[j].set(s), effects[t].at[:, j].multiply(ratio)
        if struct.correlated[t]:
            cors[t], effects[t], eta = correlation_noncentred(next(keys), loglik, eta, data.refs[t], data.z[t],
                                                              effects[t], sds[t], cors[t], data.priors.cor[t])
    if struct.family.name == "negbinomial":
        prior = data.priors.aux[0]

        def log_shape(u):
            shape, log_jac = prior.to_positive(u)
            return jnp.sum(_loglik(struct, data, shape[None])(eta)) + prior.log_prob(shape) + log_jac

        aux = prior.to_positive(slice_sample(next(keys), log_shape, prior.from_positive(aux[0]), 0.5))[0][None]
    state = MwgState(b, aux, tuple(sds), tuple(cors), tuple(effects), eta)
    chols = tuple(correlation_cholesky(cors[t], struct.q[t]) if struct.correlated[t] else None for t in range(K))
    info = {"position": (b, aux, state.sd, chols, state.effects),
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
    for g, cor in zip(groups, model.priors.values().cor):
        if g.compound:
            return f"the term of {g.name} is compound-symmetric (cs())"
        if isinstance(cor, InverseWishart):
            return f"the covariance of {g.name} has an InverseWishart prior (LKJ on its correlations is supported)"
    return None


def mwg_data(model: Model) -> tuple[MwgData, MwgStructure]:
    """The rows and priors as arrays, and the static structure."""
    design = model.design
    num = design.num_rows
    as_float = lambda v: jnp.asarray(v, jnp.float64)  # noqa: E731
    refs = tuple(jnp.asarray(g.refs, jnp.int32) for g in design.groups)
    z = tuple(None if g.columns == ("Intercept",) else as_float(g.z) for g in design.groups)
    maps = [translation_map(design.X, model.layout.fixed, g) for g in design.groups]
    data = MwgData(as_float(design.y), None if design.trials is None else as_float(design.trials),
                   as_float(np.zeros(num) if design.offset is None else design.offset), as_float(design.X), refs, z,
                   tuple(as_float(shift) for _, shift in maps), jax.tree_util.tree_map(as_float, model.priors.values()))
    groups = model.layout.groups
    return data, MwgStructure(model.family, tuple(len(g.levels) for g in design.groups), tuple(g.q for g in groups),
                              tuple(g.has_cor for g in groups), tuple(columns for columns, _ in maps))


def translation_map(X: np.ndarray, fixed: tuple[str, ...], group) -> tuple[tuple[int, ...], np.ndarray]:
    """The fixed columns ``T`` a term translates and its maps ``A_l`` (levels, q, |T|)
    (module notes, step 3): the level-constant columns for its intercept, and each fixed
    column equal to one of its other columns."""
    num, q = len(group.levels), len(group.columns)
    slopes = {c: fixed.index(name) for c, name in enumerate(group.columns)
              if name != "Intercept" and name in fixed and np.array_equal(X[:, fixed.index(name)], group.z[:, c])}
    constant = ()
    if "Intercept" in group.columns:
        constant = tuple(j for j in level_columns(X, group.refs, num) if j not in slopes.values())
    shift = np.zeros((num, q, len(constant) + len(slopes)))
    if constant:
        shift[:, group.columns.index("Intercept"), :len(constant)] = _level_values(X[:, list(constant)], group.refs,
                                                                                   num)
    for m, c in enumerate(slopes):
        shift[:, c, len(constant) + m] = 1.0
    return constant + tuple(slopes.values()), shift


def _level_values(X: np.ndarray, refs: np.ndarray, num: int) -> np.ndarray:
    """Each level's mean of the columns of ``X`` (levels × columns); 0 for a level without rows."""
    counts = np.maximum(np.bincount(refs, minlength=num), 1)
    return np.stack([np.bincount(refs, X[:, j], minlength=num) for j in range(X.shape[1])], axis=1).reshape(
        num, X.shape[1]) / counts[:, None]


def level_columns(X: np.ndarray, refs: np.ndarray, num: int) -> tuple[int, ...]:
    """The fixed-effect columns constant within every level of a factor and linearly
    independent across its levels (kept in column order: the intercept first)."""
    means = _level_values(X, refs, num)
    constant = np.all(np.abs(X - means[refs]) <= 1e-12 * (1.0 + np.abs(X)), axis=0)
    kept: list[int] = []
    for j in np.flatnonzero(constant):
        if np.linalg.matrix_rank(means[:, kept + [j]]) == len(kept) + 1:
            kept.append(int(j))
    return tuple(kept)


#: Rounds over the factors of :func:`_level_mode_start`.
START_ROUNDS = 3


@lru_cache(maxsize=None)
def _level_mode_start(struct: MwgStructure):
    """A compiled map of a state to the same state with every term's effects at their
    conditional modes given the fixed effects, the sds and the other terms' effects
    (:func:`.levelnewton.level_modes`, ``START_ROUNDS`` rounds over the factors)."""

    def start(state: MwgState, data: MwgData) -> MwgState:
        loglik = _loglik(struct, data, state.aux)

        def round_(_, carry):
            effects, eta = list(carry[0]), carry[1]
            for t in range(len(struct.levels)):
                base = eta - _contribution(data, t, effects[t])
                z = jnp.ones((base.shape[0], 1)) if data.z[t] is None else data.z[t]
                effects[t] = level_modes(loglik, base, data.refs[t], z, effects[t],
                                         precision(state.sd[t], correlation_cholesky(state.cor[t], struct.q[t])))
                eta = base + _contribution(data, t, effects[t])
            return tuple(effects), eta

        effects, eta = jax.lax.fori_loop(0, START_ROUNDS, round_, (state.effects, state.eta))
        return state._replace(effects=effects, eta=eta)

    return jax.jit(start)


def _initial_state(model: Model, rng: np.random.Generator, data: MwgData, struct: MwgStructure) -> MwgState:
    """Fixed effects, family parameters, sds and correlations from the jittered NUTS start;
    effects at their conditional modes given those."""
    position = initial_position(rng, summarise(model.working_design()), model.layout, model.priors, model.family)
    aux, sds, _, _, _ = constrain_scales(position, data.priors, model.layout.terms(), model.family.params)
    b = jnp.asarray(position.b, jnp.float64)
    groups = model.layout.groups
    effects = tuple(jnp.zeros((len(g.levels), g.q)) for g in groups)
    cors = tuple(jnp.asarray(c if g.has_cor else np.zeros(0), jnp.float64) for g, c in zip(groups, position.cor))
    sd = tuple(jnp.asarray(s, jnp.float64).reshape(g.q) for g, s in zip(groups, sds))
    state = MwgState(b, jnp.asarray(aux, jnp.float64).reshape(-1), sd, cors, effects, data.offset + data.X @ b)
    return _level_mode_start(struct)(state, data)


class MwgSampler:
    """GLMMs with one group term per factor (crossed or single): per-level Newton proposals."""

    name = "mwg"

    def problem(self, model: Model) -> str | None:
        return mwg_problem(model)

    def declines(self, model: Model) -> str | None:
        """Why ``auto`` leaves a model it can fit to NUTS: the rule is crossed random
        intercepts and a binary or binomial response, the case measured
        (benchmarks/bench_crossed.py)."""
        if len(model.layout.groups) < 2:
            return "auto chooses it only for crossed factors (one here); sampler='mwg' forces it"
        if any(g.q > 1 for g in model.layout.groups):
            return "auto chooses it only for random intercepts (slopes here); sampler='mwg' forces it"
        if model.family.name not in AUTO_FAMILIES:
            return (f"auto chooses it only for {' and '.join(AUTO_FAMILIES)} responses, where it was measured "
                    "against NUTS; sampler='mwg' forces it")
        return None

    def suits(self, model: Model) -> str:
        groups = model.layout.groups
        kind = "crossed factors" if len(groups) > 1 else "one factor"
        terms = ", ".join(f"({' + '.join(g.columns)} {'|' if g.has_cor or g.q == 1 else '||'} {g.name})"
                          for g in groups)
        reason = (f"{model.family.name} with {kind} {terms}: per-level Newton proposals, effects centred on the "
                  "fixed effects their terms repeat")
        if self.declines(model) is None:
            reason += ("; auto's rule: crossed random intercepts with a binary or binomial response, where it "
                       "measured 10.6 times NUTS's min bulk ESS per second of the whole process (50,000 rows, "
                       "2,400 × 27 crossed levels, benchmarks/bench_crossed.py)")
        return reason

    def run(self, model: Model, seed: int, options: Options) -> Draws:
        """Chains start from jittered points near the data, effects at their conditional
        modes given those; the first ``warmup`` sweeps are discarded (nothing is adapted)."""
        data, struct = mwg_data(model)
        rng = np.random.default_rng(seed)
        starts = [_initial_state(model, rng, data, struct) for _ in range(options.chains)]
        run = run_chains(mwg_kernel(struct), starts, data, num_warmup=options.warmup, num_draws=options.draws,
                         rng=np.random.default_rng([seed, 0]), progress=options.progress,
                         compiler_options=COMPILER_OPTIONS)
        b, aux, sd, chol, effects = run.positions
        names = [g.name for g in model.layout.groups]
        rates = run.stats.pop("accept_effects")
        stats = {f"accept_{name}": rates[..., k] for k, name in enumerate(names)}
        moves = run.stats.pop("accept_translation")
        stats.update({f"accept_translation_{name}": moves[..., k] for k, name in enumerate(names)
                      if struct.shift_columns[k]})
        stats["accept_fixed"] = run.stats.pop("accept_fixed").astype(float)
        fixed = model.layout.fixed
        translated = ", ".join(f"{n}: {', '.join(fixed[j] for j in c) or 'none'}"
                               for n, c in zip(names, struct.shift_columns))
        details = {"updates": "per-level Newton MH for each factor's effects, Newton MH for the fixed effects, "
                              f"translation of each factor's effects against fixed effects ({translated}), "
                              "slice sampling of the sds and correlations given the effects and of the sds given "
                              "the standardised effects" + (" and of the shape" if model.family.name == "negbinomial"
                                                            else ""),
                   "acceptance": {name: float(np.mean(v)) for name, v in stats.items()}}
        return Draws(np.asarray(b), np.asarray(aux).reshape(b.shape[:2] + (len(model.layout.aux),)),
                     tuple(np.asarray(s) for s in sd), tuple(None if c is None else np.asarray(c) for c in chol),
                     tuple(np.asarray(e) for e in effects), stats,
                     SamplerInfo(run.compile_seconds, run.sampling_seconds, False, details))


#: The Metropolis-within-Gibbs sampler.
MWG = MwgSampler()
