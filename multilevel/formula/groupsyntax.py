"""Group terms of a formula: ``(x | g)``, ``(x || g)``, brms's ``(x |p| g)`` and ``gr(g, cor = )``,
lme4's ``diag()``, ``us()`` and ``cs()`` around a bar, and the top-level bar ``y ~ x | g``.

:class:`GroupSyntax` is a mixin of the formula parser (``parser._Parser``, whose token
cursor, ``error``, ``rhs`` and ``product`` it uses).
"""

from __future__ import annotations

from typing import Any

from .addition import LOGICAL
from .signatures import COVARIANCE_FUNCTIONS
from .spec import Call, GroupTerm, Smooth, Term, Var
from .tokens import Token

#: Functions a grouping factor may be written with: ``(1 | factor(g))`` groups by ``g``.
_GROUP_CALLS = ("C", "factor", "as.factor")


class GroupSyntax:
    """The parser's methods for group terms."""

    tokens: list[Any]
    i: int

    def _group_bar_ahead(self) -> bool:
        """Whether the parenthesis at the current token contains a top-level '|'."""
        return self._bar_ahead(depth=1)

    def _bar_ahead(self, depth: int, ops: tuple[str, ...] = ("|", "||")) -> bool:
        """Whether one of ``ops`` follows at ``depth`` parentheses from the current token
        (1: inside the parenthesis here, 0: in the rest of the formula) before that level closes."""
        level = 0
        for tok in self.tokens[self.i:]:
            if tok.kind != "op":
                continue
            if tok.text == "(":
                level += 1
            elif tok.text == ")":
                level -= 1
                if level < depth:
                    return False
            elif tok.text in ops and level == depth:
                return True
        return False

    def structured_group_term(self, func: Token) -> list[GroupTerm]:
        """lme4's ``diag(x | g)`` (``x || g``), ``us(x | g)`` (``x | g``) and ``cs(x | g)``
        (compound symmetry), the current token the parenthesis after the function."""
        bar = next(t for t in self.tokens[self.i:] if t.kind == "op" and t.text in ("|", "||"))
        terms = self.group_term()
        if func.text != "diag" and bar.text == "||":
            raise self.error(f"{func.text}() takes a single bar: {func.text}(x | g) "
                             f"({COVARIANCE_FUNCTIONS[func.text]})", bar)
        if func.text == "diag":
            return [GroupTerm(t.effects, t.group, False, t.id) for t in terms]
        if func.text == "cs" and any(t.id for t in terms):
            raise self.error("cs() cannot take an ID (|p|): a compound-symmetric term stands alone", func)
        return [GroupTerm(t.effects, t.group, True, t.id, "cs" if func.text == "cs" else "") for t in terms]

    def grouping_call(self) -> tuple[list[Term], bool]:
        """brms's ``gr(g)`` / ``gr(g, cor = FALSE)`` as the grouping factor: the factor's
        terms and whether the effects are correlated."""
        self.i += 2
        group_start = self.tok
        group_terms = self.product(False, [])
        correlated = True
        while self.accept(",") is not None:
            option = self.tok
            ahead = self.tokens[self.i + 1]
            if option.kind != "name" or ahead.kind != "op" or ahead.text != "=":
                raise self.error("gr() takes its options by name, as in gr(g, cor = FALSE)", option)
            if option.text != "cor":
                raise self.error(f"gr(..., {option.text} = ) is not supported; gr() takes cor = TRUE or FALSE "
                                 "(write by-group or structured covariances as separate terms)", option)
            self.i += 2
            value = self.tok
            if value.kind != "name" or value.text not in LOGICAL:
                raise self.error("gr(..., cor = ) takes TRUE or FALSE", value)
            self.i += 1
            correlated = LOGICAL[value.text]
        self.expect(")", "')' to close gr(")
        if not isinstance(group_terms, list) or any(t == () for t in group_terms):
            raise self.error("the grouping factor of gr() must be a column, a:b or a/b", group_start)
        return group_terms, correlated

    def group_term(self) -> list[GroupTerm]:
        open_tok = self.expect("(", "'('")
        terms = self.group_body(open_tok)
        self.expect(")", "')' to close the group term")
        return terms

    def group_body(self, open_tok: Token) -> list[GroupTerm]:
        """``effects | group`` (or ``||``, or brms's ``|id|``): a group term without its parentheses."""
        effects_start = self.tok
        effects, _ = self.rhs(allow_groups=False)  # a group term cannot hold another
        if any(isinstance(f, Smooth) for t in effects.terms for f in t):
            raise self.error("a smooth belongs to the population part, not to a group term", effects_start)
        bar = self.accept("|", "||")
        if bar is None:
            raise self.error("expected '|' or '||' in the group term")
        term_id = ""
        ahead = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
        if bar.text == "|" and self.tok.kind == "name" and ahead is not None and ahead.kind == "op" \
                and ahead.text == "|":                   # brms's ID: (1 |p| g), correlated across formulas
            term_id = self.tok.text
            self.i += 2
        if not effects.intercept and not effects.terms:
            raise self.error("the group term has no effects before the bar", open_tok)
        if self.tok.kind == "end" or (self.tok.kind == "op" and self.tok.text == ")"):
            raise self.error("expected a grouping factor after the bar")
        group_start = self.tok
        correlated = bar.text == "|"
        if self._call_ahead("gr"):
            if bar.text == "||" or term_id:
                raise self.error("gr() takes the term's correlation as gr(g, cor = FALSE), after a single bar",
                                 group_start)
            group_terms, correlated = self.grouping_call()
        else:
            group_terms = self.product(False, [])
        if not isinstance(group_terms, list) or any(t == () for t in group_terms):
            raise self.error("the grouping factor must be a column, a:b or a/b", group_start)
        for term in group_terms:
            for factor in term:
                if not isinstance(factor, Var) and not (isinstance(factor, Call) and factor.func in _GROUP_CALLS
                                                        and isinstance(factor.args[0], Var)):
                    raise self.error(f"cannot group by {factor}: name a column", group_start)
        return [GroupTerm(effects, term, correlated, term_id) for term in group_terms]
