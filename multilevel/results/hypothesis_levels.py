r"""Hypotheses about group-level effects, tested level by level: brms's
``hypothesis(..., scope = "ranef" | "coef", group = "g")``.

With ``scope="ranef"`` the names of a hypothesis are the effect columns of the
grouping factor's terms (``Intercept``, ``x``), each standing for one level's
deviation :math:`r_{g,l,c}`; with ``scope="coef"`` for its coefficient
:math:`\beta_c + r_{g,l,c}` (the deviation alone for a column with no
population-level effect), as :func:`.accessors.ranef` and :func:`.accessors.coef`
give them. The hypothesis is then tested on the draws of each level in turn,
exactly as :func:`.hypothesis.hypothesis_table` tests one on the parameters.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import DataError
from ..model.layout import Layout
from . import accessors
from .hypothesis import hypothesis_table

#: brms's scopes: the parameters, the group deviations, or the groups' coefficients.
SCOPES = ("standard", "ranef", "coef")


def check_scope(scope: str, group: str | None, layout: Layout) -> None:
    """DataError unless ``scope`` is one of :data:`SCOPES` and ``group`` names a grouping
    factor exactly when the scope needs one."""
    if scope not in SCOPES:
        raise DataError(f"scope must be one of {', '.join(map(repr, SCOPES))}, got {scope!r}")
    names = list(dict.fromkeys(term.name for term in layout.groups))
    if scope == "standard":
        if group is not None:
            raise DataError(f"group={group!r} is for scope='ranef' or scope='coef' (a hypothesis per level of "
                            "group); with scope='standard' name a level's effect as Intercept|g[level]")
        return
    if not names:
        raise DataError(f"scope={scope!r} tests hypotheses about group effects, and the model has no group terms")
    if group not in names:
        raise DataError(f"scope={scope!r} tests the hypothesis at each level of a grouping factor: group= must "
                        f"be one of {', '.join(map(repr, names))}, got {group!r}")


def level_posteriors(posterior: xr.Dataset, layout: Layout, group: str, scope: str
                     ) -> list[tuple[object, xr.Dataset]]:
    """Per level of ``group``, in the fit's order: a dataset with one ``(chain, draw)``
    variable per effect column, the level's deviation (``"ranef"``) or coefficient (``"coef"``)."""
    read = accessors.ranef if scope == "ranef" else accessors.coef
    draws = read(posterior, layout, summary=False)[group]  # columns (level, term)
    shape = (posterior.sizes["chain"], posterior.sizes["draw"])
    levels = list(dict.fromkeys(draws.columns.get_level_values("level")))
    out = []
    for level in levels:
        part = draws[level]
        out.append((level, xr.Dataset({term: (("chain", "draw"), part[term].to_numpy().reshape(shape))
                                       for term in part.columns})))
    return out


def hypothesis_by_level(posterior: xr.Dataset, layout: Layout,
                        hypotheses: str | Sequence[str] | Mapping[str, str], group: str, scope: str,
                        prob: float = 0.95, summary: bool = True, prior: xr.Dataset | None = None
                        ) -> pd.DataFrame:
    """Each hypothesis at each level of ``group`` (see the module notes).

    Returns
    -------
    pandas.DataFrame
        ``summary=True``: the table of :func:`.hypothesis.hypothesis_table` for every
        level, stacked (level by level, hypotheses in the order given), with columns
        ``group`` and ``level`` first. ``summary=False``: the draws of ``left - right``,
        MultiIndex columns ``(level, hypothesis)``.

    Raises
    ------
    DataError
        When a hypothesis names something other than an effect column of ``group``
        (the message lists them).
    """
    levels = level_posteriors(posterior, layout, group, scope)
    priors = dict(level_posteriors(prior, layout, group, scope)) if prior is not None else {}
    tables = []
    for level, draws in levels:
        try:
            table = hypothesis_table(draws, hypotheses, prob, summary, priors.get(level))
        except DataError as error:
            columns = ", ".join(draws.data_vars)
            raise DataError(f"with scope={scope!r} a hypothesis names the effect columns of {group} "
                            f"({columns}), each standing for one level's "
                            f"{'deviation' if scope == 'ranef' else 'coefficient'}: {error}") from None
        tables.append(table)
    if not summary:
        return pd.concat(tables, axis=1, keys=[level for level, _ in levels], names=["level", "hypothesis"])
    out = pd.concat(tables)
    out.insert(0, "level", np.repeat([level for level, _ in levels], [len(t) for t in tables]))
    out.insert(0, "group", group)
    return out
