"""Parse the smooth terms ``s(...)`` and ``t2(...)`` of a formula's population part.

mgcv's and brms's syntax, without evaluating code::

    s(x)                      thin plate regression spline, k = 10
    s(x, k = 8)               basis dimension 8
    s(x, bs = "cr")           cubic regression spline ("tp" is the default)
    s(x, by = f)              one smooth per level of the factor f, each with its own sd
    t2(x, z)                  tensor product smooth (mgcv's t2: one sd per penalty)
    t2(x, z, k = 6)           6 basis functions per margin

The variables come first, by position; the options by name (``k``, ``bs``, ``by``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .spec import Smooth

if TYPE_CHECKING:
    from .parser import _Parser

#: The smooth constructors and the number of variables each takes (at least, at most).
SMOOTHS = {"s": (1, 1), "t2": (2, 2)}
#: The bases a smooth may name.
BASES = ("tp", "cr")


def parse_smooth(parser: "_Parser") -> Smooth:
    """The smooth call at the parser's current token (a name in :data:`SMOOTHS` and '(')."""
    name = parser.tok
    parser.i += 2
    variables: list[str] = []
    options: dict[str, object] = {}
    while True:
        start = parser.tok
        ahead = parser.tokens[parser.i + 1]
        if start.kind == "name" and ahead.kind == "op" and ahead.text == "=":
            parser.i += 2
            if start.text in options:
                raise parser.error(f"{name.text}() is given {start.text} twice", start)
            options[start.text] = _option(parser, name.text, start.text)
        elif start.kind == "name" and not options:
            if parser.tokens[parser.i + 1].kind == "op" and parser.tokens[parser.i + 1].text == "(":
                raise parser.error(f"{name.text}() smooths columns: name a column, and transform it in the "
                                   "data first", start)
            variables.append(start.text)
            parser.i += 1
        else:
            raise parser.error(f"{name.text}() takes column names, then the options k, bs and by by name, "
                               f'as in {name.text}(x, k = 8, bs = "cr")', start)
        if parser.accept(",") is None:
            break
    parser.expect(")", f"')' to close {name.text}(")
    low, high = SMOOTHS[name.text]
    if not low <= len(variables) <= high:
        count = f"{low}" if low == high else f"{low} to {high}"
        raise parser.error(f"{name.text}() smooths {count} column(s), got {len(variables)}", name)
    if len(set(variables)) < len(variables):
        raise parser.error(f"{name.text}() names a column twice", name)
    k = options.get("k")
    minimum = 3
    if k is not None and k < minimum:
        raise parser.error(f"{name.text}(..., k = {k}): the basis needs k >= {minimum}", name)
    return Smooth(name.text, tuple(variables), k, options.get("bs"), options.get("by", ""))


def _option(parser: "_Parser", func: str, key: str) -> object:
    tok = parser.tok
    if key == "k":
        if tok.kind != "number" or not tok.text.isdigit():
            raise parser.error(f"{func}(..., k = ) takes a whole number, as in k = 8", tok)
        parser.i += 1
        return int(tok.text)
    if key == "bs":
        text = tok.text.strip("\"'") if tok.kind in ("string", "name") else None
        if text not in BASES:
            raise parser.error(f"{func}(..., bs = ) takes one of {', '.join(repr(b) for b in BASES)}", tok)
        parser.i += 1
        return text
    if key == "by":
        if tok.kind != "name":
            raise parser.error(f"{func}(..., by = ) takes a factor column, as in by = group", tok)
        parser.i += 1
        return tok.text
    raise parser.error(f"{func}() has no option {key!r}; its options are k, bs and by", tok)
