"""Prior distributions, with explicit parameter names.

Each prior is a frozen dataclass whose numeric fields are JAX pytree leaves, so
that fits differing only in prior values reuse one compiled log density. Log
densities come from :mod:`numpyro.distributions`; two are the product's own:
``HalfStudentT`` (a folded Student-t) and ``GammaPrecision``, a prior on an sd
``s`` written on its precision as JAGS users do:

.. math:: 1/s^2 \\sim \\mathrm{Gamma}(a, b), \\qquad
          \\log p(s) = \\log \\mathrm{Gamma}(s^{-2}; a, b) + \\log 2 - 3 \\log s.
"""

from __future__ import annotations

import ast
import math
import numbers
from dataclasses import dataclass, fields

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from ..errors import PriorError


class Prior:
    """Base class: ``log_prob`` on the constrained scale and the support."""

    #: "real", "positive", "interval" or "correlation"
    support = "real"

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise PriorError(f"{type(self).__name__}: {f.name} must be a finite number, got {value!r}")
            object.__setattr__(self, f.name, float(value))
        self.check()

    def check(self) -> None:
        """Raise PriorError on invalid parameter values."""

    def _positive(self, *names: str) -> None:
        for name in names:
            if getattr(self, name) <= 0:
                raise PriorError(f"{type(self).__name__}: {name} must be > 0, got {getattr(self, name)}")

    def log_prob(self, x):
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Independent draws (numpy), for sampling the prior (``prior_only=True``)."""
        raise NotImplementedError

    def to_positive(self, u, lower: float = 0.0):
        """Map an unconstrained ``u`` to a parameter above ``lower`` (0: positive); return
        ``(x, log|dx/du|)``. Above a lower bound the prior is truncated there."""
        return lower + jnp.exp(u), u

    def from_positive(self, x, lower: float = 0.0):
        """Inverse of :meth:`to_positive` (for initial values), clipped inside the support."""
        return jnp.log(jnp.maximum(x - lower, 1e-300))

    def to_unit(self, u):
        """Map an unconstrained ``u`` to a probability by the logistic; return ``(x, log|dx/du|)``."""
        return jax.nn.sigmoid(u), jax.nn.log_sigmoid(u) + jax.nn.log_sigmoid(-u)

    def from_unit(self, x):
        """Inverse of :meth:`to_unit` (for initial values), clipped inside (0, 1)."""
        x = jnp.clip(x, 1e-6, 1 - 1e-6)
        return jnp.log(x) - jnp.log1p(-x)

    def __str__(self) -> str:
        args = ", ".join(f"{f.name}={getattr(self, f.name):.4g}" for f in fields(self))
        return f"{type(self).__name__}({args})"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__.lower()] = cls


_REGISTRY: dict[str, type[Prior]] = {}


def _prior(cls):
    """Make a prior class a frozen dataclass and a pytree whose leaves are its parameters.

    Unflattening bypasses ``__post_init__`` so that traced values are not validated.
    """
    cls = dataclass(frozen=True)(cls)
    names = [f.name for f in fields(cls)]

    def unflatten(_, children):
        obj = object.__new__(cls)
        for name, value in zip(names, children):
            object.__setattr__(obj, name, value)
        return obj

    jax.tree_util.register_pytree_node(cls, lambda p: (tuple(getattr(p, n) for n in names), None), unflatten)
    return cls


@_prior
class Normal(Prior):
    mean: float = 0.0
    sd: float = 1.0

    def check(self):
        self._positive("sd")

    def sample(self, rng, shape):
        return rng.normal(self.mean, self.sd, shape)

    def log_prob(self, x):
        return dist.Normal(self.mean, self.sd).log_prob(x)


@_prior
class StudentT(Prior):
    df: float = 3.0
    mean: float = 0.0
    sd: float = 1.0

    def check(self):
        self._positive("df", "sd")

    def sample(self, rng, shape):
        return self.mean + self.sd * rng.standard_t(self.df, shape)

    def log_prob(self, x):
        return dist.StudentT(self.df, self.mean, self.sd).log_prob(x)


@_prior
class Cauchy(Prior):
    location: float = 0.0
    scale: float = 1.0

    def check(self):
        self._positive("scale")

    def sample(self, rng, shape):
        return self.location + self.scale * rng.standard_cauchy(shape)

    def log_prob(self, x):
        return dist.Cauchy(self.location, self.scale).log_prob(x)


@_prior
class HalfNormal(Prior):
    sd: float = 1.0
    support = "positive"

    def check(self):
        self._positive("sd")

    def sample(self, rng, shape):
        return np.abs(rng.normal(0.0, self.sd, shape))

    def log_prob(self, x):
        return dist.HalfNormal(self.sd).log_prob(x)


@_prior
class HalfCauchy(Prior):
    scale: float = 1.0
    support = "positive"

    def check(self):
        self._positive("scale")

    def sample(self, rng, shape):
        return np.abs(self.scale * rng.standard_cauchy(shape))

    def log_prob(self, x):
        return dist.HalfCauchy(self.scale).log_prob(x)


@_prior
class HalfStudentT(Prior):
    df: float = 3.0
    scale: float = 1.0
    support = "positive"

    def check(self):
        self._positive("df", "scale")

    def sample(self, rng, shape):
        return np.abs(self.scale * rng.standard_t(self.df, shape))

    def log_prob(self, x):
        return jnp.log(2.0) + dist.StudentT(self.df, 0.0, self.scale).log_prob(x)


@_prior
class Exponential(Prior):
    rate: float = 1.0
    support = "positive"

    def check(self):
        self._positive("rate")

    def sample(self, rng, shape):
        return rng.exponential(1.0 / self.rate, shape)

    def log_prob(self, x):
        return dist.Exponential(self.rate).log_prob(x)


@_prior
class Gamma(Prior):
    shape: float = 2.0
    rate: float = 1.0
    support = "positive"

    def check(self):
        self._positive("shape", "rate")

    def sample(self, rng, shape):
        return rng.gamma(self.shape, 1.0 / self.rate, shape)

    def log_prob(self, x):
        return dist.Gamma(self.shape, self.rate).log_prob(x)


@_prior
class InverseGamma(Prior):
    shape: float = 1.0
    scale: float = 1.0
    support = "positive"

    def check(self):
        self._positive("shape", "scale")

    def sample(self, rng, shape):
        return self.scale / rng.gamma(self.shape, 1.0, shape)

    def log_prob(self, x):
        return dist.InverseGamma(self.shape, self.scale).log_prob(x)


@_prior
class GammaPrecision(Prior):
    """Prior on an sd ``s`` through its precision: ``1/s² ~ Gamma(shape, rate)``."""

    shape: float = 0.001
    rate: float = 0.001
    support = "positive"

    def check(self):
        self._positive("shape", "rate")

    def sample(self, rng, shape):
        return rng.gamma(self.shape, 1.0 / self.rate, shape) ** -0.5

    def log_prob(self, x):
        return dist.Gamma(self.shape, self.rate).log_prob(x ** -2.0) + jnp.log(2.0) - 3.0 * jnp.log(x)


@_prior
class InverseGammaVariance(Prior):
    """Prior on an sd ``s`` through its variance: ``s² ~ InverseGamma(shape, scale)``.

    The same law as ``GammaPrecision(shape, rate=scale)``, written as Stan and
    BUGS users write a variance prior; conjugate for the Gibbs sampler.
    """

    shape: float = 0.001
    scale: float = 0.001
    support = "positive"

    def check(self):
        self._positive("shape", "scale")

    def sample(self, rng, shape):
        return np.sqrt(self.scale / rng.gamma(self.shape, 1.0, shape))

    def log_prob(self, x):
        return dist.InverseGamma(self.shape, self.scale).log_prob(x ** 2.0) + jnp.log(2.0) + jnp.log(x)


@_prior
class Uniform(Prior):
    low: float = 0.0
    high: float = 1.0
    support = "interval"

    def check(self):
        if self.high <= self.low:
            raise PriorError(f"Uniform: high must exceed low, got low={self.low}, high={self.high}")

    def sample(self, rng, shape):
        return rng.uniform(self.low, self.high, shape)

    def log_prob(self, x):
        return jnp.where((x >= self.low) & (x <= self.high), -jnp.log(self.high - self.low), -jnp.inf)

    def to_positive(self, u, lower: float = 0.0):
        low = jnp.maximum(self.low, lower)
        width = self.high - low
        x = low + width * jax.nn.sigmoid(u)
        return x, jnp.log(width) + jax.nn.log_sigmoid(u) + jax.nn.log_sigmoid(-u)

    def from_positive(self, x, lower: float = 0.0):
        low = jnp.maximum(self.low, lower)
        frac = jnp.clip((x - low) / (self.high - low), 0.05, 0.95)
        return jnp.log(frac) - jnp.log1p(-frac)

    def to_unit(self, u):
        low, high = jnp.maximum(self.low, 0.0), jnp.minimum(self.high, 1.0)
        x = low + (high - low) * jax.nn.sigmoid(u)
        return x, jnp.log(high - low) + jax.nn.log_sigmoid(u) + jax.nn.log_sigmoid(-u)

    def from_unit(self, x):
        low, high = jnp.maximum(self.low, 0.0), jnp.minimum(self.high, 1.0)
        frac = jnp.clip((x - low) / (high - low), 0.05, 0.95)
        return jnp.log(frac) - jnp.log1p(-frac)


@_prior
class Beta(Prior):
    """A prior on a probability (``zi``, ``hu``): brms's default is Beta(1, 1)."""

    a: float = 1.0
    b: float = 1.0
    support = "unit"

    def check(self):
        self._positive("a", "b")

    def sample(self, rng, shape):
        return rng.beta(self.a, self.b, shape)

    def log_prob(self, x):
        return dist.Beta(self.a, self.b).log_prob(x)


