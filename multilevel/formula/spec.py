"""The frozen result of parsing a formula.

A formula ``y ~ a*b + (1 + x | g)`` becomes a :class:`FormulaSpec`:

* ``response``: an expression tree (:class:`Var`, :class:`Num`, :class:`Call`,
  :class:`BinOp`, :class:`Neg`) evaluated on the data;
* ``fixed``: :class:`Terms`, an intercept flag and a tuple of terms, each term a
  tuple of factor expressions multiplied together (``a:b`` is ``(Var('a'), Var('b'))``);
* ``groups``: one :class:`GroupTerm` per ``( ... | g)`` after expanding nesting
  (``a/b`` gives a term for ``a`` and one for ``a:b``);
* ``trials``: the number of binomial trials of ``y | trials(n) ~ ...`` (None
  otherwise; ``cbind(s, f) ~ ...`` keeps the call as its response instead);
* ``se``, ``weights``: brms's other addition terms of the response, ``y | se(s) ~ ...``
  (a known standard error per row: :class:`SeTerm`) and ``y | weights(w) ~ ...``
  (each row's log-likelihood times ``w``: :class:`WeightsTerm`); None when absent.
  Several are joined by ``+``: ``y | se(s) + weights(w) ~ ...``;
* ``cens``, ``trunc``: a censored response, ``y | cens(c) ~ ...`` or ``y | cens(c, y2) ~ ...``
  (:class:`CensTerm`), and a truncated one, ``y | trunc(lb = 0, ub = 100) ~ ...``
  (:class:`TruncTerm`); None when absent;
* ``offsets``: the arguments of the ``offset(...)`` terms, added to the linear
  predictor with coefficient 1;
* ``dpars``: one :class:`DparFormula` per distributional parameter of the family
  predicted by a formula of its own (``sigma ~ x + (1 | g)``), as brms's ``bf()``.

Expressions print back canonically (``str(expr)``); that text names design
columns and keys the stateful transforms (``scale``, ``center``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Union

#: Binding strength of operators, for printing with minimal parentheses (R's order: ``|`` loosest,
#: then ``&``, ``!``, comparisons, arithmetic).
_PRECEDENCE = {"|": -3, "&": -2, ">": 0, ">=": 0, "<": 0, "<=": 0, "==": 0, "!=": 0,
               "+": 1, "-": 1, "*": 2, "/": 2, "^": 4}
#: Operators printed with spaces around them, as R deparses them (``x > 250``, ``a & b``).
_SPACED = {"|", "&", ">", ">=", "<", "<=", "==", "!="}


@dataclass(frozen=True)
class Var:
    """A column of the data."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Num:
    """A numeric literal."""

    value: float

    def __str__(self) -> str:
        """The shortest text that reads back as the same number (``2``, not ``2.0``)."""
        text = repr(self.value)
        return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class Call:
    """One of the fixed set of functions a formula may use (see ``FUNCTIONS``)."""

    func: str
    args: tuple["Expr", ...]

    def __str__(self) -> str:
        return f"{self.func}({', '.join(str(a) for a in self.args)})"


@dataclass(frozen=True)
class Str:
    """A string literal, compared with a factor's labels: ``"F"`` of ``sex == "F"``."""

    value: str

    def __str__(self) -> str:
        return f'"{self.value}"'


@dataclass(frozen=True)
class BinOp:
    """Arithmetic inside ``I()`` or a function argument: ``+ - * / ^``; R's comparisons
    ``> >= < <= == !=`` and logical ``& |`` (values TRUE/FALSE, see ``design/logical.py``)."""

    op: str
    left: "Expr"
    right: "Expr"

    def __str__(self) -> str:
        prec = _PRECEDENCE[self.op]
        left, right = str(self.left), str(self.right)
        if isinstance(self.left, (BinOp, Neg, Not)) and _prec(self.left) < prec + (self.op == "^"):
            left = f"({left})"
        if isinstance(self.right, (BinOp, Neg, Not)) and _prec(self.right) < prec + (self.op in ("-", "/")):
            right = f"({right})"
        if self.op in _SPACED:
            return f"{left} {self.op} {right}"
        return f"{left}{self.op}{right}"


