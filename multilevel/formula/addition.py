"""The response side of a formula: the response and brms's addition terms after its bar.

:class:`AdditionSyntax` is a mixin of the formula parser (``parser._Parser``, whose token
cursor, ``error``, ``expression`` and ``call_rest`` it uses)::

    y | trials(n) ~ ...          binomial trials of each row
    y | se(s) ~ ...              a known standard error per row (se(s, sigma = TRUE): sigma too)
    y | weights(w) ~ ...         each row's log-likelihood times w
    y | cens(c[, y2]) ~ ...      censored rows (interval censoring in (y, y2])
    y | trunc(lb = 0, ub = 9) ~  a response observed only within [lb, ub]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .spec import Expr

#: The addition terms that may follow the response and a bar, with their options (R's names)
#: in the order R matches them by position after the first argument.
ADDITION_TERMS = {"trials": (), "se": ("sigma",), "weights": (), "cens": (), "trunc": ()}
#: The addition terms whose further arguments are expressions (columns or numbers), by name
#: in the order R matches them by position.
BOUND_TERMS = {"cens": ("y2",), "trunc": ("lb", "ub")}
#: R's logical constants, as options of addition terms take them.
LOGICAL = {"TRUE": True, "T": True, "FALSE": False, "F": False}


@dataclass
class Addition:
    """An addition term of the response as parsed: its argument and options."""

    args: tuple[Expr, ...]
    options: dict[str, bool | Expr]


class AdditionSyntax:
    """The parser's methods for the left of '~'."""

    tokens: list[Any]
    i: int

    def response(self) -> tuple[Expr, dict[str, "Addition"]]:
        """The left of '~': an expression or ``cbind(s, f)``, then, after a bar, its addition
        terms joined by '+' (``s | trials(n)``, ``y | se(s) + weights(w)``), by name."""
        is_cbind = self._call_ahead("cbind")
        if is_cbind:
            name = self.tok
            self.i += 1
            self.expect("(", "'('")
            response = self.call_rest(name, placed=True)
        else:
            response = self.expression(allow_or=False)
        bar = self.accept("|", "||")
        if bar is None:
            return response, {}
        if bar.text == "||":
            raise self.error("the response takes its addition terms after a single bar, as in y | se(s) ~ x", bar)
        addition: dict[str, Addition] = {}
        while True:
            start = self.tok
            if not any(self._call_ahead(name) for name in ADDITION_TERMS):
                raise self.error("after the response, '|' takes addition terms joined by '+': trials(n) (binomial "
                                 "trials), se(s) (known standard errors), weights(w) (row weights), cens(c) "
                                 "(censoring), trunc(lb, ub) (truncation), as in y | se(s) + weights(w) ~ x")
            if start.text in addition:
                raise self.error(f"{start.text}() is given twice; give each addition term once", start)
            if start.text == "trials" and is_cbind:
                raise self.error("cbind(successes, failures) already gives the trials; "
                                 "write either cbind(s, f) ~ ... or s | trials(n) ~ ...", bar)
            addition[start.text] = self.bound_term() if start.text in BOUND_TERMS else self.addition_term()
            if self.accept("+") is None:
                return response, addition

    def addition_term(self) -> "Addition":
        """One addition term at the current token: ``name(expr[, option = TRUE ...])``, its
        options given by name or, as in R, by position after the first argument."""
        name = self.tok
        self.i += 2
        args = [self.expression()]
        options = dict.fromkeys(ADDITION_TERMS[name.text], False)
        position = 0
        while self.accept(",") is not None:
            start = self.tok
            named = start.kind == "name" and self.tokens[self.i + 1].kind == "op" \
                and self.tokens[self.i + 1].text == "="
            if named:
                if start.text not in options:
                    takes = (f"its options are {', '.join(options)}" if options
                             else "it takes one argument")
                    raise self.error(f"{name.text}() has no option {start.text!r}; {takes}", start)
                key = start.text
                self.i += 2
            elif position < len(options):
                key = list(options)[position]
                position += 1
            else:
                raise self.error(f"{name.text}() takes {1 + len(options)} argument(s) at most", start)
            value = self.tok
            if value.kind != "name" or value.text not in LOGICAL:
                raise self.error(f"{name.text}(..., {key} = ) takes TRUE or FALSE")
            self.i += 1
            options[key] = LOGICAL[value.text]
        self.expect(")", f"')' to close {name.text}(")
        return Addition(tuple(args), options)

    def bound_term(self) -> "Addition":
        """``cens(c[, y2])`` or ``trunc([lb = ]a[, ub = b])`` at the current token: its further
        arguments are expressions, given by name or by position; ``options`` maps each
        given one's name to it (``cens``'s first argument, the codes, is ``args[0]``)."""
        name = self.tok
        self.i += 2
        names = BOUND_TERMS[name.text]
        args, options = [], {}
        first = True
        while True:
            start = self.tok
            named = start.kind == "name" and self.tokens[self.i + 1].kind == "op" \
                and self.tokens[self.i + 1].text == "="
            if named:
                if start.text not in names:
                    raise self.error(f"{name.text}() has no argument {start.text!r}; its arguments are "
                                     f"{', '.join(('c',) * (name.text == 'cens') + names)}", start)
                if start.text in options:
                    raise self.error(f"{name.text}(): {start.text} is given twice", start)
                key = start.text
                self.i += 2
            elif name.text == "cens" and first:
                key = None
            else:
                free = [n for n in names if n not in options]
                if not free:
                    raise self.error(f"{name.text}() takes {len(names) + (name.text == 'cens')} argument(s) at most",
                                     start)
                key = free[0]
            value = self.arith()
            if key is None:
                args.append(value)
            else:
                options[key] = value
            first = False
            if self.accept(",") is None:
                break
        self.expect(")", f"')' to close {name.text}(")
        if name.text == "cens" and not args:
            raise self.error("cens() takes the censoring column first, as in cens(c) or cens(c, y2)", name)
        if name.text == "trunc" and not options:
            raise self.error("trunc() takes a lower bound, an upper bound or both, as in trunc(lb = 0, ub = 100)",
                             name)
        return Addition(tuple(args), options)
