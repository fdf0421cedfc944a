r"""Per-level Newton (Laplace) Metropolis–Hastings updates of random intercepts.

For a factor with levels ``l = 1..L``, rows ``i`` with level ``l(i)``, and the
rest of the linear predictor ``η₋ᵢ`` held fixed, the level effects are
conditionally independent:

.. math::

    \log p(r_l \mid \cdot) = \sum_{i: l(i)=l} \log f(y_i \mid η₋ᵢ + r_l) - \frac{r_l^2}{2 s^2} + c.

Its gradient ``G_l`` and (negative) curvature ``H_l`` are per-level sums of the
rows' first and second derivatives of ``log f`` in η (``jax.ops.segment_sum`` on
the level references), less the prior's ``r_l/s²`` and ``1/s²``. One Newton step
from the current value gives a Gaussian proposal ``N(r - G/H, -1/H)``; the
reverse proposal is the Newton step from the proposed value, and each level is
accepted or rejected on its own (Metropolis–Hastings, all levels at once): two
passes over the rows per factor. The fixed effects, with ``G = Xᵀg + ∇ log π(b)`` and
``H = Xᵀ diag(h) X + ∇² log π(b)``, are proposed instead from a Student-t at their
conditional mode, found by damped Newton iterations (:func:`newton_fixed`).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from ..model import linalg


def row_derivatives(loglik: Callable, eta: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(ℓ_i, ∂ℓ_i/∂η_i, ∂²ℓ_i/∂η_i²)`` of a row-wise log likelihood ``loglik(eta)``; the
    curvature clipped at 0 (every supported family is log-concave in η; the clip guards
    rounding)."""
    grad = jax.grad(lambda e: jnp.sum(loglik(e)))
    g, h = jax.jvp(grad, (eta,), (jnp.ones_like(eta),))
    return loglik(eta), g, jnp.minimum(h, 0.0)