@dataclass(frozen=True)
class Neg:
    """Unary minus."""

    operand: "Expr"

    def __str__(self) -> str:
        inner = str(self.operand)
        return f"-({inner})" if isinstance(self.operand, BinOp) else f"-{inner}"


@dataclass(frozen=True)
class Kwarg:
    """A named argument of a call, as R writes it: ``raw = TRUE``, ``knots = c(2, 5)``.

    ``value`` is an expression, or a bool for R's logical constants.
    """

    name: str
    value: "Expr | bool"

    def __str__(self) -> str:
        value = ("TRUE" if self.value else "FALSE") if isinstance(self.value, bool) else str(self.value)
        return f"{self.name} = {value}"


@dataclass(frozen=True)
class Not:
    """R's logical negation ``!x``."""

    operand: "Expr"

    def __str__(self) -> str:
        inner = str(self.operand)
        return f"!({inner})" if isinstance(self.operand, BinOp) else f"!{inner}"


Expr = Union[Var, Num, Str, Call, BinOp, Neg, Not, Kwarg]
Term = tuple[Expr, ...]


def _prec(expr: Expr) -> int:
    if isinstance(expr, Not):
        return -1
    return 3 if isinstance(expr, Neg) else _PRECEDENCE[expr.op]


def term_name(term: Term) -> str:
    """``"Intercept"`` for the empty term, else the factors joined by ``:``."""
    return ":".join(str(f) for f in term) if term else "Intercept"


@dataclass(frozen=True)
class Terms:
    """A sum of terms with an intercept flag: the right-hand side of a formula."""

    intercept: bool
    terms: tuple[Term, ...]

    def __str__(self) -> str:
        parts = ["1" if self.intercept else "0"] + [term_name(t) for t in self.terms]
        return " + ".join(parts)


@dataclass(frozen=True)
class GroupTerm:
    """``(effects | group)``: effects varying over the levels of a grouping factor.

    ``group`` is a tuple of factor expressions whose interaction defines the
    levels (``(1 | a:b)`` has ``group == (Var('a'), Var('b'))``). ``correlated``
    is False for ``||``: every effect then gets its own sd and no correlation.
    ``structure`` is ``"cs"`` for lme4's ``cs(x | g)``: compound symmetry, one sd and one
    correlation shared by all the term's effects ("" otherwise).
    """

    effects: Terms
    group: Term
    correlated: bool
    #: brms's ID (``(1 |p| g)``): the terms on the same factor with the same ID, across the
    #: model's formulas, are one term with correlated effects.
    id: str = ""
    structure: str = ""

    @property
    def group_name(self) -> str:
        return ":".join(str(g) for g in self.group)

    def __str__(self) -> str:
        bar = f"|{self.id}|" if self.id else "|" if self.correlated else "||"
        if self.structure:
            return f"{self.structure}({self.effects} {bar} {self.group_name})"
        return f"({self.effects} {bar} {self.group_name})"


@dataclass(frozen=True)
class DparFormula:
    """``sigma ~ x + (1 | g)``: the linear predictor of a distributional parameter
    (``name``) of the family, on the parameter's link scale."""

    name: str
    formula: str
    fixed: Terms
    groups: tuple[GroupTerm, ...]


@dataclass(frozen=True)
class SeTerm:
    """``se(s)`` or ``se(s, sigma = TRUE)``: the known standard error ``s_i`` of each row's
    response (brms's ``se``, as in a meta-analysis).

    With ``sigma=False`` (brms's default) the Gaussian likelihood's sd is ``s_i`` and the
    model has no ``sigma``; with ``sigma=True`` it is ``sqrt(sigma² + s_i²)``, ``sigma``
    estimated (the residual variation beyond the known one).
    """

    values: Expr
    sigma: bool = False

    def __str__(self) -> str:
        return f"se({self.values}, sigma = TRUE)" if self.sigma else f"se({self.values})"


@dataclass(frozen=True)
class WeightsTerm:
    """``weights(w)``: each row's log-likelihood is multiplied by ``w_i >= 0`` (brms's
    ``weights``: a row of weight 2 counts as two copies of it)."""

    values: Expr

    def __str__(self) -> str:
        return f"weights({self.values})"


