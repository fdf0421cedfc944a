"""The parameters of a model: their names, classes and shapes.

For a design with fixed-effect columns ``X``, a family with auxiliary
parameters (``sigma``) and group terms ``(c_1 + ... + c_q | g)``:

============================  ===========  ===================================
parameter                     class        shape
============================  ===========  ===================================
``Intercept``, ``diam`` ...   Intercept/b  scalar each
``sigma``                     sigma        scalar
``sd(c|g)``                   sd           scalar each, one per column of z
``cor(c_i,c_j|g)``            cor          one LKJ prior per correlated term
``c|g``                       (effects)    one value per level of g
============================  ===========  ===================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ..design import Design, GroupData
from .families import Family


class Term(NamedTuple):
    """The static shape of one group term, the one description every sampler shares:
    its number of columns, whether they are correlated, and the index of its grouping
    factor in the order the sampler keeps the factors (0 where it keeps none)."""

    q: int
    has_cor: bool
    factor: int = 0


@dataclass(frozen=True)
class GroupLayout:
    """Names of one group term's parameters."""

    name: str
    columns: tuple[str, ...]
    levels: tuple[str, ...]
    correlated: bool

    @property
    def q(self) -> int:
        return len(self.columns)

    @property
    def has_cor(self) -> bool:
        return self.correlated and self.q > 1

    @property
    def sd_names(self) -> tuple[str, ...]:
        return tuple(f"sd({c}|{self.name})" for c in self.columns)

    @property
    def cor_names(self) -> tuple[str, ...]:
        """``cor(a,b|g)`` for each pair i < j, in row-major order of the lower triangle."""
        if not self.has_cor:
            return ()
        return tuple(f"cor({self.columns[j]},{self.columns[i]}|{self.name})"
                     for i in range(self.q) for j in range(i))

    @property
    def effect_names(self) -> tuple[str, ...]:
        return tuple(f"{c}|{self.name}" for c in self.columns)

    @property
    def dim(self) -> str:
        """Name of the coordinate dimension of the group levels."""
        return self.name

    @classmethod
    def of(cls, group: GroupData) -> "GroupLayout":
        return cls(group.name, group.columns, group.levels, group.correlated)


@dataclass(frozen=True)
class Layout:
    """All parameter names of a model, in the order of the summary table."""

    fixed: tuple[str, ...]
    aux: tuple[str, ...]
    groups: tuple[GroupLayout, ...]

    @classmethod
    def of(cls, design: Design, family: Family) -> "Layout":
        return cls(design.columns, family.aux, tuple(GroupLayout.of(g) for g in design.groups))

    def terms(self, factors: tuple[str, ...] = ()) -> tuple[Term, ...]:
        """Each group term's :class:`Term`, its factor indexed in ``factors`` (if given)."""
        return tuple(Term(g.q, g.has_cor, factors.index(g.name) if factors else 0) for g in self.groups)

    def scalar_names(self) -> tuple[str, ...]:
        """Fixed effects, auxiliary parameters, group sds and correlations."""
        names = list(self.fixed) + list(self.aux)
        for g in self.groups:
            names += list(g.sd_names) + list(g.cor_names)
        return tuple(names)
