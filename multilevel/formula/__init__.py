"""Stage 1: formula strings to a frozen :class:`FormulaSpec`."""

from .parser import FUNCTIONS, parse_formula
from .spec import BinOp, Call, Expr, FormulaSpec, GroupTerm, Neg, Num, Term, Terms, Var, term_name

__all__ = [
    "FUNCTIONS", "parse_formula", "BinOp", "Call", "Expr", "FormulaSpec", "GroupTerm",
    "Neg", "Num", "Term", "Terms", "Var", "term_name",
]
