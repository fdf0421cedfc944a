"""Fits built from draws the test chooses, without running a sampler.

``known_fit`` builds the model of a formula and data as ``ml.fit`` does, then
assembles the Fit from independent draws of known distributions (as a sampler
would hand them over), so that a test can compute every expected value from the
draws directly. Building one takes about a second (the log-likelihood of the
draws is compiled once), not the seconds of a sampler run.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

import multilevel as ml
from multilevel.inference import Draws, Options, SamplerInfo
from multilevel.results.assemble import assemble_fit

CHAINS, DRAWS = 2, 400


def known_draws(model, seed: int = 0, chains: int = CHAINS, draws: int = DRAWS,
                means: dict[str, float] | None = None) -> Draws:
    """Independent draws for every parameter of ``model``: fixed effects ~ N(mean, 0.3²)
    (mean 0 unless given in ``means``), auxiliary parameters ~ |N(1, 0.1²)| (``means``
    sets their centre too), group sds ~ Gamma(4, 0.2), correlations ~ U(-0.8, 0.8), group
    effects ~ N(0, sd²) per level."""
    rng = np.random.default_rng(seed)
    means = means or {}
    layout, shape = model.layout, (chains, draws)
    b = np.stack([rng.normal(means.get(name, 0.0), 0.3, shape) for name in layout.fixed], axis=-1) \
        if layout.fixed else np.zeros(shape + (0,))
    aux = np.stack([np.abs(rng.normal(means.get(name, 1.0), 0.1, shape)) for name in layout.aux], axis=-1) \
        if layout.aux else np.zeros(shape + (0,))
    sds, chols, effects = [], [], []
    for term in layout.groups:
        sd = rng.gamma(4.0, 0.2, shape + (term.q,))
        chol = None
        if term.has_cor:
            chol = np.broadcast_to(np.eye(term.q), shape + (term.q, term.q)).copy()
            if term.q != 2:
                raise NotImplementedError("known_draws draws correlations of two columns only")
            r = rng.uniform(-0.8, 0.8, shape)
            chol[..., 1, 0], chol[..., 1, 1] = r, np.sqrt(1 - r ** 2)
        sds.append(sd)
        chols.append(chol)
        effects.append(rng.normal(size=shape + (len(term.levels), term.q)) * sd[..., None, :])
    stats = {"diverging": np.zeros(shape, dtype=bool)}
    return Draws(b, aux, tuple(sds), tuple(chols), tuple(effects), stats, SamplerInfo(0.0, 1.0, False, {}))


def known_fit(formula, data: pd.DataFrame, family: str = "gaussian", seed: int = 0,
              means: dict[str, float] | None = None) -> ml.Fit:
    """The Fit of ``formula`` to ``data`` with the draws of :func:`known_draws`."""
    model = ml.build_model(formula, data, family=family)
    draws = known_draws(model, seed, means=means)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.ConvergenceWarning)
        return assemble_fit(model, draws, sampler="known", reason="draws chosen by the test", seed=seed,
                            options=Options(chains=CHAINS, draws=DRAWS, warmup=0))


def stacked(fit: ml.Fit, name: str) -> np.ndarray:
    """A posterior variable as ``(chain*draw, ...)``."""
    values = fit.idata.posterior[name].values
    return values.reshape((-1,) + values.shape[2:])
