"""The grouping structure of a design, computed once: factors, their terms and nesting.

A grouping factor is the ``g`` of one or more group terms ``(... | g)``. Factor b
is *nested* in factor a when every level of b lies within one level of a, and a
has fewer levels (MixedModels.jl's ``isnested``). Everything that depends on the
nesting reads it from here: the chain of nested factors the collapsed sampler
needs (:attr:`GroupStructure.order`), the blocks the Gibbs sampler draws
jointly (:attr:`GroupStructure.blocks`), and the parent terms of hierarchical
centring (:meth:`GroupStructure.terms_within`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Factor:
    """One grouping factor.

    ``terms`` are the indices of the design's group terms on it; ``within`` the
    factors it is nested in, nearest (most levels) first.
    """

    name: str
    num_levels: int
    terms: tuple[int, ...]
    within: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupStructure:
    """The grouping factors of a model, in order of first appearance in the formula."""

    factors: tuple[Factor, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.factors)

    def factor(self, name: str) -> Factor:
        return next(f for f in self.factors if f.name == name)

    @property
    def term_factor(self) -> tuple[str, ...]:
        """The factor of each group term, in term order."""
        out = {t: f.name for f in self.factors for t in f.terms}
        return tuple(out[t] for t in range(len(out)))

    @property
    def order(self) -> tuple[str, ...] | None:
        """The factors from outermost to innermost if they form one nested chain (each
        nested in the one before), else None. One factor is a chain of one; none, the
        empty chain."""
        chain = sorted(self.factors, key=lambda f: f.num_levels)
        if all(outer.name in inner.within for outer, inner in zip(chain, chain[1:])):
            return tuple(f.name for f in chain)
        return None

    @property
    def blocks(self) -> tuple[tuple[str, ...], ...]:
        """The factors in blocks: an inner factor paired with the outermost factor it is
        nested in that no other block has taken (outer first), every other factor alone,
        largest first. For lecturers nested in departments, crossed with students,
        ``((student,), (dept, lecturer))``."""
        blocks, taken = [], set()
        for inner in sorted(self.factors, key=lambda f: -f.num_levels):
            if inner.name in taken:
                continue
            taken.add(inner.name)
            outer = next((name for name in reversed(inner.within) if name not in taken), None)
            if outer is None:
                blocks.append((inner.name,))
            else:
                taken.add(outer)
                blocks.append((outer, inner.name))
        return tuple(blocks)

    def terms_within(self, term: int) -> tuple[int, ...]:
        """The terms whose factor the factor of ``term`` is nested in, nearest first."""
        factor = self.factor(self.term_factor[term])
        return tuple(t for name in factor.within for t in self.factor(name).terms)


def nested_in(inner_refs: np.ndarray, inner_levels: int, outer_refs: np.ndarray) -> bool:
    """Whether every level of the inner factor lies within one level of the outer (O(rows))."""
    parent = np.empty(inner_levels, dtype=outer_refs.dtype)
    parent[inner_refs] = outer_refs
    return bool(np.array_equal(parent[inner_refs], outer_refs))


def group_structure(names: tuple[str, ...], refs: tuple[np.ndarray, ...],
                    num_levels: tuple[int, ...]) -> GroupStructure:
    """The structure of group terms on factors ``names`` (one per term, repeated for
    several terms on one factor), with each term's ``refs`` and number of levels."""
    first = {}
    for t, name in enumerate(names):
        first.setdefault(name, t)
    factors = []
    for name, t in first.items():
        outer = [(o, u) for o, u in first.items()
                 if num_levels[u] < num_levels[t] and nested_in(refs[t], num_levels[t], refs[u])]
        outer.sort(key=lambda ou: (-num_levels[ou[1]], ou[1]))
        factors.append(Factor(name, num_levels[t], tuple(k for k, n in enumerate(names) if n == name),
                              tuple(o for o, _ in outer)))
    return GroupStructure(tuple(factors))


def chain_structure(names: tuple[str, ...], order: tuple[str, ...],
                    num_levels: dict[str, int]) -> GroupStructure:
    """The structure of factors known to form the nested chain ``order`` (outermost
    first), as computed from sufficient statistics without the rows."""
    factors = tuple(Factor(name, num_levels[name], tuple(k for k, n in enumerate(names) if n == name),
                           tuple(reversed(order[:order.index(name)])))
                    for name in dict.fromkeys(names))
    return GroupStructure(factors)
