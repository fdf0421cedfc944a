"""Turn sampler output into an ArviZ InferenceData with the public parameter names.

Posterior variables: one scalar per fixed effect (``Intercept``, ``diam``),
auxiliary parameter (``sigma``), group sd (``sd(diam|tree)``) and correlation
(``cor(Intercept,diam|tree)``); one variable per group effect
(``Intercept|tree``) with a coordinate per level of the grouping factor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from typing import Mapping

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from ..design.columns import is_numeric
from ..errors import DataError
from ..formula.spec import FormulaSpec
from ..model.layout import Layout
from .lazy import arviz

if TYPE_CHECKING:
    import arviz as az


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


def posterior_xarray(layout: Layout, posterior: dict[str, np.ndarray]) -> xr.Dataset:
    """The named posterior arrays as ``idata.posterior`` holds them (dims ``chain``,
    ``draw`` and, for a group effect, its factor's level dimension), without building
    the InferenceData."""
    level_dims = {name: layout.level_dim(g) for g in layout.groups for name in g.effect_names}
    shape = next(iter(posterior.values())).shape
    coords = {"chain": np.arange(shape[0]), "draw": np.arange(shape[1]),
              **{layout.level_dim(g): list(g.levels) for g in layout.groups}}
    return xr.Dataset({name: (("chain", "draw") + ((level_dims[name],) if name in level_dims else ()), values)
                       for name, values in posterior.items()}, coords=coords)


def fitted_columns(spec: FormulaSpec, data: pd.DataFrame) -> dict[str, np.ndarray]:
    """The data columns ``spec`` reads, for the rows fitted (those without a missing value).

    Numeric columns as float64, the others as strings; only the columns the formula
    uses are kept, so the cost is that of a few more copies of ``y``.
    """
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    used = list(spec.variables())
    kept = frame[used].notna().all(axis=1).to_numpy()
    out = {}
    for name in used:
        series = frame[name][kept]
        out[name] = series.to_numpy(dtype=np.float64) if is_numeric(series) else series.to_numpy(dtype=str)
    return out


def make_idata(layout: Layout, posterior: dict[str, np.ndarray], sample_stats: dict[str, np.ndarray],
               log_likelihood: np.ndarray | None, y: np.ndarray | None, attrs: dict,
               constant_data: dict[str, np.ndarray] | None = None,
               posterior_predictive: np.ndarray | None = None) -> az.InferenceData:
    """Assemble the InferenceData: posterior, sample_stats, log_likelihood, observed_data
    and, when given, constant_data and posterior_predictive.

    ``constant_data``, when given, holds the data columns the formula reads for the
    rows fitted (dimension ``obs``), for the plots that need the data. It is added as
    its own group, so a column may share its name with a parameter (``sigma``).
    ``posterior_predictive``, when given, holds replicates of y, ``(chain, draw, obs)``
    (from :func:`~multilevel.results.predict.posterior_predictive_draws`), stored as
    variable ``y`` of group ``posterior_predictive``.
    """
    coords = {layout.level_dim(g): list(g.levels) for g in layout.groups}
    dims = {name: [layout.level_dim(g)] for g in layout.groups for name in g.effect_names}
    groups = {"posterior": posterior, "sample_stats": sample_stats}
    if log_likelihood is not None:
        groups["log_likelihood"] = {"y": log_likelihood}
        dims["y"] = ["obs"]
    if y is not None:
        groups["observed_data"] = {"y": y}
        dims.setdefault("y", ["obs"])
    if posterior_predictive is not None:
        groups["posterior_predictive"] = {"y": np.asarray(posterior_predictive)}
        dims.setdefault("y", ["obs"])
    idata = arviz().from_dict(**groups, coords=coords, dims=dims, attrs=attrs)
    for name in ("posterior", "sample_stats"):
        getattr(idata, name).attrs.update(attrs)
    if constant_data is not None:
        idata.add_groups(constant_data=xr.Dataset({k: ("obs", v) for k, v in constant_data.items()}))
    return idata


def parameter_draws(posterior: xr.Dataset, name: str) -> np.ndarray:
    """Draws ``(chain, draw)`` of a scalar parameter (``sigma``) or of one level of a group
    effect, named as in the summary (``Intercept|tree[3]``)."""
    base, _, level = name.partition("[")
    if base in posterior and level.endswith("]"):
        variable = posterior[base]
        dim = variable.dims[-1]
        levels = [str(v) for v in variable.coords[dim].values]
        if level[:-1] not in levels:
            raise DataError(f"{base} has no level {level[:-1]!r}")
        return variable.values[..., levels.index(level[:-1])]
    if name not in posterior:
        raise DataError(f"no parameter named {name!r}; the parameters are {', '.join(posterior.data_vars)}")
    if posterior[name].ndim != 2:
        raise DataError(f"{name} has one value per level: name levels as in the summary, "
                              f"e.g. '{name}[{posterior[name].coords[posterior[name].dims[-1]].values[0]}]'")
    return posterior[name].values


def select_draws(posterior: xr.Dataset, index: np.ndarray | None = None) -> xr.Dataset:
    """A posterior of the draws ``index`` of the stacked draws (as one chain), or of
    one draw, the posterior means (``index=None``)."""
    out = {}
    for name, variable in posterior.data_vars.items():
        values = stack_draws(posterior, name)
        out[name] = (variable.dims, values.mean(axis=0)[None, None] if index is None else values[index][None])
    return xr.Dataset(out)


def stack_draws(dataset: Mapping[str, ArrayLike], name: str) -> np.ndarray:
    """A posterior variable as ``(chain*draw, ...)`` (of an xarray Dataset or a dict of arrays)."""
    values = np.asarray(dataset[name])
    return values.reshape((-1,) + values.shape[2:])
