"""Parse lme4/brms formula strings into a frozen :class:`FormulaSpec`.

Nothing in a formula is evaluated as Python: the parser accepts column names,
numbers, the operators of formula algebra and the functions in ``FUNCTIONS``.

Formula algebra (R's precedence, loosest first)::

    a + b, a - b      sum and removal of terms; 0, 1, -1 set the intercept
    a * b, a / b      a + b + a:b;   a + a:b (nesting)
    a:b               interaction
    (a + b)^2         all interactions up to order 2
    (x | g), (x || g) group terms: correlated / independent effects of x by g
    (x |p| g)        an ID: terms with the same ID and factor, in any of a model's formulas, correlated
    offset(e)         a term added to the linear predictor with coefficient 1
    a %in% b          a:b, as R reads it in formulas
    .                 every column of the data not on the left of '~' (needs the data's columns)
    y ~ x | g         lme4's bar at the top level: the group term (x | g), no fixed effects but 1

Inside function arguments, ``I()`` and parentheses, R's comparisons ``> >= < <= == !=``,
``&``, ``|`` and ``!`` give logical values, and string literals compare with a factor's
labels (``(sex == "F")``); a comparison is a term in parentheses or ``I()``, and may be
the response (``Reaction > 250 ~ ...``). R's functions on columns are in ``rcalls.py``;
``pkg::f`` reads as ``f`` for a function formulas take.

Inside function arguments and ``I()``, ``+ - * / ^ **`` are arithmetic. A
binomial response is written ``cbind(successes, failures) ~ ...`` (lme4) or
``successes | trials(n) ~ ...`` (brms).

brms's addition terms follow the response and a bar, joined by ``+``::

    y | trials(n) ~ ...          binomial trials of each row
    y | se(s) ~ ...              a known standard error per row (se(s, sigma = TRUE): sigma too)
    y | weights(w) ~ ...         each row's log-likelihood times w
    y | se(s) + weights(w) ~ ... several at once, each at most once
    y | cens(c) ~ ...            censored rows: c is "left"/"right"/"interval"/"none" or -1/1/2/0
    y | cens(c, y2) ~ ...        interval censoring: the value lies in (y, y2]
    y | trunc(lb = 0, ub = 9) ~  a response observed only within [lb, ub] (numbers or columns)

Smooth terms ``s(x, k = 8, bs = "cr", by = f)`` and ``t2(x, z)`` are terms of their own in
the population part (:mod:`multilevel.formula.smoothcall`).

Their options are R's logical constants (``TRUE``, ``FALSE``, ``T``, ``F``).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from ..errors import FormulaError
from .addition import LOGICAL, AdditionSyntax
from .groupsyntax import GroupSyntax
from .rcalls import R_FUNCTIONS, unknown_function_message
from .rsyntax import COMPARISONS, RSyntax
from .signatures import BASIS_ARGUMENTS, COVARIANCE_FUNCTIONS, basis_arguments
from .smoothcall import SMOOTHS, parse_smooth
from .tokens import Token, tokenize
from .spec import (BinOp, Call, CensTerm, Expr, FormulaSpec, GroupTerm, Kwarg, Neg, Num, SeTerm, Smooth, Str,
                   Term, Terms, TruncTerm, Var, WeightsTerm)

#: The functions a formula may call, with their number of arguments.
FUNCTIONS = {
    "log": 1, "log1p": 1, "log2": 1, "log10": 1, "exp": 1, "sqrt": 1, "abs": 1,
    "scale": 1, "center": 1, "I": 1, "C": 1, "offset": 1, "cbind": 2, "trials": 1, "se": 1, "weights": 1,
    "poly": 3, "ns": 5, "bs": 6,   # the most arguments R's signature has (BASIS_ARGUMENTS)
    "cens": 2, "trunc": 2,
    "s": 1, "t2": 2,
}

#: Functions with a fixed place in a formula, and what that place is.
_PLACED = {
    "cbind": "cbind(successes, failures) is the whole response, as in cbind(s, n - s) ~ x",
    "trials": "trials(n) follows the response and a bar, as in s | trials(n) ~ x",
    "se": "se(s) follows the response and a bar, as in y | se(s) ~ x",
    "weights": "weights(w) follows the response and a bar, as in y | weights(w) ~ x",
    "cens": "cens(c) follows the response and a bar, as in y | cens(c) ~ x",
    "trunc": "trunc(lb = a, ub = b) follows the response and a bar, as in y | trunc(lb = 0) ~ x",
    "s": "s() is a term of its own in the population part, added with '+', as in y ~ s(x) + z",
    "t2": "t2() is a term of its own in the population part, added with '+', as in y ~ t2(x, z)",
    "offset": "offset() is a term of its own on the right of '~', added with '+', as in y ~ x + offset(log(t))",
}

@dataclass
class _Intercept:
    """Marker for a literal 0 or 1 in a sum of terms."""

    present: bool


@dataclass
class _Sum:
    """A parenthesised sum that sets the intercept, standing alone in a sum: R's ``y ~ (x - 1)``."""

    terms: list[Term]
    intercept: bool