@_prior
class LKJ(Prior):
    """LKJ prior on a correlation matrix, applied to its Cholesky factor."""

    eta: float = 1.0
    support = "correlation"

    def check(self):
        self._positive("eta")

    def sample(self, rng, shape):
        """Cholesky factors: ``shape`` ends with the dimension q (``shape[:-1]`` draws).

        By the C-vine of Lewandowski, Kurowicka & Joe (2009): the partial correlation of
        variables i and j given those before j is ``2 Beta(b_j, b_j) - 1``,
        ``b_j = eta + (q - 2 - j) / 2`` (j from 0), and row i of the factor is built from
        its partial correlations as Stan's ``cholesky_corr_constrain`` does."""
        q = shape[-1]
        chol = np.zeros((*shape[:-1], q, q))
        chol[..., 0, 0] = 1.0
        for i in range(1, q):
            remaining = np.ones(shape[:-1])
            for j in range(i):
                b = self.eta + (q - 2 - j) / 2
                partial = 2.0 * rng.beta(b, b, shape[:-1]) - 1.0
                chol[..., i, j] = partial * np.sqrt(remaining)
                remaining = remaining - chol[..., i, j] ** 2
            chol[..., i, i] = np.sqrt(np.maximum(remaining, 0.0))
        return chol

    def log_prob(self, cholesky):
        return dist.LKJCholesky(cholesky.shape[-1], self.eta).log_prob(cholesky)


