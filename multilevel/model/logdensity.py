"""The log posterior density of the full model, as a pure function.

Unconstrained position (a :class:`Position`):

* ``b`` (p,): fixed effects, unconstrained already (a smooth's penalised ones as standard
  normals, scaled by their ``sds``: :mod:`multilevel.model.penalties`);
* ``aux`` (k,): the family's positive parameters through their prior's map to (0, ∞);
* ``sd[t]`` (q,): the sds of group term t, likewise;
* ``cor[t]`` (q(q-1)/2,): the Cholesky factor ``L`` of its correlation matrix,
  through :class:`numpyro.distributions.transforms.CorrCholeskyTransform`
  (None for a term without correlations); a compound-symmetric term (``cs(x | g)``)
  has one sd and one correlation, ``sd[t]`` and ``cor[t]`` of shape (1,)
  (:mod:`multilevel.model.compound`);
* ``z[t]`` (levels, q): the group effects of term t, non-centred or centred
  as ``data.centering[t]`` says (data, not structure: one compiled density
  serves every choice, and a sampler may switch after a pilot run).

Non-centred, the position holds standard-normal ``z[l]`` and the group effects
are ``r[l] = diag(sd) L z[l]`` (``L = I`` for ``||`` terms). Centred, it holds
the level's total effect ``beta[l] = r[l] + o[l]``: the effects around their
parent term's totals for nested terms, or around the fixed effect ``b[k]`` of
the same column (:mod:`multilevel.model.hierarchy`), so that the data pin
``beta`` alone and no ridge joins ``b`` or the effects above and the level's
effects (hierarchical centring, Gelfand, Sahu & Carlin 1995); the map
``(b, beta) -> (b, r)`` is unit-triangular, so it adds no Jacobian. The linear predictor is ``eta = X b + sum_t sum_j zcol_t[:, j] r_t[refs_t, j]``
(plus the offset, if the formula has one); a distributional model has one per
predicted parameter too (:mod:`multilevel.model.predictors`), and ``aux`` holds
only the parameters without a formula.

.. math::
   \\log p = \\sum_i w_i \\log p(y_i | \\eta_i, aux) + \\sum \\log p(\\theta)
             + \\log |J| - \\tfrac12 \\sum z^2 ,

with ``w_i`` the row weights of ``weights(w)`` (1 without): brms's weighted
likelihood, and the pointwise log-likelihood of WAIC, LOO and DIC is weighted the
same way. Known standard errors (``se(s)``) enter the family's ``sigma``
(:mod:`multilevel.model.predictors`); censored and truncated rows (``cens()``,
``trunc()``) contribute their probability mass (:mod:`multilevel.model.bounded`).
"""

from __future__ import annotations

from functools import lru_cache, partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions.transforms import CorrCholeskyTransform

from ..design import Design
from ..design.bounds import ResponseBounds
from ..design.summary import DataSummary
from . import compound
from .families import Family, Param, get_link
from .hierarchy import TermCentering, centering_arrays, term_offset, term_order
from .layout import Layout, Term
from .penalties import Penalty, fixed_log_prior, penalised_effects
from .batching import BATCH, map_batches
from .bounded import bounded_log_likelihood
from .predictors import Predictors
from .prior_table import PriorSet, PriorValues, column_scale
from .priors import InverseWishart

_CORR = CorrCholeskyTransform()


class ModelData(NamedTuple):
    """Everything data-dependent the log density reads: a pytree of arrays and priors."""

    y: jax.Array
    X: jax.Array
    refs: tuple[jax.Array, ...]
    z: tuple[jax.Array, ...]
    priors: PriorValues
    offset: jax.Array | None = None
    trials: jax.Array | None = None
    #: Where each group term's effects sit (:class:`~multilevel.model.hierarchy.TermCentering`).
    centering: tuple[TermCentering, ...] = ()
    #: Known standard errors of ``se()`` and row weights of ``weights()`` (None without).
    se: jax.Array | None = None
    weights: jax.Array | None = None
    #: Censoring codes and truncation windows of ``cens()`` and ``trunc()`` (None without).
    bounds: ResponseBounds | None = None
    #: Per fixed column, 1 where a smooth's penalised coefficient is held centred (None: all
    #: non-centred; :mod:`multilevel.model.penalties`).
    penalty_centred: jax.Array | None = None
    #: The family's :meth:`~multilevel.model.families.Family.log_normaliser` per row (None: not
    #: split off, or the rows are censored or truncated).
    normaliser: jax.Array | None = None


