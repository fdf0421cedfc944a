"""R's signatures of the basis transforms and covariance structures a formula may call.

``poly(x, degree = 1, raw = FALSE)`` (stats), ``ns(x, df, knots, intercept = FALSE,
Boundary.knots)`` and ``bs(x, df, knots, degree = 3, intercept = FALSE, Boundary.knots)``
(splines) take their arguments after ``x`` by position or by name, as R matches them:
named arguments first, then the positional ones fill the remaining formals in order.
Their values are constants: numbers, R's logical constants and vectors ``c(...)``.
"""

from __future__ import annotations

import math

from .spec import BinOp, Call, Expr, Kwarg, Neg, Num

#: R's formals after ``x`` of each basis transform, in R's order.
BASIS_ARGUMENTS = {
    "poly": ("degree", "raw"),
    "ns": ("df", "knots", "intercept", "Boundary.knots"),
    "bs": ("df", "knots", "degree", "intercept", "Boundary.knots"),
}

#: lme4's covariance-structure functions of a group term, and what they mean.
COVARIANCE_FUNCTIONS = {"us": "unstructured (x | g)", "diag": "diagonal (x || g)",
                        "cs": "compound symmetry: one sd and one correlation for all of the term's effects"}


def constant(expr: Expr | bool) -> float | bool | tuple[float, ...] | None:
    """The value of a constant argument (a number, arithmetic of numbers, a logical, or
    ``c(...)`` of numbers), or None when it reads data."""
    if isinstance(expr, bool):
        return expr
    if isinstance(expr, Num):
        return expr.value
    if isinstance(expr, Neg):
        inner = constant(expr.operand)
        return -inner if isinstance(inner, float) else None
    if isinstance(expr, BinOp):
        left, right = constant(expr.left), constant(expr.right)
        if not isinstance(left, float) or not isinstance(right, float):
            return None
        ops = {"+": left + right, "-": left - right, "*": left * right,
               "/": left / right if right else math.nan, "^": left ** right if left or right > 0 else math.nan}
        return ops[expr.op]
    if isinstance(expr, Call) and expr.func == "c":
        values = tuple(constant(a) for a in expr.args)
        return values if all(isinstance(v, float) for v in values) else None
    return None


def basis_arguments(call: Call) -> dict[str, float | bool | tuple[float, ...]]:
    """The arguments after ``x`` of a basis transform by R's name, matched as R matches
    them (names first, then positions); constants only.

    Raises
    ------
    ValueError
        With the message to report, for an unknown, repeated or non-constant argument.
    """
    formals = BASIS_ARGUMENTS[call.func]
    named = {a.name: a.value for a in call.args[1:] if isinstance(a, Kwarg)}
    positional = [a for a in call.args[1:] if not isinstance(a, Kwarg)]
    for name in named:
        if name not in formals:
            raise ValueError(f"{call.func}() has no argument {name!r}; its arguments are x, {', '.join(formals)}")
    if len(named) < sum(isinstance(a, Kwarg) for a in call.args[1:]):
        raise ValueError(f"{call.func}() is given an argument twice")
    free = [f for f in formals if f not in named]
    if len(positional) > len(free):
        raise ValueError(f"{call.func}() takes at most {1 + len(formals)} arguments")
    out = {}
    for name, expr in list(named.items()) + list(zip(free, positional)):
        value = constant(expr)
        if value is None:
            raise ValueError(f"{call.func}(..., {name} = {expr}): the argument must be a constant, "
                             "a number, TRUE/FALSE or c(...) of numbers")
        out[name] = value
    return out