def prior_from_string(text: str) -> Prior:
    """Parse ``"exponential(rate=0.1)"`` or ``"normal(0, 10)"`` (case-insensitive).

    Only a distribution name with numeric arguments is accepted: nothing is evaluated.
    """
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        node = None
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise PriorError(f"cannot read the prior {text!r}; write it as name(arguments), "
                         f"e.g. normal(0, 10) or exponential(rate=0.1)")
    name = node.func.id.lower().replace("_", "")
    cls = _REGISTRY.get(name)
    if cls is None:
        raise PriorError(f"unknown prior {node.func.id!r}; choose from {', '.join(c.__name__ for c in _REGISTRY.values())}")

    def number(arg) -> float:
        try:
            return float(ast.literal_eval(arg))
        except (ValueError, SyntaxError, TypeError):
            raise PriorError(f"prior {text!r}: arguments must be numbers") from None

    try:
        return cls(*[number(a) for a in node.args], **{k.arg: number(k.value) for k in node.keywords})
    except TypeError as exc:
        raise PriorError(f"prior {text!r}: {exc}") from None


def prior_text(prior: Prior) -> str:
    """``prior`` as text that :func:`prior_from_string` reads back exactly: every number at
    full precision (``str(prior)`` rounds to 4 significant digits, for display)."""
    return f"{type(prior).__name__}({', '.join(f'{f.name}={float(getattr(prior, f.name))!r}' for f in fields(prior))})"