class Structure(NamedTuple):
    """The static shape of a model: what the compiled log density depends on (``penalties``:
    the smooths' penalised blocks, :mod:`multilevel.model.penalties`)."""

    family: Family
    terms: tuple[Term, ...]
    predictors: Predictors
    penalties: tuple[Penalty, ...] = ()


def model_data(design: Design, priors: PriorSet, centered: tuple[bool, ...] | None = None,
               sds: list | None = None, family: Family | None = None) -> ModelData:
    """Arrays of the design as float64 JAX arrays (call inside ``jax.enable_x64``);
    ``centered``: the parameterisation of each group term (default non-centred),
    ``sds``: guesses of the terms' sds, which decide which of crossed centred terms
    carries a fixed effect (:func:`~multilevel.model.hierarchy.centering_arrays`);
    ``family``: the model's, whose data-only part of the log-likelihood is then computed
    here, once (:attr:`ModelData.normaliser`), instead of at every evaluation."""
    data = ModelData(
        y=jnp.asarray(design.y, dtype=jnp.float64),
        X=jnp.asarray(design.X, dtype=jnp.float64),
        refs=tuple(jnp.asarray(g.refs) for g in design.groups),
        z=tuple(jnp.asarray(g.z, dtype=jnp.float64) for g in design.groups),
        priors=jax.tree_util.tree_map(lambda v: jnp.asarray(v, dtype=jnp.float64), priors.values()),
        offset=None if design.offset is None else jnp.asarray(design.offset, dtype=jnp.float64),
        trials=None if design.trials is None else jnp.asarray(design.trials, dtype=jnp.float64),
        centering=centering_arrays(design, centered, sds),
        se=None if design.se is None else jnp.asarray(design.se, dtype=jnp.float64),
        weights=None if design.weights is None else jnp.asarray(design.weights, dtype=jnp.float64),
        bounds=None if design.bounds is None else jax.tree_util.tree_map(
            lambda v: jnp.asarray(v, dtype=jnp.float64), design.bounds),
    )
    if family is None or data.bounds is not None:
        return data
    return data._replace(normaliser=family.log_normaliser(data.y, data.trials))


def structure(layout: Layout, family: Family) -> Structure:
    return Structure(family, layout.terms(), Predictors.of(layout, family), layout.penalties)


class Position(NamedTuple):
    """The unconstrained position, a pytree (see the module notes).

    ``cor[t]`` is None for a term without correlations. The collapsed sampler's
    position has no group effects (``z == ()``) and, when the fixed effects are
    integrated out, ``b`` None.
    """

    b: jax.Array | None
    aux: jax.Array
    sd: tuple[jax.Array, ...]
    cor: tuple[jax.Array | None, ...]
    z: tuple[jax.Array, ...] = ()


def zero_position(layout: Layout) -> Position:
    """The full model's unconstrained position at zero (float64 numpy arrays): every
    positive parameter 1 (above its lower bound), correlations 0, effects 0."""
    return Position(np.zeros(len(layout.fixed)), np.zeros(len(layout.aux)),
                    tuple(np.zeros(_num_sds(g)) for g in layout.groups),
                    tuple(np.zeros(_num_cors(g)) if g.has_cor else None for g in layout.groups),
                    tuple(np.zeros((len(g.levels), g.q)) for g in layout.groups))


def _num_sds(g) -> int:
    """How many sds a group term's position holds: one per column, one if compound-symmetric."""
    return 1 if g.compound else g.q


def _num_cors(g) -> int:
    """How many unconstrained correlation coordinates a correlated term's position holds."""
    return 1 if g.compound else g.q * (g.q - 1) // 2


class Params(NamedTuple):
    """Constrained parameters of one draw."""

    b: jax.Array
    aux: jax.Array
    sd: tuple[jax.Array, ...]
    chol: tuple[jax.Array | None, ...]
    effects: tuple[jax.Array, ...]  # (levels, q) per term


def to_support(prior, param: Param | None, u):
    """A family parameter from its unconstrained value by its support: ``(x, log|dx/du|)``
    (positive above ``param.lower`` if ``param`` is None)."""
    if param is not None and param.support == "unit":
        return prior.to_unit(u)
    return prior.to_positive(u, 0.0 if param is None else param.lower)


