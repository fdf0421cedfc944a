"""Where centred group effects sit: the nesting of group terms and hierarchical centring.

A centred column j of term t holds, for each level l, the *total* effect
``T_t[l, j] = o_t[l, j] + r_t[l, j]`` instead of the deviation ``r_t``, where the
offset ``o_t`` is what the level's effect deviates from:

* the total ``T_p[parent(l), j']`` of its parent, when t is nested in a term p
  (every level of t lies within one level of p, and p has fewer levels) that
  has a column of the same name j' (the nearest such p: for chicks in broods in
  locations, a chick's intercept sits around its brood's total, the brood's
  around its location's);
* else the fixed effect ``b[k]`` of the same name, for one tree of nested terms
  per fixed column (a fixed effect can be the mean of one set of effects only),
  and, in the intercept column, the fixed columns constant within the term's
  levels but not its parent's (a brood's year, a location's height);
* else 0.

Which of several crossed trees carries a fixed effect matters: a centred term
that does not carry it keeps its effects around 0, and the data then pin only
the sum of the fixed effect and its effects' mean, which its prior holds
within ``s / sqrt(L)`` (sd ``s``, ``L`` levels); moving the fixed effect takes
a collective move of all its levels. So the carrier is the tree whose centred
term has the largest ``sum s² / L`` on its path from the root (the effects'
mean held least by the prior): a Poisson model with crossed terms of 20 levels
(sd 1) and 200 levels (sd 0.5), both centred, had an Intercept bulk ESS of 3200
of 2000 draws with the 20-level term carrying it, 13 with the other.

Totals are defined for non-centred terms too (``T_t = o_t + r_t``), so a centred
brood term sits around ``b[k] + r_location`` when the location term is
non-centred. This is the hierarchical centring of Gelfand, Sahu & Carlin (1995)
for nested random effects: the data pin a level's total, so a centred level has
no ridge with the effects above it (a brood alone in its location pins
``Intercept + r_location + r_brood``, not the brood's deviation). The map
from centred totals to deviations is unit-triangular in the order of
increasing number of levels (parents first), so it adds no Jacobian.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..design import Design

INTERCEPT = "Intercept"


class TermCentering(NamedTuple):
    """How one group term's effects sit (arrays: data of the log density, not structure).

    ``centred`` (q,) 0/1 per column; the totals start from ``select @ b`` (``select``
    (q, p): the fixed effect of the same name, for the root that carries it) plus
    ``level_X @ b`` (``level_X`` (levels, p)) in the column ``into`` (q,) one-hot: the
    fixed columns that enter the chain at this term; ``links[p] = (refs (levels,),
    select (q, q_p))`` adds ``T_p[refs] @ select.T``, the totals of term p (``select``
    zero for a term that is not a parent).
    """

    centred: jax.Array
    select: jax.Array
    level_X: jax.Array
    into: jax.Array
    links: tuple[tuple[jax.Array, jax.Array], ...]


def term_parents(design: Design) -> tuple[tuple[tuple[int, int] | None, ...], ...]:
    """Per term, per column: ``(p, j')``, the parent term and its column of the same
    name (the nearest term with fewer levels that the term is nested in and that has
    the column), or None."""
    groups = design.groups
    parents = []
    for t, g in enumerate(groups):
        outer = design.structure.terms_within(t)
        parents.append(tuple(next(((p, groups[p].columns.index(name)) for p in outer
                                   if name in groups[p].columns), None) for name in g.columns))
    return tuple(parents)


def term_order(num_levels: list[int]) -> list[int]:
    """Terms in the order their totals are computed: fewer levels first (parents first)."""
    return sorted(range(len(num_levels)), key=lambda t: (num_levels[t], t))


def centering_arrays(design: Design, centered: tuple[bool, ...] | None = None,
                     sds: list | None = None) -> tuple[TermCentering, ...]:
    """``ModelData.centering``, one :class:`TermCentering` per group term, for a choice
    per term (None: all non-centred); ``sds``: each term's sds (q,), to choose the
    carrier of a fixed effect among crossed terms (default 1). See the module notes.
    """
    groups = design.groups
    centered = centered or (False,) * len(groups)
    parents = term_parents(design)
    fixed = {name: k for k, name in enumerate(design.columns)}
    X = np.asarray(design.X, dtype=float)
    mean_columns = np.array([not d for d in design.column_dpars] if design.column_dpars
                            else [True] * X.shape[1], dtype=bool)

    def root(t: int, j: int) -> tuple[int, int]:
        while parents[t][j] is not None:
            t, j = parents[t][j]
        return t, j

    def spread(t: int, j: int) -> float:
        """``sum s² / L`` from the root down to column j of term t."""
        total = 0.0
        while True:
            total += (1.0 if sds is None else float(sds[t][j]) ** 2) / groups[t].num_levels
            if parents[t][j] is None:
                return total
            t, j = parents[t][j]

    carrier: dict[str, tuple[int, int]] = {}
    best: dict[str, float] = {}
    for t, (g, c) in enumerate(zip(groups, centered)):
        for j, name in enumerate(g.columns):
            if c and name in fixed and spread(t, j) > best.get(name, -1.0):
                carrier[name], best[name] = root(t, j), spread(t, j)
    first_rows = [_first_rows(g) for g in groups]
    intercept_tree = carrier.get(INTERCEPT)
    constant = [np.all(np.isclose(X[first[g.refs]], X), axis=0) if intercept_tree is not None else None
                for g, first in zip(groups, first_rows)]
    out = []
    for t, (g, c) in enumerate(zip(groups, centered)):
        select = np.zeros((g.q, X.shape[1]))
        for j, name in enumerate(g.columns):
            if carrier.get(name) == (t, j):
                select[j, fixed[name]] = 1.0
        into, level_X = np.zeros(g.q), np.zeros((g.num_levels, X.shape[1]))
        if intercept_tree is not None and INTERCEPT in g.columns:
            j = g.columns.index(INTERCEPT)
            if root(t, j) == intercept_tree:
                parent = parents[t][j]
                above = constant[parent[0]] if parent is not None else np.zeros_like(constant[t])
                enters = constant[t] & ~above & mean_columns          # a parameter's columns stay out
                enters[fixed[INTERCEPT]] = False                      # carried by select
                into[j], level_X = 1.0, X[first_rows[t]] * enters
        links = []
        for p, h in enumerate(groups):
            link = np.zeros((g.q, h.q))
            for j, parent in enumerate(parents[t]):
                if parent is not None and parent[0] == p:
                    link[j, parent[1]] = 1.0
            refs = h.refs[first_rows[t]] if link.any() else np.zeros(g.num_levels, dtype=np.int64)
            links.append((jnp.asarray(refs, dtype=jnp.int32), jnp.asarray(link, dtype=jnp.float64)))
        out.append(TermCentering(jnp.full(g.q, float(c), dtype=jnp.float64), jnp.asarray(select, dtype=jnp.float64),
                                 jnp.asarray(level_X, dtype=jnp.float64), jnp.asarray(into, dtype=jnp.float64),
                                 tuple(links)))
    return tuple(out)


def _first_rows(g) -> np.ndarray:
    """The first row of each level."""
    first = np.zeros(g.num_levels, dtype=np.int64)
    first[g.refs[::-1]] = np.arange(len(g.refs))[::-1]
    return first


def term_offset(t: int, b, totals: list, centering: tuple):
    """The offset ``o_t`` (levels, q) of term t, given the totals of the terms before it."""
    term = centering[t]
    o = term.select @ b + (term.level_X @ b)[:, None] * term.into
    for p, total in enumerate(totals):
        if total is not None:
            refs, link = term.links[p]
            o = o + total[refs] @ link.T
    return o