@dataclass(frozen=True)
class CensTerm:
    """``cens(c)`` or ``cens(c, y2)``: which rows' responses are censored, and how (brms's ``cens``).

    ``values`` gives per row ``"none"``, ``"left"`` (the value is at most y), ``"right"`` (above
    y) or ``"interval"`` (between y and ``y2``), or brms's codes 0, -1, 1, 2, or a logical (True:
    right-censored); ``y2`` is the upper end of the interval-censored rows (None without).
    """

    values: Expr
    y2: Expr | None = None

    def __str__(self) -> str:
        return f"cens({self.values}, {self.y2})" if self.y2 is not None else f"cens({self.values})"


@dataclass(frozen=True)
class TruncTerm:
    """``trunc(lb = a, ub = b)``: the response is only observed within ``[lb, ub]`` (brms's
    ``trunc``); each bound a number or a column expression, None when that side is open."""

    lb: Expr | None = None
    ub: Expr | None = None

    def __str__(self) -> str:
        bounds = [f"{name} = {value}" for name, value in (("lb", self.lb), ("ub", self.ub)) if value is not None]
        return f"trunc({', '.join(bounds)})"


@dataclass(frozen=True)
class Smooth:
    """A smooth term of the population part: ``s(x)``, ``s(x, k = 8, bs = "cr", by = f)`` or the
    tensor product ``t2(x, z)`` (mgcv's and brms's syntax).

    ``variables`` are the columns smoothed over (one for ``s``, two or more for ``t2``), ``k``
    the basis dimension (None for mgcv's default: 10 for ``s``, 5 per margin for ``t2``),
    ``bs`` the basis (``"tp"`` thin plate regression spline, ``"cr"`` cubic regression
    spline; None for the default, ``"tp"`` for ``s`` and ``"cr"`` for ``t2``'s margins), ``by``
    a factor column with one smooth per level ("" for none). The basis itself is built by
    :mod:`multilevel.design.smooths`.
    """

    func: str
    variables: tuple[str, ...]
    k: int | None = None
    bs: str | None = None
    by: str = ""

    @property
    def label(self) -> str:
        """brms's name of the term without its ``by`` level: ``sx`` for ``s(x)``, ``t2xz`` for ``t2(x, z)``."""
        return self.func + "".join(self.variables)

    def __str__(self) -> str:
        parts = list(self.variables)
        if self.k is not None:
            parts.append(f"k = {self.k}")
        if self.bs is not None:
            parts.append(f'bs = "{self.bs}"')
        if self.by:
            parts.append(f"by = {self.by}")
        return f"{self.func}({', '.join(parts)})"