def from_support(prior, param: Param | None, x):
    """The unconstrained value of a family parameter ``x`` (inverse of :func:`to_support`)."""
    if param is not None and param.support == "unit":
        return prior.from_unit(x)
    return prior.from_positive(x, 0.0 if param is None else param.lower)


def constrain_scales(position: Position, priors: PriorValues, terms: tuple[Term, ...],
                     aux_params: tuple[Param, ...] = ()) -> tuple:
    """Auxiliary parameters, group sds and correlation factors from a position.

    Returns ``(aux, sds, chols, log_prior, log_jac)``; ``terms`` gives each group
    term's shape, ``priors`` the pytree of :meth:`PriorSet.values`, ``aux_params`` the
    family's parameters (their support and lower bound; positive if empty). A
    term whose covariance has an InverseWishart prior takes it on (sds, correlation
    factor) jointly.
    """
    aux_priors, sd_priors, cor_priors = priors.aux, priors.sd, priors.cor
    log_prior = jnp.zeros(())
    log_jac = jnp.zeros(())
    aux, previous = [], None
    for j, p in enumerate(aux_priors):
        param = aux_params[j] if j < len(aux_params) else None   # a smooth's sd after the family's
        if param is not None and param.support == "ordered":   # a run of increasing values
            u = position.aux[j]
            value, jac = (u, jnp.zeros(())) if previous is None else (previous + jnp.exp(u), u)
            previous = value
        else:
            value, jac = to_support(p, param, position.aux[j])
        aux.append(value)
        log_prior += p.log_prob(value)
        log_jac += jac
    sds, chols = [], []
    for t, term in enumerate(terms):
        if term.compound:
            sd, jac_sd = sd_priors[t][0].to_positive(position.sd[t][0])
            rho, jac_rho = compound.correlation(position.cor[t][0], term.q)
            log_prior += sd_priors[t][0].log_prob(sd) + compound.log_prior(rho, term.q, cor_priors[t].eta)
            log_jac += jac_sd + jac_rho
            sds.append(jnp.full(term.q, sd))
            chols.append(compound.cholesky(rho, term.q))
            continue
        covariance_prior = isinstance(cor_priors[t], InverseWishart)
        sd = []
        for j, p in enumerate(sd_priors[t]):
            value, jac = p.to_positive(position.sd[t][j])
            sd.append(value)
            if not covariance_prior:
                log_prior += p.log_prob(value)
            log_jac += jac
        sd = jnp.stack(sd)
        chol = None
        if term.has_cor:
            u = position.cor[t]
            chol = _CORR(u)
            log_jac += _CORR.log_abs_det_jacobian(u, chol)
            log_prior += (cor_priors[t].log_prob_scales(sd, chol) if covariance_prior
                          else cor_priors[t].log_prob(chol))
        sds.append(sd)
        chols.append(chol)
    aux = jnp.stack(aux) if aux else jnp.zeros(0)
    return aux, tuple(sds), tuple(chols), log_prior, log_jac


def constrain(position: Position, data: ModelData, struct: Structure) -> tuple[Params, jax.Array, jax.Array]:
    """Constrained parameters, the log prior density and the log-Jacobian."""
    aux, sds, chols, log_prior, log_jac = constrain_scales(position, data.priors, struct.terms,
                                                           struct.predictors.free(struct.family))
    log_prior += fixed_log_prior(position.b, data.priors.fixed, struct.penalties, aux, data.penalty_centred)
    b = penalised_effects(position.b, aux, struct.penalties, data.penalty_centred)
    effects, totals = [None] * len(struct.terms), [None] * len(struct.terms)
    for t in term_order([w.shape[0] for w in position.z]):
        has_cor, sd, chol = struct.terms[t].has_cor, sds[t], chols[t]
        w = position.z[t]
        centred = data.centering[t].centred
        o = term_offset(t, b, totals, data.centering)
        r_centred = w - o
        if has_cor:
            on = centred[0] > 0.5
            z_centred = jax.scipy.linalg.solve_triangular(chol, (r_centred / sd).T, lower=True).T
            r = jnp.where(on, r_centred, (w @ chol.T) * sd)
            z = jnp.where(on, z_centred, w)
            log_prior -= centred[0] * w.shape[0] * (jnp.sum(jnp.log(sd)) + jnp.sum(jnp.log(jnp.diagonal(chol))))
        else:
            on = centred > 0.5
            r = jnp.where(on, r_centred, w * sd)
            z = jnp.where(on, r_centred / sd, w)
            log_prior -= w.shape[0] * jnp.sum(centred * jnp.log(sd))
        log_prior += -0.5 * jnp.sum(z * z)
        effects[t], totals[t] = r, r + o
    return Params(b, aux, sds, chols, tuple(effects)), log_prior, log_jac


