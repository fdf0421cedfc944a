"""The tokens of a formula string: numbers, names (bare or back-quoted), strings and operators."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PATTERN = re.compile(
    r"\s*(?:(?P<number>\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_.][A-Za-z0-9_.]*)"
    r"|`(?P<quoted>[^`]+)`"
    r"|(?P<string>\"[^\"]*\"|'[^']*')"
    r"|(?P<op>\|\||\*\*|::|%in%|>=|<=|==|!=|[~+\-*/:^|(),=<>&!]))"
)


@dataclass(frozen=True)
class Token:
    kind: str  # "number", "name", "op", "end", or "bad" for a character no token starts with
    text: str
    pos: int


def tokenize(formula: str) -> list[Token]:
    """The tokens of ``formula``, closed by an "end" token.

    An unreadable character closes the list as a "bad" token instead, so that the
    parser reports the first error in reading order: in ``y ~ f('a')`` the unknown
    function ``f``, not the quote.
    """
    tokens, pos = [], 0
    while pos < len(formula):
        if formula[pos:].strip() == "":
            break
        match = _PATTERN.match(formula, pos)
        if match is None:
            bad = pos + len(formula[pos:]) - len(formula[pos:].lstrip())
            tokens.append(Token("bad", formula[bad], bad))
            return tokens
        kind = match.lastgroup
        start = match.start(kind)
        text = match.group(kind)
        if kind == "string":
            text = text[1:-1]
        tokens.append(Token("name" if kind == "quoted" else kind, text, start))
        pos = match.end()
    tokens.append(Token("end", "", len(formula)))
    return tokens