@dataclass(frozen=True)
class FormulaSpec:
    """A parsed formula: what ``parse_formula`` returns and ``build_design`` consumes."""

    formula: str
    response: Expr
    fixed: Terms
    groups: tuple[GroupTerm, ...]
    trials: Expr | None = None
    offsets: tuple[Expr, ...] = ()
    dpars: tuple[DparFormula, ...] = ()
    se: SeTerm | None = None
    weights: WeightsTerm | None = None
    cens: CensTerm | None = None
    trunc: TruncTerm | None = None

    def group_terms(self) -> tuple[tuple[tuple[str, GroupTerm], ...], ...]:
        """The model's group terms in the design's order, each as its parts ``(parameter,
        term)`` ("" for the mean): the response's terms, then each parameter's, those with
        the same ID on the same factor joined into the first one's place."""
        out: list[list[tuple[str, GroupTerm]]] = []
        place: dict[tuple[str, str], int] = {}
        for dpar, term in [("", t) for t in self.groups] + [(d.name, t) for d in self.dpars for t in d.groups]:
            key = (term.group_name, term.id)
            if term.id and key in place:
                out[place[key]].append((dpar, term))
                continue
            if term.id:
                place[key] = len(out)
            out.append([(dpar, term)])
        return tuple(tuple(parts) for parts in out)

    @property
    def formulas(self) -> tuple[str, ...]:
        """The formula of the response, then those of the predicted parameters."""
        return (self.formula, *(d.formula for d in self.dpars))

    def __str__(self) -> str:
        return "; ".join(self.formulas)

    @property
    def is_cbind(self) -> bool:
        return isinstance(self.response, Call) and self.response.func == "cbind"

    @property
    def has_trials(self) -> bool:
        """Whether the response is binomial: ``cbind(s, f)`` or ``s | trials(n)``."""
        return self.is_cbind or self.trials is not None

    @property
    def successes(self) -> Expr:
        """The response counted: ``s`` of ``cbind(s, f)``, else the response itself."""
        return self.response.args[0] if self.is_cbind else self.response

    @property
    def trials_expr(self) -> Expr | None:
        """The number of trials: ``n`` of ``trials(n)``; ``s + f`` of ``cbind(s, f)``,
        written ``n`` when ``f`` is ``n - s`` (so new data need not hold ``s``)."""
        if not self.is_cbind:
            return self.trials
        s, f = self.response.args
        if isinstance(f, BinOp) and f.op == "-" and f.right == s:
            return f.left
        return BinOp("+", s, f)

    def variables(self, response: bool = True) -> tuple[str, ...]:
        """Every data column the formula reads, in order of first use.

        With ``response=False``, only the columns of the right-hand side (the
        predictors, grouping factors and offsets), not those of the trials, standard
        errors, weights, censoring or truncation bounds. The upper ends ``y2`` of
        ``cens(c, y2)`` are not among them either (:meth:`bound_variables`): brms leaves
        them missing in the rows that are not interval-censored.
        """
        seen: dict[str, None] = {}

        def visit(node: Any) -> None:
            if isinstance(node, Var):
                seen.setdefault(node.name, None)
            elif isinstance(node, Smooth):
                for name in node.variables + ((node.by,) if node.by else ()):
                    seen.setdefault(name, None)
            elif isinstance(node, (tuple, list)):
                for item in node:
                    visit(item)
            elif hasattr(node, "__dataclass_fields__"):
                for f in fields(node):
                    visit(getattr(node, f.name))

        if response:
            visit(self.response)
            visit(self.trials)
            visit(self.se)
            visit(self.weights)
            visit(None if self.cens is None else self.cens.values)
            visit(self.trunc)
        visit(self.fixed)
        visit(self.groups)
        visit(self.offsets)
        visit(self.dpars)
        return tuple(seen)

    def trials_variables(self) -> tuple[str, ...]:
        """The columns the number of trials is computed from (empty without trials)."""
        expr = self.trials_expr
        if expr is None:
            return ()
        return FormulaSpec("", expr, Terms(False, ()), ()).variables()

    def se_variables(self) -> tuple[str, ...]:
        """The columns the standard errors of ``se()`` are computed from (empty without)."""
        if self.se is None:
            return ()
        return FormulaSpec("", self.se.values, Terms(False, ()), ()).variables()


    def bound_variables(self, which: str) -> tuple[str, ...]:
        """The columns of the censoring's ``y2`` (``which="y2"``) or of the truncation bounds
        (``"trunc"``); empty without them."""
        node = self.trunc if which == "trunc" else None if self.cens is None else self.cens.y2
        return () if node is None else FormulaSpec("", node, Terms(False, ()), ()).variables()


_NODE_TYPES = {cls.__name__: cls for cls in (Var, Num, Str, Not, Call, BinOp, Neg, Kwarg, Terms, GroupTerm, DparFormula,
                                                 SeTerm, WeightsTerm, CensTerm, TruncTerm, FormulaSpec, Smooth)}


def spec_to_dict(node: Any) -> Any:
    """Serialise a spec (or any node of it) to JSON-compatible data."""
    if isinstance(node, tuple):
        return [spec_to_dict(item) for item in node]
    if type(node).__name__ in _NODE_TYPES:
        out = {"node": type(node).__name__}
        out.update({f.name: spec_to_dict(getattr(node, f.name)) for f in fields(node)})
        return out
    return node


def spec_from_dict(data: Any) -> Any:
    """Inverse of :func:`spec_to_dict`."""
    if isinstance(data, list):
        return tuple(spec_from_dict(item) for item in data)
    if isinstance(data, dict):
        cls = _NODE_TYPES[data["node"]]
        return cls(**{k: spec_from_dict(v) for k, v in data.items() if k != "node"})
    return data