@partial(jax.jit, static_argnums=3)
def recentre(position: Position, data: ModelData, centering: tuple, struct: Structure) -> Position:
    """The same point of the parameter space as a position under ``centering`` (of
    :func:`centering_arrays`) instead of ``data.centering``; ``position`` may carry
    leading batch axes (chains)."""
    def one(p):
        params = constrain(p, data, struct)[0]
        out = list(p.z)
        totals = [None] * len(struct.terms)
        for t in term_order([r.shape[0] for r in params.effects]):
            has_cor, sd, chol, r = struct.terms[t].has_cor, params.sd[t], params.chol[t], params.effects[t]
            totals[t] = r + term_offset(t, params.b, totals, centering)
            z = r / sd
            if has_cor:
                z = jax.scipy.linalg.solve_triangular(chol, z.T, lower=True).T
            out[t] = jnp.where(centering[t].centred > 0.5, totals[t], z)
        return p._replace(z=tuple(out))

    leading = position.aux.ndim - 1
    for _ in range(leading):
        one = jax.vmap(one)
    return one(position)


def family_arguments(params: Params, data: ModelData, predictors: Predictors, family: Family) -> tuple:
    """``(eta, parameters)`` of the family's functions at one draw's parameters."""
    etas = predictors.etas(params.b, params.effects, data.X, data.refs, data.z, data.offset)
    return predictors.family_arguments(family, etas, params.aux, data.se)


def weighted(loglik: jax.Array, data: ModelData) -> jax.Array:
    """Pointwise log-likelihoods times the row weights (as they are without weights)."""
    return loglik if data.weights is None else data.weights * loglik


def row_log_likelihood(params: Params, data: ModelData, struct: Structure) -> jax.Array:
    """``w_i log p(y_i | θ)`` for every row at one draw's parameters."""
    eta, aux = family_arguments(params, data, struct.predictors, struct.family)
    if data.normaliser is not None:
        return weighted(struct.family.log_kernel(data.y, eta, aux, data.trials) + data.normaliser, data)
    return weighted(bounded_log_likelihood(struct.family, data.y, eta, aux, data.trials, data.bounds), data)


@lru_cache(maxsize=None)
def make_logdensity(struct: Structure):
    """The log posterior density ``f(position, data)`` for a model structure.

    Cached by structure, so every fit of the same structure shares one
    function object and JAX compiles it once per data shape.
    """

    def logdensity(position: Position, data: ModelData) -> jax.Array:
        params, log_prior, log_jac = constrain(position, data, struct)
        loglik = jnp.sum(row_log_likelihood(params, data, struct))
        return loglik + log_prior + log_jac

    return logdensity


