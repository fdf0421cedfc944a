"""The parts of R's language below formula algebra that a formula parser adds to its own.

:class:`RSyntax` is a mixin of the formula parser (``parser._Parser``, whose token
helpers ``tok``, ``accept``, ``error``, ``arith`` and ``_bar_ahead`` it uses): R's
expression grammar of comparisons and logical operators, R's ``.``, ``pkg::f`` and the
calls of R's functions with their named arguments (``rcalls.R_FUNCTIONS``).

R's precedence, loosest first: ``|``, ``&``, ``!``, comparisons, then arithmetic; a
comparison does not chain (``a < b < c`` is an error, as it is a mistake in R).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .rcalls import R_FUNCTIONS, arity_problem, namespace_problem
from .spec import BinOp, Call, Expr, Not, Term, Var

#: R's comparison operators, which give logical values.
COMPARISONS = (">", ">=", "<", "<=", "==", "!=")


class RSyntax:
    """R's expressions, ``.``, ``pkg::f`` and R's function calls, for the formula parser."""

    def _logical_ahead(self) -> bool:
        """Whether the parenthesis at the current token holds a comparison or ``&``, ``!``."""
        return self._bar_ahead(depth=1, ops=COMPARISONS + ("&", "!"))

    def dot(self, tok: Any) -> list[Term]:
        """R's ``.``: a term for each column of the data not left of '~', in the data's order."""
        self.i += 1
        if self.columns is None:
            raise self.error("'.' stands for the data's other columns, so it needs the data: give the formula "
                             "with data (ml.fit and ml.build_model do)", tok)
        return [(Var(c),) for c in self.columns if c not in self.left_names]

    def factor_at(self, start: Any) -> str:
        """The text of the formula from ``start`` to the current token, for messages."""
        return self.formula[start.pos:self.tok.pos].strip()

    def namespaced(self, package: Any) -> Any:
        """The function token after ``package::``, as if written without the package."""
        name = self.tok
        if name.kind != "name" or self.tokens[self.i + 1].text != "(":
            raise self.error(f"expected a function call after {package.text}::, as in stats::poly(x, 2)")
        problem = namespace_problem(package.text, name.text, self.takes_function(name.text))
        if problem is not None:
            raise self.error(problem, package)
        self.i += 1
        return replace(package, text=name.text)

    def r_call(self, name: Any) -> Call:
        """The arguments of a call of one of R's functions (``R_FUNCTIONS``): by position, or
        after the first by R's names (``log(x, base = 2)``), stored in R's order."""
        options = R_FUNCTIONS[name.text].options
        args: list[Expr] = [self.expression()]
        named: dict[str, Expr] = {}
        while self.accept(",") is not None:
            start = self.tok
            if start.kind == "name" and self.tokens[self.i + 1].text == "=" and self.tokens[self.i + 1].kind == "op":
                if start.text not in options or start.text in named:
                    takes = f"its options are {', '.join(options)}" if options else "it takes no named options"
                    raise self.error(f"{name.text}() has no option {start.text!r} here; {takes}", start)
                self.i += 2
                named[start.text] = self.expression()
            else:
                if named:
                    raise self.error("give positional arguments before named ones", start)
                args.append(self.expression())
        self.expect(")", f"')' to close {name.text}(")
        for key in options[len(args) - 1:]:
            if key in named:
                args.append(named.pop(key))
        if named:
            raise self.error(f"{name.text}(): {', '.join(named)} given twice", name)
        problem = arity_problem(name.text, len(args))
        if problem is not None:
            raise self.error(problem, name)
        return Call(name.text, tuple(args))

    def expression(self, allow_or: bool = True) -> Expr:
        """R's expression grammar below the formula operators: ``|`` (when ``allow_or``: not
        in a response, whose bar starts its addition terms), ``&``, ``!``, comparisons, arithmetic."""
        left = self.conjunction()
        while allow_or and (op := self.accept("|")) is not None:
            left = BinOp(op.text, left, self.conjunction())
        return left

    def conjunction(self) -> Expr:
        left = self.negation()
        while (op := self.accept("&")) is not None:
            left = BinOp(op.text, left, self.negation())
        return left

    def negation(self) -> Expr:
        if self.accept("!") is not None:
            return Not(self.negation())
        left = self.arith()
        if (op := self.accept(*COMPARISONS)) is not None:
            left = BinOp(op.text, left, self.arith())
            if self.tok.kind == "op" and self.tok.text in COMPARISONS:
                raise self.error("comparisons do not chain in R: write (a < b) & (b < c)")
        return left
