"""The GLMM log density's fast paths equal the plain definitions.

* the column-by-column group effects of :meth:`Predictors.etas` and the hand-written
  derivatives of the logit families (:mod:`multilevel.model.families.fused`) give the
  log density and its gradient of the plain definitions (the rows of ``r`` gathered
  at once; ``-softplus(∓eta)``, NumPyro's ``BinomialLogits``, autodiff) to 1e-10
  relative, centred and not, on models with correlated and uncorrelated, nested and
  crossed group terms;
* the derivatives hold to second order (forward over reverse) and at extreme eta.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pandas as pd
import pytest
from jax.scipy.special import gammaln

from multilevel.model import get_family
from multilevel.model.families.fused import bernoulli_logit
from multilevel.model.logdensity import Params, constrain, make_logdensity, model_data, structure
from multilevel.model.record import build_model

RTOL = 1e-10


def _plain_row_log_likelihood(family: str, params: Params, data, struct):
    """The log-likelihood of every row as written before the fast paths (mean only)."""
    eta = data.X @ params.b
    if data.offset is not None:
        eta = eta + data.offset
    for r, ref, z in zip(params.effects, data.refs, data.z):
        eta = eta + (z * r[ref]).sum(axis=1)
    y = data.y
    if family == "bernoulli":
        return jnp.where(y > 0.5, -jax.nn.softplus(-eta), -jax.nn.softplus(eta))
    if family == "binomial":
        return dist.BinomialLogits(logits=eta, total_count=data.trials).log_prob(y)
    return y * eta - jnp.exp(eta) - gammaln(y + 1)


def _data(family: str, seed: int = 0, rows: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g, h = rng.integers(0, 12, rows), rng.integers(0, 5, rows)
    x = rng.normal(size=rows)
    eta = -0.3 + 0.5 * x + rng.normal(size=12)[g] + 0.4 * rng.normal(size=12)[g] * x + 0.5 * rng.normal(size=5)[h]
    p = 1 / (1 + np.exp(-eta))
    frame = pd.DataFrame({"x": x, "g": g, "h": h, "n": rng.integers(1, 9, rows)})
    frame["y"] = {"bernoulli": lambda: rng.binomial(1, p), "binomial": lambda: rng.binomial(frame["n"], p),
                  "poisson": lambda: rng.poisson(np.exp(eta))}[family]()
    return frame


CASES = [("bernoulli", "y ~ x + (1 + x | g) + (1 | h)", False),
         ("bernoulli", "y ~ x + (1 + x || g)", True),
         ("binomial", "y | trials(n) ~ x + (1 + x | g) + (1 | h)", True),
         ("poisson", "y ~ x + (1 + x | g) + (1 | g:h)", False)]


@pytest.mark.parametrize("family, formula, centred", CASES)
def test_log_density_and_gradient_equal_the_plain_definitions(family, formula, centred):
    model = build_model(formula, _data(family), family=family)
    with jax.enable_x64(True):
        f, start = model.log_density()
        struct = structure(model.layout, model.family)
        data = model_data(model.design, model.priors, (centred,) * len(model.layout.groups), family=model.family)
        rng = np.random.default_rng(1)
        position = jax.tree_util.tree_map(lambda a: jnp.asarray(a + 0.3 * rng.normal(size=np.shape(a))), start)

        def plain(p):
            params, log_prior, log_jac = constrain(p, data, struct)
            return jnp.sum(_plain_row_log_likelihood(family, params, data, struct)) + log_prior + log_jac

        value, grad = jax.value_and_grad(make_logdensity(struct))(position, data)
        value_ref, grad_ref = jax.value_and_grad(plain)(position)
    np.testing.assert_allclose(value, value_ref, rtol=RTOL)
    for a, b in zip(jax.tree_util.tree_leaves(grad), jax.tree_util.tree_leaves(grad_ref)):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * np.max(np.abs(b), initial=0.0))


def _value_slope_curvature(f):
    """``f`` (elementwise in eta), its first and second derivatives, by JAX, in one program."""
    slope = jax.grad(lambda e: f(e).sum())
    return jax.jit(lambda e: (f(e), slope(e), jax.jvp(slope, (e,), (jnp.ones_like(e),))[1]))


def test_logit_derivatives_to_second_order_and_at_extremes():
    with jax.enable_x64(True):
        eta = jnp.array([-800.0, -40.0, -3.0, -1e-3, 2e-3, 5.0, 40.0, 800.0], dtype=jnp.float64)
        k, n = jnp.array([0.0, 1, 3, 0, 2, 7, 0, 9]), jnp.array([0.0, 2, 3, 4, 6, 7, 8, 9])
        y = (k > 1).astype(jnp.float64)
        binomial = get_family("binomial")
        pairs = [(lambda e: bernoulli_logit(y, e),
                  lambda e: jnp.where(y > 0.5, -jax.nn.softplus(-e), -jax.nn.softplus(e))),
                 (lambda e: binomial.log_likelihood(k, e, (), n),
                  lambda e: dist.BinomialLogits(logits=e, total_count=n).log_prob(k))]
        for fused, plain in pairs:
            for a, b in zip(_value_slope_curvature(fused)(eta), _value_slope_curvature(plain)(eta)):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
        # at eta = 0 the slope is k - n/2 (NumPyro's clip and abs give k there)
        slope = jax.grad(lambda e: binomial.log_likelihood(jnp.array(5.0), e, (), jnp.array(5.0)))(jnp.float64(0.0))
        assert float(slope) == 2.5
