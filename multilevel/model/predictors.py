"""The linear predictors of a model and how they feed the family.

A model has one linear predictor for the response's mean, ``eta``, and one per
distributional parameter predicted by a formula of its own (``sigma ~ x``):
``eta_k = X_k b_k + Σ_t z_t r_t[refs_t]`` over the fixed columns and group terms of
parameter k's formula. The parameter is ``lower + link⁻¹(eta_k)`` row by row (its
:attr:`~multilevel.model.families.Param.link`: log for a positive parameter, logit
for a probability); a parameter without a formula is one number, free in the
position's ``aux``. The family's functions take each parameter as a number or as
an array over the rows alike.

Known standard errors ``s_i`` (``y | se(s) ~ ...``) enter as the family's ``sigma``:
it is ``s_i`` (:data:`KNOWN`: no ``sigma`` parameter), or with ``se(s, sigma = TRUE)``
``sqrt(sigma² + s_i²)``, ``sigma`` from wherever it comes (brms's parameterisation).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence


from .families import Family, Param, get_link
from .layout import SE_ADDED, SE_KNOWN, Layout


#: :attr:`Predictors.sources` of a parameter in the position's ``aux``, of a constant one, and
#: of ``sigma`` when it is each row's known standard error.
FREE, FIXED, KNOWN = -1, -2, -3


class Predictors(NamedTuple):
    """Which columns and terms make each linear predictor (static: hashable).

    ``blocks[k]``: the slice ``(start, stop)`` of the fixed-effect columns of linear
    predictor k (0 the mean, then the predicted parameters in the formula's order);
    ``terms[t][j]``: the linear predictor column j of group term t adds to (a term
    joined across formulas by an ID adds to several); ``sources[j]``: for the
    family's parameter j, the linear predictor that gives it, :data:`FREE` when it is in
    the position's ``aux``, :data:`FIXED` when it is the constant :attr:`Param.fixed`,
    :data:`KNOWN` when it is each row's known standard error; ``se``: the layout's
    :attr:`~multilevel.model.layout.Layout.se`.
    """

    blocks: tuple[tuple[int, int], ...]
    terms: tuple[tuple[int, ...], ...]
    sources: tuple[int, ...]
    se: str = ""

    @classmethod
    def of(cls, layout: Layout, family: Family) -> "Predictors":
        names = ("",) + layout.dpars
        blocks = []
        for name in names:
            columns = [j for j, d in enumerate(layout.fixed_dpars) if d == name]
            start = columns[0] if columns else (blocks[-1][1] if blocks else 0)
            if columns != list(range(start, start + len(columns))):
                raise ValueError(f"the fixed columns of {name or 'the mean'} are not contiguous")
            blocks.append((start, start + len(columns)))
        known = layout.se == SE_KNOWN
        return cls(tuple(blocks), tuple(tuple(names.index(d) for d in g.dpars) for g in layout.groups),
                   tuple(names.index(p.name) if p.name in layout.dpars else KNOWN if known and p.name == "sigma"
                         else FREE if p.fixed is None else FIXED for p in family.params), layout.se)

    @property
    def distributional(self) -> bool:
        return len(self.blocks) > 1

    def free(self, family: Family) -> tuple[Param, ...]:
        """The family's parameters held in the position's ``aux`` (those without a formula)."""
        return tuple(p for p, s in zip(family.params, self.sources) if s == FREE)

    def etas(self, b, effects, X, refs, z, offset=None) -> tuple:
        """Every linear predictor (JAX or NumPy arrays over the rows); the offset joins the mean's.

        A group term adds ``Σ_j z[:, j] r[refs, j]`` column by column: one gather of a
        vector per column (and, in the gradient, one scatter-add of a vector), which XLA
        on CPU runs several times faster than the gather of the rows of ``r`` (levels, q).
        """
        out = []
        for k, (start, stop) in enumerate(self.blocks):
            eta = X[:, start:stop] @ b[start:stop] if self.distributional else X @ b
            if k == 0 and offset is not None:
                eta = eta + offset
            for r, ref, zt, targets in zip(effects, refs, z, self.terms):
                for j, target in enumerate(targets):
                    if target == k:
                        eta = eta + zt[:, j] * r[:, j][ref]
            out.append(eta)
        return tuple(out)

    def family_arguments(self, family: Family, etas: Sequence, aux: Sequence, se=None) -> tuple:
        """``(eta, parameters)`` as the family's functions take them: the mean's linear
        predictor, and each parameter of the family in order, from ``aux`` (the free
        ones, in order) or from its linear predictor; ``sigma`` with the rows' known
        standard errors ``se`` (see the module notes). Without ``se`` (new data that lack
        its column) a known ``sigma`` is NaN and an added one is ``sigma`` alone: enough
        for the mean, which does not use it."""
        params, free = [], 0
        for param, source in zip(family.params, self.sources):
            if source == FREE:
                value = aux[free]
                free += 1
            elif source == FIXED:
                value = param.fixed
            elif source == KNOWN:
                value = float("nan") if se is None else se
            else:
                value = param.lower + get_link(param.link).inverse(etas[source])
            if self.se == SE_ADDED and param.name == "sigma" and se is not None:
                value = (value * value + se * se) ** 0.5
            params.append(value)
        return etas[0], tuple(params)
