"""Independent draws from the prior, for prior predictive checks (brms's ``sample_prior = "only"``).

No Markov chain: every parameter is drawn from its prior directly, so the draws
are exact and independent, and what takes NUTS a fit takes milliseconds here:

* fixed effects, family parameters and group sds from their priors (a parameter
  with a lower bound, such as ``nu >= 1``, by rejection above it);
* ordinal thresholds as the sorted draws of their independent priors (the prior
  density restricted to increasing values is the density of the order statistics);
* a correlated term's Cholesky factor from its LKJ prior, or its covariance from
  its InverseWishart prior (then its sds and correlations from that);
* the group effects ``r = diag(sd) L z`` with ``z`` standard normal.

Chains are independent streams of the same seed, so the draws are the same
whatever the machine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import PriorError
from ..model import compound
from ..model.families import Param
from ..model.priors import InverseWishart, Prior
from .sampler import Draws, Options, SamplerInfo

if TYPE_CHECKING:
    from ..model import Model

#: Rejection sampling above a lower bound gives up below this acceptance rate.
MIN_ACCEPTANCE = 1e-3


class PriorSampler:
    """Draws from the priors alone (the data are not used)."""

    name = "prior"

    def problem(self, model: Model) -> str | None:
        return None

    def suits(self, model: Model) -> str:
        return "prior_only=True: independent draws from the priors (the data are not used)"

    def run(self, model: Model, seed: int, options: Options) -> Draws:
        rng = np.random.default_rng([seed, 7])
        shape = (options.chains, options.draws)
        priors, layout = model.priors, model.layout
        b = np.stack([p.prior.sample(rng, shape) for p in priors.fixed], axis=-1) if priors.fixed \
            else np.zeros(shape + (0,))
        free = [p for p in model.family.params if p.name in layout.aux]
        aux = _family_parameters(rng, shape, [p.prior for p in priors.aux], free)
        if layout.smooths:              # the smooths' sds, then their coefficients N(0, sds²)
            smooth_sds = np.stack([_above(rng, shape, p.prior, None, p.name) for p in priors.aux[len(free):]], -1)
            aux = np.concatenate([aux, smooth_sds], axis=-1)
            for penalty in layout.penalties:
                b[..., list(penalty.columns)] = rng.standard_normal(shape + (len(penalty.columns),)) \
                    * aux[..., penalty.aux, None]
        sds, chols, effects = [], [], []
        for t, g in enumerate(layout.groups):
            cor = priors.cor[t]
            if g.compound:
                sd = np.repeat(priors.sd[t][0].prior.sample(rng, shape)[..., None], g.q, axis=-1)
                rho = compound.sample(rng, cor.prior.eta, g.q, shape)[..., None, None]
                chol = np.linalg.cholesky((1.0 - rho) * np.eye(g.q) + rho)
            elif cor is not None and isinstance(cor.prior, InverseWishart):
                covariance = cor.prior.sample(rng, shape + (g.q,))
                sd = np.sqrt(np.diagonal(covariance, axis1=-2, axis2=-1))
                chol = np.linalg.cholesky(covariance / (sd[..., :, None] * sd[..., None, :]))
            else:
                sd = np.stack([p.prior.sample(rng, shape) for p in priors.sd[t]], axis=-1)
                chol = cor.prior.sample(rng, shape + (g.q,)) if cor is not None else None
            z = rng.standard_normal(shape + (len(g.levels), g.q))
            if chol is not None:
                z = np.einsum("cdij,cdlj->cdli", chol, z)
            sds.append(sd)
            chols.append(chol)
            effects.append(z * sd[:, :, None, :])
        return Draws(b, aux, tuple(sds), tuple(chols), tuple(effects), {},
                     SamplerInfo(0.0, 0.0, True, {"independent_draws": True}))


#: The prior sampler (not in the registry: ``ml.fit(..., prior_only=True)`` asks for it).
PRIOR = PriorSampler()


def _family_parameters(rng: np.random.Generator, shape: tuple[int, int], priors: list[Prior],
                       params: list[Param]) -> np.ndarray:
    """Draws of the family's free parameters ``(chain, draw, k)``; ordered runs sorted."""
    columns = [_above(rng, shape, prior, param.lower if param.support == "positive" else None, param.name)
               for prior, param in zip(priors, params)]
    ordered = [j for j, p in enumerate(params) if p.support == "ordered"]
    if ordered:
        run = np.sort(np.stack([columns[j] for j in ordered], axis=-1), axis=-1)
        for k, j in enumerate(ordered):
            columns[j] = run[..., k]
    return np.stack(columns, axis=-1) if columns else np.zeros(shape + (0,))


def _above(rng: np.random.Generator, shape: tuple[int, int], prior: Prior, lower: float | None,
           name: str) -> np.ndarray:
    """Draws of ``prior`` truncated below at ``lower`` (None or 0: as drawn), by rejection."""
    draws = np.asarray(prior.sample(rng, shape), dtype=float)
    if not lower:
        return draws
    bad = draws < lower
    tries = 0
    while bad.any():
        tries += 1
        if tries > 1 / MIN_ACCEPTANCE:
            raise PriorError(f"{name}: its prior {prior} puts almost no mass above its lower bound {lower:g}")
        draws[bad] = prior.sample(rng, (int(bad.sum()),))
        bad = draws < lower
    return draws
