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

A parameter predicted by a formula of its own (``sigma ~ x + (1 | g)``) is not a
scalar: its formula's coefficients join the fixed effects and its group terms the
group terms, their columns named with the parameter as a prefix (``sigma_Intercept``,
``sigma_x``, ``sd(sigma_Intercept|g)``), as brms names them.

Known standard errors (``y | se(s) ~ ...``) make each row's sd ``s_i``: the model then
has no ``sigma`` (:data:`SE_KNOWN`), unless ``se(s, sigma = TRUE)`` keeps it, the sd
being ``sqrt(sigma² + s_i²)`` (:data:`SE_ADDED`).

Smooth terms (``s(x)``) add fixed-effect columns, some penalised: one sd per penalty,
``sds(sx_1)``, held in ``aux`` after the family's parameters (:attr:`Layout.smooths`,
:mod:`multilevel.model.penalties`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ..design import Design, GroupData
from ..design.smooths import penalised_blocks
from .families import Family
from .penalties import Penalty


#: :attr:`Layout.se`: each row's sd is its known standard error (no ``sigma``), or
#: ``sqrt(sigma² + s_i²)``.
SE_KNOWN, SE_ADDED = "known", "added"


class Term(NamedTuple):
    """The static shape of one group term, the one description every sampler shares:
    its number of columns, whether they are correlated, and the index of its grouping
    factor in the order the sampler keeps the factors (0 where it keeps none)."""

    q: int
    has_cor: bool
    factor: int = 0
    #: Compound symmetry (``cs(x | g)``): the position holds one sd and one correlation
    #: (:mod:`multilevel.model.compound`), the sampler sees q equal sds and their correlations.
    compound: bool = False