def level_conditionals(loglik: Callable, base: jax.Array, refs: jax.Array, effects: jax.Array,
                       sd: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per level: the log conditional density (up to a constant), its gradient and its
    curvature at ``effects`` (levels,), the rows' predictor being ``base + effects[refs]``."""
    num = effects.shape[0]
    ll, g, h = row_derivatives(loglik, base + effects[refs])
    precision = 1.0 / sd ** 2
    log_density = jax.ops.segment_sum(ll, refs, num) - 0.5 * precision * effects ** 2
    gradient = jax.ops.segment_sum(g, refs, num) - precision * effects
    curvature = jax.ops.segment_sum(h, refs, num) - precision
    return log_density, gradient, curvature


def _log_proposal(to: jax.Array, frm: jax.Array, gradient: jax.Array, curvature: jax.Array) -> jax.Array:
    """``log N(to; frm - G/H, -1/H)`` up to ``-½ log 2π``."""
    precision = -curvature
    mean = frm + gradient / precision
    return 0.5 * jnp.log(precision) - 0.5 * precision * (to - mean) ** 2


def newton_levels(key: jax.Array, loglik: Callable, base: jax.Array, refs: jax.Array, effects: jax.Array,
                  sd: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One Newton-proposal MH update of every level's effect; ``(effects, accepted)``."""
    k_prop, k_acc = jax.random.split(key)
    lp0, g0, h0 = level_conditionals(loglik, base, refs, effects, sd)
    proposal = effects + g0 / -h0 + jax.random.normal(k_prop, effects.shape) / jnp.sqrt(-h0)
    lp1, g1, h1 = level_conditionals(loglik, base, refs, proposal, sd)
    log_ratio = (lp1 - lp0 + _log_proposal(effects, proposal, g1, h1)
                 - _log_proposal(proposal, effects, g0, h0))
    accepted = jnp.log(jax.random.uniform(k_acc, effects.shape)) < log_ratio
    return jnp.where(accepted, proposal, effects), accepted


def fixed_conditional(loglik: Callable, log_prior: Callable, base: jax.Array, X: jax.Array, b: jax.Array):
    """Log conditional density of the fixed effects ``b`` (p,), its gradient and Hessian,
    the rows' predictor being ``base + X b``."""
    ll, g, h = row_derivatives(loglik, base + X @ b)
    prior, prior_grad = jax.value_and_grad(log_prior)(b)
    hessian = X.T @ (h[:, None] * X) + jax.hessian(log_prior)(b)
    return jnp.sum(ll) + prior, X.T @ g + prior_grad, hessian


#: Degrees of freedom of the fixed effects' Student-t proposal (heavier tails than the
#: Laplace approximation, so the chain is not held where the conditional is wider).
FIXED_DF = 10.0
#: Newton steps at most in the search of the fixed effects' conditional mode, and the
#: Newton decrement ``Gᵀ(-H)⁻¹G`` under which it stops.
MODE_STEPS, MODE_TOLERANCE = 25, 1e-6
#: Step halvings at most per Newton step.
HALVINGS = 30


class ModeSearch(NamedTuple):
    """The Newton iteration's point, its log density, gradient and Hessian, the log
    density at its start, and the steps taken."""

    point: jax.Array
    log_density: jax.Array
    gradient: jax.Array
    hessian: jax.Array
    start_log_density: jax.Array
    steps: jax.Array


def conditional_mode(loglik: Callable, log_prior: Callable, base: jax.Array, X: jax.Array,
                     start: jax.Array) -> ModeSearch:
    r"""The mode of the fixed effects' conditional (:func:`fixed_conditional`) by damped
    Newton from ``start``: a deterministic function of ``start`` and the rows.

    Notes
    -----
    Each step is ``d = (-H)⁻¹G``, halved until ``log p(b + t d) ≥ log p(b) + 10⁻⁴ t Gᵀd``
    (Armijo; a non-finite density counts as a decrease); it stops when the Newton
    decrement ``Gᵀd`` is under ``MODE_TOLERANCE`` or after ``MODE_STEPS`` steps. The
    conditional is log-concave, so from anywhere the iteration converges to its unique
    mode, quadratically once close. Each trial point is one pass over the rows.
    """
    lp0, g0, H0 = fixed_conditional(loglik, log_prior, base, X, start)

    def direction(s):
        return jax.scipy.linalg.cho_solve((jnp.linalg.cholesky(-s.hessian), True), s.gradient)

    def searching(s):
        return (s.steps < MODE_STEPS) & (s.gradient @ direction(s) > MODE_TOLERANCE)

    def newton_step(s):
        d = direction(s)
        slope = s.gradient @ d

        def trial(t):
            lp, g, H = fixed_conditional(loglik, log_prior, base, X, s.point + t * d)
            return t, lp, g, H

        def too_far(c):
            t, lp, _, _ = c
            return (t > 2.0 ** -HALVINGS) & ~(jnp.isfinite(lp) & (lp >= s.log_density + 1e-4 * t * slope))

        t, lp, g, H = jax.lax.while_loop(too_far, lambda c: trial(0.5 * c[0]), trial(jnp.ones(())))
        moved = jnp.isfinite(lp) & (lp >= s.log_density + 1e-4 * t * slope)
        stay = lambda new, old: jnp.where(moved, new, old)  # noqa: E731
        return ModeSearch(stay(s.point + t * d, s.point), stay(lp, s.log_density), stay(g, s.gradient),
                          stay(H, s.hessian), s.start_log_density, jnp.where(moved, s.steps + 1, MODE_STEPS))

    return jax.lax.while_loop(searching, newton_step, ModeSearch(start, lp0, g0, H0, lp0, jnp.zeros((), jnp.int32)))


def _log_t(to: jax.Array, mode: ModeSearch) -> jax.Array:
    """``log t_ν(to; m, (-H)⁻¹)`` up to a constant, ``m`` and ``H`` the search's point and
    Hessian (ν = ``FIXED_DF``)."""
    chol = jnp.linalg.cholesky(-mode.hessian)
    resid = chol.T @ (to - mode.point)
    return jnp.sum(jnp.log(jnp.diagonal(chol))) - 0.5 * (FIXED_DF + to.shape[0]) * jnp.log1p(resid @ resid / FIXED_DF)


def newton_fixed(key: jax.Array, loglik: Callable, log_prior: Callable, base: jax.Array, X: jax.Array,
                 b: jax.Array) -> tuple[jax.Array, jax.Array]:
    r"""A Metropolis–Hastings update of the fixed effects jointly, proposed from a Student-t
    at the conditional mode; ``(b, accepted)``.

    Notes
    -----
    ``m(b)``, ``H(b)``: the end point of :func:`conditional_mode` started at ``b`` and the
    Hessian there. The proposal is ``b' ~ q(· | b) = t_ν(m(b), (-H(b))⁻¹)``, and the move is
    accepted with probability

    .. math::

        \min\Bigl(1, \frac{p(b' \mid \cdot)\, q(b \mid b')}{p(b \mid \cdot)\, q(b' \mid b)}\Bigr),

    ``q(b | b')`` from the search started at ``b'``. Since ``m`` and ``H`` are deterministic
    functions of the start, this is an ordinary Metropolis–Hastings ratio and the kernel
    leaves the conditional exactly invariant whether or not the searches converged; when
    they do, ``m(b) = m(b')`` is the mode and the move is the independence sampler
    from the (heavier-tailed) Laplace approximation, accepted whatever the distance of
    ``b`` from the mode. (A single Newton step from ``b`` instead is rejected when ``b``
    sits many conditional sds from the mode, as after the level updates of a crossed
    Poisson model: the reverse proposal at ``b`` is negligible.)
    """
    k_prop, k_scale, k_acc = jax.random.split(key, 3)
    forward = conditional_mode(loglik, log_prior, base, X, b)
    chol = jnp.linalg.cholesky(-forward.hessian)
    scale = jnp.sqrt(FIXED_DF / (2.0 * jax.random.gamma(k_scale, 0.5 * FIXED_DF)))
    noise = jax.scipy.linalg.solve_triangular(chol.T, jax.random.normal(k_prop, b.shape), lower=False)
    proposal = forward.point + scale * noise
    reverse = conditional_mode(loglik, log_prior, base, X, proposal)
    log_ratio = (reverse.start_log_density - forward.start_log_density + _log_t(b, reverse)
                 - _log_t(proposal, forward))
    ok = jnp.isfinite(log_ratio) & jnp.all(jnp.isfinite(proposal))
    accepted = ok & (jnp.log(jax.random.uniform(k_acc)) < log_ratio)
    return jnp.where(accepted, proposal, b), accepted


def term_conditionals(loglik: Callable, base: jax.Array, refs: jax.Array, z: jax.Array, effects: jax.Array,
                      precision: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    r"""Per level of a term of ``q`` columns: the log conditional density of its effects
    (up to a constant), gradient and Hessian at ``effects`` (levels, q), the rows'
    predictor being ``base + Σ_j z[:, j] effects[refs, j]``.

    Notes
    -----
    With ``Q = Σ⁻¹`` (``precision``) and ``ℓ_i, g_i, h_i`` the rows' log likelihood and
    its first two derivatives in η,

    .. math::

        G_l = \sum_{i: l(i)=l} g_i z_i - Q r_l, \qquad
        H_l = \sum_{i: l(i)=l} h_i z_i z_iᵀ - Q,

    the ``q + q(q+1)/2`` level sums taken by one ``segment_sum`` of the stacked columns.
    """
    num, q = effects.shape
    ll, g, h = row_derivatives(loglik, base + jnp.sum(z * effects[refs], axis=1))
    pairs = [(j, k) for j in range(q) for k in range(j + 1)]
    stacked = jnp.concatenate([ll[:, None], g[:, None] * z] + [(h * z[:, j] * z[:, k])[:, None] for j, k in pairs],
                              axis=1)
    sums = jax.ops.segment_sum(stacked, refs, num)
    quad = effects @ precision
    log_density = sums[:, 0] - 0.5 * jnp.sum(quad * effects, axis=1)
    gradient = sums[:, 1:1 + q] - quad
    hessian = jnp.zeros((num, q, q))
    for m, (j, k) in enumerate(pairs):
        hessian = hessian.at[:, j, k].set(sums[:, 1 + q + m]).at[:, k, j].set(sums[:, 1 + q + m])
    return log_density, gradient, hessian - precision


def _log_proposal_levels(to: jax.Array, frm: jax.Array, gradient: jax.Array, chol: jax.Array) -> jax.Array:
    """Per level, ``log N(to; frm + P⁻¹G, P⁻¹)`` up to a constant, ``P = C Cᵀ`` (``chol``: C)."""
    mean = frm + linalg.solve_upper_t(chol, linalg.solve_lower(chol, gradient))
    resid = jnp.einsum("lji,lj->li", chol, to - mean)
    return jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1) - 0.5 * jnp.sum(resid ** 2, axis=-1)


def newton_term(key: jax.Array, loglik: Callable, base: jax.Array, refs: jax.Array, z: jax.Array,
                effects: jax.Array, precision: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One Newton-proposal MH update of every level's effect vector of a term with
    columns ``z`` (rows, q) and prior precision ``precision`` (q, q); ``(effects, accepted)``.
    The proposal from ``r`` is ``N(r + P⁻¹G, P⁻¹)``, ``P = -H`` (:func:`term_conditionals`)."""
    k_prop, k_acc = jax.random.split(key)
    lp0, g0, h0 = term_conditionals(loglik, base, refs, z, effects, precision)
    c0 = linalg.cholesky(-h0)
    noise = linalg.solve_upper_t(c0, jax.random.normal(k_prop, effects.shape))
    proposal = effects + linalg.solve_upper_t(c0, linalg.solve_lower(c0, g0)) + noise
    lp1, g1, h1 = term_conditionals(loglik, base, refs, z, proposal, precision)
    c1 = linalg.cholesky(-h1)
    log_ratio = (lp1 - lp0 + _log_proposal_levels(effects, proposal, g1, c1)
                 - _log_proposal_levels(proposal, effects, g0, c0))
    accepted = jnp.log(jax.random.uniform(k_acc, lp0.shape)) < log_ratio
    return jnp.where(accepted[:, None], proposal, effects), accepted


#: Newton steps of :func:`level_modes` (each one pass over the rows).
LEVEL_MODE_STEPS = 30


def level_modes(loglik: Callable, base: jax.Array, refs: jax.Array, z: jax.Array, effects: jax.Array,
                precision: jax.Array) -> jax.Array:
    r"""Every level's conditional mode of a term's effects (levels, q), by damped Newton
    from ``effects``, for the chains' starting points.

    Notes
    -----
    Per level ``l`` the step is ``t_l P_l⁻¹ G_l`` (:func:`term_conditionals`), taken where it
    does not lower the level's log density; ``t_l`` is reset to 1 after a step taken and
    halved after one refused, for ``LEVEL_MODE_STEPS`` steps. From effects at 0, a single
    Newton proposal is refused for levels many conditional sds away (a Poisson level with
    counts in the hundreds, or near none), so that the chain would hold them far from the
    data for hundreds of sweeps; started at the modes, it does not.
    """

    def newton_step(_, carry):
        current, lp, g, h, t = carry
        chol = linalg.cholesky(-h)
        trial = current + t[:, None] * linalg.solve_upper_t(chol, linalg.solve_lower(chol, g))
        lp1, g1, h1 = term_conditionals(loglik, base, refs, z, trial, precision)
        up = jnp.isfinite(lp1) & (lp1 >= lp)
        keep = lambda new, old: jnp.where(up.reshape(up.shape + (1,) * (new.ndim - 1)), new, old)  # noqa: E731
        return keep(trial, current), keep(lp1, lp), keep(g1, g), keep(h1, h), jnp.where(up, 1.0, 0.5 * t)

    lp, g, h = term_conditionals(loglik, base, refs, z, effects, precision)
    start = (effects, lp, g, h, jnp.ones(effects.shape[0]))
    return jax.lax.fori_loop(0, LEVEL_MODE_STEPS, newton_step, start)[0]
