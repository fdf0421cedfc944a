"""R's functions on columns as formulas call them, and what to write instead of the others.

``R_FUNCTIONS`` lists the functions of base R and stats that a formula may call on
its columns, each with its number of arguments and the names R gives the arguments
after the first (so ``log(x, base = 2)`` and ``log(x, 2)`` are one call). Calls are
stored with their arguments by position, in R's order, and print that way
(``round(x, 1)``); :mod:`multilevel.design.rfunctions` evaluates them.

A function that is not understood is refused with a message naming it and, where
there is one, what to write instead (``UNSUPPORTED``); ``pkg::f`` is read as ``f``
when ``f`` is understood and ``pkg`` is one of R's packages that defines such
functions (``stats::poly``, ``base::round``), and refused otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RFunction:
    """A function of R: its least and greatest number of arguments (None: any), and the
    names of its arguments after the first, in R's order."""

    least: int
    most: int | None
    options: tuple[str, ...] = ()


#: R's functions on columns (base R and stats), as ``name: RFunction``.
R_FUNCTIONS = {
    "factor": RFunction(1, 1), "as.factor": RFunction(1, 1), "ordered": RFunction(1, 1),
    "as.numeric": RFunction(1, 1), "as.integer": RFunction(1, 1), "as.logical": RFunction(1, 1),
    "round": RFunction(1, 2, ("digits",)), "log": RFunction(1, 2, ("base",)),
    "floor": RFunction(1, 1), "ceiling": RFunction(1, 1), "trunc": RFunction(1, 1), "sign": RFunction(1, 1),
    "pmin": RFunction(2, None), "pmax": RFunction(2, None),
    "sin": RFunction(1, 1), "cos": RFunction(1, 1),
}

#: The functions that make a factor of their argument (their levels are learned when fitting).
FACTOR_FUNCTIONS = ("factor", "as.factor", "ordered")

#: Packages whose functions ``pkg::f`` may name, when ``f`` is understood.
R_PACKAGES = ("base", "stats", "splines", "lme4", "brms", "glmmTMB", "mgcv")

#: Functions users bring from R that no formula here takes, with what to do instead.
UNSUPPORTED = {
    "as.character": "write factor(x) to treat a column as categorical",
    "as.double": "write as.numeric(x)",
    "relevel": "reorder the categories in the data instead: a pandas Categorical's first category "
               "is the reference level",
    "interaction": "write a:b for the interaction of two factors",
    "cut": "cut the column in the data first (pandas.cut), then use it as a factor",
    "ifelse": "compute the column in the data first, or use a comparison such as (x > 0)",
    "mo": "brms's monotonic effects are not supported; use factor(x) for one effect per level",
    "me": "brms's measurement-error terms are not supported",
    "mi": "brms's missing-value imputation is not supported; drop or impute the rows first",
    "mm": "brms's multi-membership terms are not supported",
    "gp": "brms's Gaussian processes are not supported",
    "ar": "autocorrelation structures are not supported; a group term (1 | g) models correlation "
          "within groups",
    "arma": "autocorrelation structures are not supported; a group term (1 | g) models correlation "
            "within groups",
    "ar1": "glmmTMB's ar1() covariance is not supported; (1 | g) or (time | g) are",
    "ou": "glmmTMB's ou() covariance is not supported; (1 | g) or (time | g) are",
    "toep": "glmmTMB's toep() covariance is not supported; (x | g) gives an unstructured one",
    "corAR1": "nlme's correlation structures are not supported; a group term (1 | g) models correlation "
              "within groups",
    "corCAR1": "nlme's correlation structures are not supported; a group term (1 | g) models correlation "
               "within groups",
    "corCompSymm": "nlme's correlation structures are not supported; (1 | g) is compound symmetry",
    "strata": "survival strata are not supported",
    "lag": "compute the lagged column in the data first",
    "diff": "compute the differenced column in the data first",
    "nchar": "compute the column in the data first",
    "paste": "write a:b for the combinations of two factors",
}


def arity_problem(name: str, count: int) -> str | None:
    """What is wrong with calling R function ``name`` with ``count`` arguments, or None."""
    function = R_FUNCTIONS[name]
    if count < function.least or (function.most is not None and count > function.most):
        if function.most is None:
            wanted = f"at least {function.least}"
        elif function.most == function.least:
            wanted = str(function.least)
        else:
            wanted = f"{function.least} to {function.most}"
        return f"{name}() takes {wanted} argument(s), got {count}"
    return None


def unknown_function_message(name: str, allowed: list[str]) -> str:
    """The error for a call of a function no formula takes: what it is, and what to write."""
    base = name.split("::")[-1]
    advice = UNSUPPORTED.get(base)
    if advice is not None:
        return f"{name}() is not supported: {advice}"
    return f"unknown function {name!r}; formulas may use {', '.join(sorted(set(allowed)))}"


def namespace_problem(package: str, name: str, known: bool) -> str | None:
    """What is wrong with ``package::name`` (None when it reads as ``name``); ``known`` says
    whether ``name`` alone is a function formulas take."""
    if name in UNSUPPORTED:
        return f"{package}::{name}() is not supported: {UNSUPPORTED[name]}"
    if not known:
        return f"{package}::{name}() is not a function formulas take"
    if package not in R_PACKAGES:
        return (f"{package}::{name}: functions of package {package!r} are not understood; "
                f"write {name}() for the one formulas take")
    return None
