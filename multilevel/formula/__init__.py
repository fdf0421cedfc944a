"""Stage 1: formula strings to a frozen :class:`FormulaSpec`."""

from .distributional import Formula, to_spec
from .parser import FUNCTIONS, parse_formula
from .spec import (BinOp, Call, DparFormula, Expr, FormulaSpec, GroupTerm, Neg, Num, SeTerm, Term, Terms, Var,
                   WeightsTerm, term_name)

__all__ = [
    "FUNCTIONS", "Formula", "to_spec", "parse_formula", "BinOp", "Call", "DparFormula", "Expr", "FormulaSpec", "GroupTerm",
    "Neg", "Num", "SeTerm", "Term", "Terms", "Var", "WeightsTerm", "term_name",
]