def initial_position(rng: np.random.Generator, summary: DataSummary, layout: Layout, priors: PriorSet,
                     family: Family, resid_sd: float | None = None) -> Position:
    """A starting point near the data: ridge fixed effects, residual sd, small effects
    (non-centred; :func:`recentre` moves it to another parameterisation).

    Computed from the data summary alone (no rows needed), and jittered so that
    chains start apart (R-hat needs overdispersed starts). For a family with a
    link, ``summary`` is that of the working response (the response on the link
    scale, less the offset); the family's parameters start at
    :meth:`Family.initial_aux` (``resid_sd``, default the residual sd of the ridge fit,
    where it has no start), a predicted
    parameter by its formula's intercept, its other coefficients 0.
    """
    mean = [j for j, d in enumerate(layout.fixed_dpars) if not d]
    p = len(mean)
    scale = np.sqrt(np.maximum(np.diag(summary.XtX)[mean] / summary.n, 1e-12))
    gram = summary.XtX[np.ix_(mean, mean)] / np.outer(scale, scale)
    b_mean = np.linalg.solve(gram + 1e-3 * summary.n * np.eye(p), summary.Xty[mean] / scale) / scale \
        if p else np.zeros(0)
    resid_ss = summary.y_sumsq - 2 * b_mean @ summary.Xty[mean] + b_mean @ summary.XtX[np.ix_(mean, mean)] @ b_mean
    fitted_sd = float(np.sqrt(max(resid_ss / summary.n, 1e-12)))
    b = np.zeros(len(layout.fixed))
    b[mean] = b_mean + rng.normal(0, 0.1, p) * fitted_sd / scale
    starts = dict(zip(family.aux, family.initial_aux(fitted_sd if resid_sd is None else resid_sd)))
    for param in family.params:
        if param.name in layout.dpars and f"{param.name}_Intercept" in layout.fixed:
            value = get_link(param.link)(np.asarray(max(starts[param.name] - param.lower, 1e-6)))
            b[layout.fixed.index(f"{param.name}_Intercept")] = float(value) + rng.uniform(-0.5, 0.5)
    aux, previous = [], None
    free = [param for param in family.params if param.name in layout.aux]
    for pp, param in zip(priors.aux, free):
        a = starts[param.name]
        if param.support == "ordered":
            aux.append(a if previous is None else np.log(max(a - previous, 1e-3)))
            previous = a
        else:
            aux.append(float(from_support(pp.prior, param, a)))
    aux += [float(pp.prior.from_positive(0.5 * fitted_sd)) for pp in priors.aux[len(free):]]   # smooths' sds
    aux = np.asarray(aux, dtype=float) + rng.uniform(-0.5, 0.5, len(priors.aux))
    for penalty in layout.penalties:      # penalised coefficients non-centred: b / sds
        sd = float(np.asarray(priors.aux[penalty.aux].prior.to_positive(aux[penalty.aux])[0]))
        b[list(penalty.columns)] /= sd
    sds, cors, zs = [], [], []
    for t, g in enumerate(layout.groups):
        unit = np.where(np.array(g.dpars) == "", fitted_sd, 1.0)
        sd = 0.5 * unit / np.array([column_scale(s) for s in summary.z_sd(t)])
        sd = sd * np.exp(rng.uniform(-1, 1, g.q))
        if g.compound:
            sd = np.full(1, np.exp(np.mean(np.log(sd))))
        sds.append(np.array([float(pp.prior.from_positive(s)) for pp, s in zip(priors.sd[t], sd)]))
        cors.append(rng.uniform(-0.5, 0.5, _num_cors(g)) if g.has_cor else None)
        zs.append(rng.uniform(-1, 1, (len(g.levels), g.q)))
    return Position(b, aux, tuple(sds), tuple(cors), tuple(zs))


@partial(jax.jit, static_argnums=2)
def _pointwise(draws, data: ModelData, struct: Structure):
    def one(b_s, aux_s, effects_s):
        return row_log_likelihood(Params(b_s, aux_s, (), (), effects_s), data, struct)

    return jax.vmap(one)(*draws)


@partial(jax.jit, static_argnums=2)
def _deviance(draws, data: ModelData, struct: Structure):
    return -2.0 * jnp.sum(_pointwise(draws, data, struct), axis=-1)


def _flat_draws(b: np.ndarray, aux: np.ndarray, effects: list[np.ndarray]) -> tuple:
    flat = lambda a: a.reshape((b.shape[0] * b.shape[1],) + a.shape[2:])  # noqa: E731
    return flat(b), flat(aux), tuple(flat(e) for e in effects)


def _batch(data: ModelData) -> int:
    """Draws per batch: O(batch × rows) memory, whatever the number of draws."""
    return max(1, min(BATCH, 2_000_000 // max(data.y.shape[0], 1)))


def deviance(b: np.ndarray, aux: np.ndarray, effects: list[np.ndarray], data: ModelData,
             struct: Structure) -> np.ndarray:
    """``D(θ_s) = -2 Σ_i w_i log p(y_i | θ_s)`` for every draw: shape ``(chain, draw)``.

    Memory O(batch × rows), whatever the number of draws (the pointwise values
    are summed, not kept).
    """
    values = map_batches(_deviance, _flat_draws(b, aux, effects), data, struct, batch=_batch(data))
    return values.reshape(b.shape[:2])


def pointwise_log_likelihood(b: np.ndarray, aux: np.ndarray, effects: list[np.ndarray],
                             data: ModelData, struct: Structure) -> np.ndarray:
    """``w_i log p(y_i | theta_s)`` for every draw s and row i (``w_i = 1`` without weights):
    shape ``(chain, draw, n)``."""
    values = map_batches(_pointwise, _flat_draws(b, aux, effects), data, struct, batch=_batch(data))
    return values.reshape(b.shape[:2] + (-1,))