@dataclass
class _Offset:
    """Marker for an ``offset(...)`` term in the top-level sum."""

    expr: Expr


class _Parser(AdditionSyntax, GroupSyntax, RSyntax):
    def __init__(self, formula: str, columns: tuple[str, ...] | None = None):
        self.formula = formula
        self.tokens = tokenize(formula)
        self.i = 0
        self.columns = columns
        self.left_names: tuple[str, ...] = ()  # the columns left of '~', which '.' leaves out
        self.set_intercept: bool | None = None  # what the last sum parsed set the intercept to, if anything

    # -- helpers --------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def error(self, message: str, token: Token | None = None) -> FormulaError:
        token = token or self.tok
        if token.kind == "bad":
            message = f"unexpected character {token.text!r}"
        return FormulaError(message, self.formula, token.pos)

    def accept(self, *ops: str) -> Token | None:
        if self.tok.kind == "op" and self.tok.text in ops:
            self.i += 1
            return self.tokens[self.i - 1]
        return None

    def expect(self, op: str, what: str) -> Token:
        token = self.accept(op)
        if token is None:
            found = repr(self.tok.text) if self.tok.kind != "end" else "the end of the formula"
            raise self.error(f"expected {what}, found {found}")
        return token

    # -- whole formula ---------------------------------------------------------
    def parse(self) -> FormulaSpec:
        if self.tok.kind == "end":
            raise self.error("the formula is empty; write it as 'response ~ predictors'")
        if self.tok.kind == "op" and self.tok.text == "~":
            raise self.error("the formula has no response before '~'")
        response, addition = self.response()
        used = [e for a in addition.values() for e in (*a.args, *a.options.values())
                if e is not None and not isinstance(e, bool)]
        extra = Terms(False, tuple((e,) for e in used))
        self.left_names = FormulaSpec("", response, extra, ()).variables()
        self.expect("~", "'~' between the response and the predictors")
        if self.tok.kind == "end":
            raise self.error("nothing after '~'; write '1' for an intercept-only model")
        offsets: list[Expr] = []
        if self._bar_ahead(depth=0):                     # lme4's y ~ x | g: the group term alone
            fixed, groups = Terms(True, ()), self.group_body(self.tok)
        else:
            fixed, groups = self.rhs(allow_groups=True, offsets=offsets)
        if self.tok.kind != "end":
            raise self.error(f"unexpected {self.tok.text!r}")
        trials = addition.get("trials")
        se = addition.get("se")
        weights = addition.get("weights")
        cens, trunc = addition.get("cens"), addition.get("trunc")
        return FormulaSpec(self.formula, response, fixed, tuple(groups), None if trials is None else trials.args[0],
                           tuple(offsets), se=None if se is None else SeTerm(se.args[0], se.options["sigma"]),
                           weights=None if weights is None else WeightsTerm(weights.args[0]),
                           cens=None if cens is None else CensTerm(cens.args[0], cens.options.get("y2")),
                           trunc=None if trunc is None else TruncTerm(trunc.options.get("lb"), trunc.options.get("ub")))

    def _call_ahead(self, func: str) -> bool:
        """Whether the current token is a call of ``func``."""
        return (self.tok.kind == "name" and self.tok.text == func
                and self.tokens[self.i + 1].kind == "op" and self.tokens[self.i + 1].text == "(")

    def rhs(self, allow_groups: bool, offsets: list[Expr] | None = None) -> tuple[Terms, list[GroupTerm]]:
        """A sum of terms with an implicit intercept, plus any group terms in it
        (and, at the top level, the arguments of ``offset()`` terms in ``offsets``)."""
        intercept, terms, groups = True, [], []
        explicit: bool | None = None
        sign = -1 if self.accept("-") is not None else +1
        while True:
            start = self.tok
            item = self.product(allow_groups, groups, offsets is not None)
            if isinstance(item, _Offset):
                if sign < 0:
                    raise self.error("an offset cannot be removed with '-'; drop the term instead", start)
                offsets.append(item.expr)
            elif isinstance(item, _Intercept):
                intercept = explicit = item.present if sign > 0 else not item.present
            elif isinstance(item, _Sum):
                intercept = explicit = item.intercept if sign > 0 else not item.intercept
                for term in item.terms:
                    terms = _merge(terms, [term]) if sign > 0 else [t for t in terms if set(t) != set(term)]
            elif item is not None:
                if any(len(term) > 1 and any(isinstance(f, Smooth) for f in term) for term in item):
                    raise self.error("a smooth term cannot be in an interaction; for a smooth per level of a "
                                     "factor f write s(x, by = f)", start)
                for term in item:
                    if term == ():
                        intercept = explicit = sign > 0
                    elif sign > 0:
                        terms = _merge(terms, [term])
                    else:
                        terms = [t for t in terms if set(t) != set(term)]
            elif sign < 0:
                raise self.error("a group term cannot be removed with '-'", start)
            if self.tok.kind == "op" and self.tok.text in COMPARISONS + ("&",):
                raise self.error(f"a comparison in a term goes in parentheses, as in ({self.factor_at(start)} "
                                 f"{self.tok.text} ...) or I(...): R reads y ~ a + x > 1 as (a + x) > 1")
            op = self.accept("+", "-")
            if op is None:
                break
            sign = +1 if op.text == "+" else -1
            if self.accept("-") is not None:  # as in R, "x + -1" is "x - 1"
                sign = -sign
        terms.sort(key=len)  # main effects first, then interactions, stable otherwise
        self.set_intercept = explicit
        return Terms(intercept, tuple(terms)), groups

    # -- formula algebra ---------------------------------------------------------
    def product(self, allow_groups: bool, groups: list[GroupTerm], allow_offset: bool = False):
        left = self.interaction(allow_groups, groups, allow_offset)
        while (op := self.accept("*", "/")) is not None:
            right = self.interaction(False, groups)
            if not isinstance(left, list) or not isinstance(right, list):
                raise self.error(f"'{op.text}' needs predictors on both sides", op)
            if op.text == "*":
                left = _merge(left, right, _cross(left, right))
            else:
                outer = tuple(dict.fromkeys(f for t in left for f in t))
                left = _merge(left, [_join(outer, t) for t in right])
        return left

    def interaction(self, allow_groups: bool, groups: list[GroupTerm], allow_offset: bool = False):
        left = self.power(allow_groups, groups, allow_offset)
        while (op := self.accept(":", "%in%")) is not None:    # R reads a %in% b as a:b
            right = self.power(False, groups)
            if not isinstance(left, list) or not isinstance(right, list):
                raise self.error(f"'{op.text}' needs predictors on both sides", op)
            left = _cross(left, right)
        return left

    def power(self, allow_groups: bool, groups: list[GroupTerm], allow_offset: bool = False):
        base = self.atom(allow_groups, groups, allow_offset)
        if (op := self.accept("^", "**")) is not None:
            if self.tok.kind != "number" or not self.tok.text.isdigit() or int(self.tok.text) < 1:
                raise self.error("'^' in a formula takes a positive whole number, as in (a + b)^2")
            degree = int(self.tok.text)
            self.i += 1
            if not isinstance(base, list):
                raise self.error("'^' needs predictors on its left", op)
            result: list[Term] = []
            for k in range(1, degree + 1):
                for combo in combinations(base, k):
                    term: Term = ()
                    for t in combo:
                        term = _join(term, t)
                    result = _merge(result, [term])
            return result
        return base

    def atom(self, allow_groups: bool, groups: list[GroupTerm], allow_offset: bool = False):
        tok = self.tok
        if allow_offset and self._call_ahead("offset"):
            self.i += 2
            offset = _Offset(self.call_rest(tok, placed=True).args[0])
            if self.tok.kind == "op" and self.tok.text not in ("+", "-", ")"):
                raise self.error(_PLACED["offset"])
            return offset
        if tok.kind == "number":
            self.i += 1
            if tok.text in ("0", "1"):
                return _Intercept(tok.text == "1")
            raise self.error(f"a number ({tok.text}) cannot be a term; wrap arithmetic in I(...)", tok)
        if tok.kind == "op" and tok.text == "(":
            if self._group_bar_ahead():
                if not allow_groups:
                    raise self.error("a group term (... | g) must stand on its own, added with '+'", tok)
                groups.extend(self.group_term())
                return None
            if self._logical_ahead():                    # (x > 250): a logical term, as R reads it
                self.i += 1
                value = self.expression()
                self.expect(")", "')'")
                return [(value,)]
            self.i += 1
            inner, inner_groups = self.rhs(allow_groups=allow_groups)  # lme4's ((1 | g) + (0 + x | g))
            groups.extend(inner_groups)
            set_intercept = self.set_intercept
            self.expect(")", "')'")
            alone = self.tok.kind == "end" or (self.tok.kind == "op" and self.tok.text in ("+", "-", ")"))
            if inner_groups and not alone:
                raise self.error("a group term (... | g) must stand on its own, added with '+'", tok)
            if set_intercept is not None and alone:          # R: y ~ (x - 1) has no intercept
                return _Sum(list(inner.terms), set_intercept)
            return list(inner.terms)
        if tok.kind == "name" and tok.text in SMOOTHS and self._call_ahead(tok.text):
            return [(parse_smooth(self),)]
        if tok.kind == "name" and tok.text in COVARIANCE_FUNCTIONS and self._call_ahead(tok.text):
            self.i += 1
            if self._group_bar_ahead():
                if not allow_groups:
                    raise self.error(f"a group term {tok.text}(... | g) must stand on its own, added with '+'", tok)
                groups.extend(self.structured_group_term(tok))
                return None
            self.i -= 1
        if tok.kind == "op" and tok.text == "!":
            return [(self.negation(),)]
        if tok.kind == "name" and tok.text == "." and not self._call_ahead("."):
            return self.dot(tok)
        if tok.kind == "name":
            return [(self.factor(),)]
        if tok.kind == "string":
            raise self.error(f"a string (\"{tok.text}\") is a value to compare a factor with, as in "
                             f"(sex == \"{tok.text}\"), not a term")
        if tok.kind == "end":
            raise self.error("the formula ends where a predictor was expected")
        raise self.error(f"expected a predictor, found {tok.text!r}")

    # -- factors and arithmetic ---------------------------------------------------
    def factor(self) -> Expr:
        """A single predictor: a column name or a function call (``pkg::f(x)`` reads as ``f(x)``)."""
        tok = self.tok
        self.i += 1
        if self.accept("::") is not None:
            tok = self.namespaced(tok)
        if self.accept("(") is None:
            return Var(tok.text)
        return self.call_rest(tok)

    def takes_function(self, name: str) -> bool:
        """Whether formulas take the function ``name`` (for ``pkg::name``)."""
        return name in FUNCTIONS or name in R_FUNCTIONS

    def call_rest(self, name: Token, placed: bool = False) -> Call:
        """The arguments and closing parenthesis of a call; ``placed`` when the caller
        has checked that a function of fixed place (``_PLACED``) stands where it may."""
        if name.text in R_FUNCTIONS:
            return self.r_call(name)
        if name.text not in FUNCTIONS:
            raise self.error(unknown_function_message(name.text, [*FUNCTIONS, *R_FUNCTIONS]), name)
        if name.text in _PLACED and not placed:
            raise self.error(_PLACED[name.text], name)
        if name.text in BASIS_ARGUMENTS:
            return self.basis_call(name)
        args = [self.expression()]
        while self.accept(",") is not None:
            args.append(self.expression())
        self.expect(")", f"')' to close {name.text}(")
        if len(args) != FUNCTIONS[name.text]:
            raise self.error(f"{name.text}() takes {FUNCTIONS[name.text]} argument(s), got {len(args)}", name)
        if name.text == "C" and not isinstance(args[0], Var):
            raise self.error("C() takes a column name", name)
        return Call(name.text, tuple(args))

    def basis_call(self, name: Token) -> Call:
        """The arguments of ``poly``, ``ns`` or ``bs`` after the '(': the variable, then R's
        further arguments by position or ``name = value`` (a number, ``TRUE``/``FALSE``,
        ``c(...)``), checked against R's signature (:mod:`multilevel.formula.signatures`)."""
        args: list[Expr] = [self.arith()]
        while self.accept(",") is not None:
            start = self.tok
            ahead = self.tokens[self.i + 1]
            if start.kind == "name" and ahead.kind == "op" and ahead.text == "=":
                self.i += 2
                args.append(Kwarg(start.text, self.argument_value()))
            else:
                value = self.argument_value()
                if isinstance(value, bool):
                    raise self.error(f"give {name.text}()'s logical options by name, as in raw = TRUE", start)
                args.append(value)
        self.expect(")", f"')' to close {name.text}(")
        call = Call(name.text, tuple(args))
        try:
            basis_arguments(call)
        except ValueError as exc:
            raise self.error(str(exc), name) from None
        return call

    def argument_value(self) -> Expr | bool:
        """A constant argument: R's logical constants, ``c(...)`` of numbers, or arithmetic."""
        tok = self.tok
        if tok.kind == "name" and tok.text in LOGICAL:
            self.i += 1
            return LOGICAL[tok.text]
        if self._call_ahead("c"):
            self.i += 2
            values = [self.arith()]
            while self.accept(",") is not None:
                values.append(self.arith())
            self.expect(")", "')' to close c(")
            return Call("c", tuple(values))
        return self.arith()

    def arith(self) -> Expr:
        left = self.arith_term()
        while (op := self.accept("+", "-")) is not None:
            left = BinOp(op.text, left, self.arith_term())
        return left

    def arith_term(self) -> Expr:
        left = self.arith_unary()
        while (op := self.accept("*", "/")) is not None:
            left = BinOp(op.text, left, self.arith_unary())
        return left

    def arith_unary(self) -> Expr:
        if self.accept("-") is not None:
            return Neg(self.arith_unary())
        base = self.arith_atom()
        if self.accept("^", "**") is not None:
            return BinOp("^", base, self.arith_unary())
        return base

    def arith_atom(self) -> Expr:
        tok = self.tok
        if tok.kind == "number":
            self.i += 1
            return Num(float(tok.text))
        if tok.kind == "name":
            return self.factor()
        if tok.kind == "string":
            self.i += 1
            return Str(tok.text)
        if self.accept("(") is not None:
            inner = self.expression()
            self.expect(")", "')'")
            return inner
        found = repr(tok.text) if tok.kind != "end" else "the end of the formula"
        raise self.error(f"expected a value, found {found}")


def _join(a: Term, b: Term) -> Term:
    return tuple(dict.fromkeys(a + b))


def _cross(left: list[Term], right: list[Term]) -> list[Term]:
    return _merge([], [_join(a, b) for a in left for b in right])


def _merge(*lists: list[Term]) -> list[Term]:
    """The terms of all lists in order, each once: ``a:b`` and ``b:a`` are one term."""
    out: dict[frozenset, Term] = {}
    for terms in lists:
        for term in terms:
            out.setdefault(frozenset(term), term)
    return list(out.values())


def parse_formula(formula: str, columns: tuple[str, ...] | None = None) -> FormulaSpec:
    """Parse a formula such as ``"log(dnow) ~ diam*trt + (1 + diam || tree)"``.

    ``columns``, the data's column names, give R's ``.`` its meaning (every column not
    left of '~'); a formula with ``.`` needs them.

    Raises
    ------
    FormulaError
        With the formula and a caret under the position at fault.
    """
    if not isinstance(formula, str):
        raise FormulaError(f"the formula must be a string, got {type(formula).__name__}")
    return _Parser(formula, None if columns is None else tuple(str(c) for c in columns)).parse()
