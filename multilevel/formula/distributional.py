"""Several formulas for one model: the response's and one per predicted distributional
parameter, as brms's ``bf(y ~ x, sigma ~ x)`` and bambi's ``bmb.Formula("y ~ x", "sigma ~ x")``."""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from ..errors import FormulaError
from .parser import parse_formula
from .spec import DparFormula, FormulaSpec, Terms, Var


class Formula:
    """The formulas of a distributional model: ``Formula("y ~ x + (1 | g)", "sigma ~ x + (1 | g)")``.

    The first formula models the response's mean; each further one a parameter of the
    family (``sigma``, ``shape``, ``phi``, ``zi``, ``hu``, ``nu``), named on its left
    side, on that parameter's link scale (log for a positive parameter, logit for a
    probability). A parameter without a formula of its own stays one number.
    """

    def __init__(self, formula: str, *dpars: str):
        for text in (formula, *dpars):
            if not isinstance(text, str):
                raise FormulaError(f"each formula must be a string, got {type(text).__name__}")
        self.formula = formula
        self.dpars = tuple(dpars)

    def __repr__(self) -> str:
        return f"Formula({', '.join(map(repr, (self.formula, *self.dpars)))})"

    def parse(self, columns: Sequence[str] | None = None) -> FormulaSpec:
        """The parsed :class:`FormulaSpec`, its ``dpars`` in the order given (``columns``, the
        data's, give R's ``.`` its meaning).

        Raises
        ------
        FormulaError
            For a formula that does not parse, a parameter formula whose left side is not a
            bare name, that has addition terms or offsets, or a parameter given two formulas.
        """
        spec = parse_formula(self.formula, columns)
        if columns is not None:                  # '.' in a parameter's formula leaves the response out too
            left = replace(spec, fixed=Terms(False, ()), groups=(), offsets=()).variables()
            columns = [c for c in columns if c not in left]
        dpars: list[DparFormula] = []
        for text in self.dpars:
            part = parse_formula(text, columns)
            if not isinstance(part.response, Var):
                raise FormulaError(f"{text!r}: the left side of a parameter's formula is the parameter's name, "
                                   f"such as sigma ~ x, not {part.response}")
            name = part.response.name
            if part.trials is not None or part.offsets or part.se is not None or part.weights is not None \
                    or part.cens is not None or part.trunc is not None:
                raise FormulaError(f"{text!r}: a formula for {name} takes fixed and group terms only (no trials(), "
                                   "se(), weights(), cens(), trunc() or offset(): give those in the response's)")
            if name in (d.name for d in dpars):
                raise FormulaError(f"{name} has two formulas; give one")
            dpars.append(DparFormula(name, text, part.fixed, part.groups))
        return replace(spec, dpars=tuple(dpars))


def to_spec(formula: str | Sequence[str] | Formula | FormulaSpec,
            columns: Sequence[str] | None = None) -> FormulaSpec:
    """A :class:`FormulaSpec` from a formula string, a list of formula strings (the response's
    first), a :class:`Formula` or a spec; ``columns``, the data's column names, expand R's ``.``."""
    if isinstance(formula, FormulaSpec):
        return formula
    if isinstance(formula, Formula):
        return formula.parse(columns)
    if isinstance(formula, (list, tuple)):
        if not formula:
            raise FormulaError("the list of formulas is empty: give the response's formula first")
        return Formula(*formula).parse(columns)
    return parse_formula(formula, columns)