@dataclass(frozen=True)
class GroupLayout:
    """Names of one group term's parameters."""

    name: str
    columns: tuple[str, ...]
    levels: tuple[str, ...]
    correlated: bool
    #: Per column, the predicted parameter whose formula holds it ("" for the mean; all "" if empty).
    dpars: tuple[str, ...] = ()
    #: ``"cs"`` for compound symmetry (``cs(x | g)``), else "".
    structure: str = ""

    def __post_init__(self):
        if not self.dpars:
            object.__setattr__(self, "dpars", ("",) * len(self.columns))

    @property
    def q(self) -> int:
        return len(self.columns)

    @property
    def has_cor(self) -> bool:
        return self.correlated and self.q > 1

    @property
    def compound(self) -> bool:
        """Whether the term is compound-symmetric with more than one column (one sd, one correlation)."""
        return self.structure == "cs" and self.q > 1

    @property
    def sd_names(self) -> tuple[str, ...]:
        """``sd(c|g)`` per column; a compound-symmetric term's one sd, ``sd(a,b,c|g)``, for each."""
        if self.compound:
            return (f"sd({','.join(self.columns)}|{self.name})",) * self.q
        return tuple(f"sd({c}|{self.name})" for c in self.columns)

    @property
    def cor_names(self) -> tuple[str, ...]:
        """``cor(a,b|g)`` for each pair i < j, in row-major order of the lower triangle; a
        compound-symmetric term's one correlation, ``cor(a,b,c|g)``, for each pair."""
        if not self.has_cor:
            return ()
        if self.compound:
            return (f"cor({','.join(self.columns)}|{self.name})",) * (self.q * (self.q - 1) // 2)
        return tuple(f"cor({self.columns[j]},{self.columns[i]}|{self.name})"
                     for i in range(self.q) for j in range(i))

    @property
    def dpar(self) -> str | None:
        """The one linear predictor the term adds to ("" the mean's, "sigma" ...), or None
        for a term that joins several (an ID across formulas)."""
        return self.dpars[0] if len(set(self.dpars)) == 1 else None

    def column_suffix(self, j: int) -> str:
        """What the prior class of column j's sd ends with: ``_sigma`` (brms's ``dpar``)."""
        return f"_{self.dpars[j]}" if self.dpars[j] else ""

    @property
    def cor_key(self) -> str:
        """The prior key of the term's correlation matrix: ``cor|g`` (``cor_sigma|g`` for a term
        of sigma's formula; ``cor|g`` for one that joins formulas)."""
        suffix = f"_{self.dpar}" if self.dpar else ""
        return f"cor{suffix}|{self.name}"

    @property
    def effect_names(self) -> tuple[str, ...]:
        return tuple(f"{c}|{self.name}" for c in self.columns)

    @classmethod
    def of(cls, group: GroupData) -> "GroupLayout":
        return cls(group.name, group.columns, group.levels, group.correlated, group.dpars, group.structure)


@dataclass(frozen=True)
class Layout:
    """All parameter names of a model, in the order of the summary table.

    ``aux`` names the family's free scalar parameters (not those fixed, such as an ordinal
    model's ``disc``, unless predicted); ``dpars`` those predicted
    by formulas of their own, and ``fixed_dpars`` whose each fixed effect is ("" for
    the mean's; all "" when not given). ``se`` says how known standard errors enter the
    family's ``sigma``: "" (none), :data:`SE_KNOWN` (they are the sd: ``sigma`` is not a
    parameter) or :data:`SE_ADDED` (the sd is ``sqrt(sigma² + s_i²)``).
    """

    fixed: tuple[str, ...]
    aux: tuple[str, ...]
    groups: tuple[GroupLayout, ...]
    dpars: tuple[str, ...] = ()
    fixed_dpars: tuple[str, ...] = ()
    se: str = ""
    #: Per penalised block of a smooth: its sd's name (the last entries of ``aux``) and its columns.
    smooths: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __post_init__(self):
        if not self.fixed_dpars:
            object.__setattr__(self, "fixed_dpars", ("",) * len(self.fixed))

    @classmethod
    def of(cls, design: Design, family: Family) -> "Layout":
        dpars = tuple(d.name for d in design.spec.dpars)
        se = se_mode(design.spec.se)
        smooths = penalised_blocks(design.spec, design.encoders)
        aux = tuple(p.name for p in family.params
                    if p.name not in dpars and p.fixed is None and not (se == SE_KNOWN and p.name == "sigma"))
        return cls(design.columns, aux + tuple(name for name, _ in smooths),
                   tuple(GroupLayout.of(g) for g in design.groups), dpars, design.column_dpars, se, smooths)

    def level_dim(self, group: GroupLayout) -> str:
        """The coordinate dimension of ``group``'s levels in the posterior: the factor's name,
        or ``name_levels`` when a fixed effect or family parameter has that name (``y ~ num +
        (1 | num)``: the variable ``num`` and the dimension ``num`` cannot share a Dataset)."""
        return f"{group.name}_levels" if group.name in self.fixed or group.name in self.aux else group.name

    @property
    def penalties(self) -> tuple[Penalty, ...]:
        """The smooths' penalised blocks as indices: their sd in ``aux``, their columns in ``fixed``."""
        return tuple(Penalty(self.aux.index(name), tuple(self.fixed.index(c) for c in columns))
                     for name, columns in self.smooths)

    @property
    def penalised(self) -> frozenset[str]:
        """The names of the penalised columns."""
        return frozenset(c for _, columns in self.smooths for c in columns)

    def terms(self, factors: tuple[str, ...] = ()) -> tuple[Term, ...]:
        """Each group term's :class:`Term`, its factor indexed in ``factors`` (if given)."""
        return tuple(Term(g.q, g.has_cor, factors.index(g.name) if factors else 0, g.compound) for g in self.groups)

    def scalar_names(self) -> tuple[str, ...]:
        """Fixed effects, auxiliary parameters, group sds and correlations."""
        names = list(self.fixed) + list(self.aux)
        for g in self.groups:
            names += list(g.sd_names) + list(g.cor_names)
        return tuple(dict.fromkeys(names))


def se_mode(se) -> str:
    """:attr:`Layout.se` of a formula's ``se()`` term (a :class:`~multilevel.formula.spec.SeTerm`
    or None)."""
    return "" if se is None else SE_ADDED if se.sigma else SE_KNOWN
