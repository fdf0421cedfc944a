"""Turn sampler output into an ArviZ InferenceData with the public parameter names.

Posterior variables: one scalar per fixed effect (``Intercept``, ``diam``),
auxiliary parameter (``sigma``), group sd (``sd(diam|tree)``) and correlation
(``cor(Intercept,diam|tree)``); one variable per group effect
(``Intercept|tree``) with a coordinate per level of the grouping factor.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import xarray as xr

from ..model.layout import Layout


def posterior_dataset(layout: Layout, b: np.ndarray, aux: np.ndarray, sds: list[np.ndarray],
                      chols: list[np.ndarray | None], effects: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Named posterior arrays from stacked ``(chain, draw, ...)`` parameter arrays.

    ``b`` is (chain, draw, p), ``aux`` (chain, draw, k), ``sds[t]`` (chain, draw, q),
    ``chols[t]`` (chain, draw, q, q) or None, ``effects[t]`` (chain, draw, levels, q).
    """
    out: dict[str, np.ndarray] = {}
    for j, name in enumerate(layout.fixed):
        out[name] = b[..., j]
    for j, name in enumerate(layout.aux):
        out[name] = aux[..., j]
    for t, g in enumerate(layout.groups):
        for j, name in enumerate(g.sd_names):
            out[name] = sds[t][..., j]
        if g.has_cor:
            corr = np.einsum("...ik,...jk->...ij", chols[t], chols[t])
            pairs = [(i, j) for i in range(g.q) for j in range(i)]
            for name, (i, j) in zip(g.cor_names, pairs):
                out[name] = np.clip(corr[..., i, j], -1.0, 1.0)
        for j, name in enumerate(g.effect_names):
            out[name] = effects[t][..., j]
    return out


def make_idata(layout: Layout, posterior: dict[str, np.ndarray], sample_stats: dict[str, np.ndarray],
               log_likelihood: np.ndarray | None, y: np.ndarray | None, attrs: dict) -> az.InferenceData:
    """Assemble the InferenceData: posterior, sample_stats, log_likelihood, observed_data."""
    coords = {g.dim: list(g.levels) for g in layout.groups}
    dims = {name: [g.dim] for g in layout.groups for name in g.effect_names}
    groups = {"posterior": posterior, "sample_stats": sample_stats}
    if log_likelihood is not None:
        groups["log_likelihood"] = {"y": log_likelihood}
        dims["y"] = ["obs"]
    if y is not None:
        groups["observed_data"] = {"y": y}
        dims.setdefault("y", ["obs"])
    idata = az.from_dict(**groups, coords=coords, dims=dims, attrs=attrs)
    for name in ("posterior", "sample_stats"):
        getattr(idata, name).attrs.update(attrs)
    return idata


def stack_draws(dataset: xr.Dataset, name: str) -> np.ndarray:
    """A posterior variable as ``(chain*draw, ...)``."""
    values = dataset[name].values
    return values.reshape((-1,) + values.shape[2:])