@_prior
class InverseWishart(Prior):
    r"""Inverse-Wishart prior on the covariance ``Σ = diag(s) R diag(s)`` of a correlated
    group term (key ``cov`` or ``cov|g``), with ``df`` degrees of freedom and scale
    matrix ``scale · I``. It replaces the sd and LKJ priors of that term, and is
    conjugate for the Gibbs sampler.

    Notes
    -----
    On the parameters the samplers use, the sds ``s`` and the Cholesky factor
    ``L`` of the correlation matrix ``R = L Lᵀ`` (its free entries below the diagonal):

    .. math::
       \log p(s, L) = \log \mathrm{IW}(Σ; ν, Ψ) + q \log 2 + q \sum_j \log s_j
                     + \log |\partial R / \partial L|,

    where ``q log 2 + q Σ log s`` is the log-Jacobian of ``(s, R) -> Σ`` and
    ``log |∂R/∂L| = Σ_i (q - i) log L_ii`` (i = 1..q) that of ``L -> R``.
    """

    df: float = 3.0
    scale: float = 1.0
    support = "covariance"

    def check(self):
        self._positive("df", "scale")

    def check_dimension(self, q: int, name: str) -> None:
        """Raise PriorError unless the law is proper for a q × q covariance."""
        if self.df <= q - 1:
            raise PriorError(f"{name}: InverseWishart needs df > q - 1 = {q - 1} for a {q} x {q} "
                             f"covariance, got df={self.df:g}")

    def sample(self, rng, shape):
        """Covariance matrices: ``shape`` ends with the dimension q (``shape[:-1]`` draws)."""
        from scipy.stats import invwishart  # scipy.stats, imported at first use
        q = shape[-1]
        draws = invwishart(self.df, self.scale * np.eye(q)).rvs(int(np.prod(shape[:-1])), random_state=rng)
        return np.reshape(draws, (*shape[:-1], q, q))

    def log_prob(self, covariance):
        """``log IW(Σ; df, scale · I)`` of a covariance matrix."""
        q = covariance.shape[-1]
        chol = jnp.linalg.cholesky(covariance)
        inv_chol = jax.scipy.linalg.solve_triangular(chol, jnp.eye(q), lower=True)
        log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
        return (0.5 * self.df * q * jnp.log(self.scale) - 0.5 * self.df * q * jnp.log(2.0)
                - jax.scipy.special.multigammaln(0.5 * self.df, q)
                - 0.5 * (self.df + q + 1) * log_det - 0.5 * self.scale * jnp.sum(inv_chol ** 2))

    def log_prob_scales(self, sd, cholesky):
        """``log p(s, L)``: the density on the sds and the correlation's Cholesky factor."""
        q = sd.shape[-1]
        covariance = (sd[:, None] * cholesky) @ (sd[:, None] * cholesky).T
        log_jac_r = jnp.sum(jnp.arange(q - 1, -1, -1) * jnp.log(jnp.diagonal(cholesky)))
        return self.log_prob(covariance) + q * jnp.log(2.0) + q * jnp.sum(jnp.log(sd)) + log_jac_r
