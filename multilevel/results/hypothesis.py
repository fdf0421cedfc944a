r"""brms's ``hypothesis()``: posterior tests of expressions of the parameters.

A hypothesis is one comparison of two expressions of parameters, ``left > right``,
``left < right`` or ``left = right``; as brms does, everything is moved to the left,
so each draw gives one value :math:`d^{(s)} = \mathrm{left}^{(s)} - \mathrm{right}^{(s)}`
and the hypothesis reads :math:`d > 0`, :math:`d < 0` or :math:`d = 0`.

The expression language is small and parsed here (never by Python's ``eval``):

* parameter names as the library writes them (``Intercept``, ``x``, ``diam:trt``,
  ``cheese[B]``, ``sigma``, ``sigma_x``, ``sd(Intercept|g)``, ``cor(Intercept,x|g)``,
  and one level of a group effect as in the summary, ``Intercept|g[level]``). Names
  hold characters that are operators elsewhere (``[]()|:,``), so they are matched
  against the fit's own names, the longest first; a name can also be written in
  backquotes, ```name```;
* numbers (``2``, ``0.5``, ``1e-3``);
* ``+ - * /``, ``^`` (also ``**``) for powers, parentheses, and the functions
  ``exp``, ``log``, ``sqrt`` and ``abs``;
* exactly one comparison, ``<``, ``>`` or ``=`` (also ``==``).

Precedence is R's: ``^`` binds tightest and to the right (``-x^2`` is ``-(x^2)``,
``2^-1`` is 0.5), then unary minus, then ``* /``, then ``+ -``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Callable, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import DataError
from .posterior import stack_draws
from .summary import check_prob

#: The comparisons of a hypothesis, as written, and what each means.
COMPARISONS = {">": ">", "<": "<", "=": "=", "==": "="}
#: Comparisons that are refused, with what to write instead.
REFUSED = {">=": "write '>' (for continuous draws P(d >= 0) = P(d > 0))",
           "<=": "write '<' (for continuous draws P(d <= 0) = P(d < 0))",
           "!=": "write '=' (the test of equality reports the two-sided interval)"}
#: The functions an expression may call.
FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt,
                                                            "abs": np.abs}

_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_FUNCTION = re.compile(r"(%s)\s*(?=\()" % "|".join(FUNCTIONS))
_OPERATORS = "+-*/^()"
_WORD_END = "+-*/^<>=!`"
#: What may follow a name: the end of a word.
_AFTER_NAME = frozenset(_WORD_END + ")")


# -- the parameter names of a posterior ----------------------------------------------------
@dataclass(frozen=True)
class ParameterNames:
    """Every name a hypothesis may use: scalar variables of the posterior by their own
    name, group effects per level as ``variable[level]``; ``where[name]`` is the
    variable and the level's index (None for a scalar)."""

    where: Mapping[str, tuple[str, int | None]]
    lengths: tuple[int, ...]  # the distinct name lengths, longest first
    scalars: tuple[str, ...]
    vectors: Mapping[str, str]  # a variable with one value per level -> its first level's name

    @classmethod
    def of(cls, posterior: xr.Dataset) -> "ParameterNames":
        where: dict[str, tuple[str, int | None]] = {}
        scalars, vectors = [], {}
        for name, variable in posterior.data_vars.items():
            if variable.ndim == 2:
                where[name] = (name, None)
                scalars.append(name)
            elif variable.ndim == 3 and variable.shape[2]:
                levels = variable.coords[variable.dims[2]].values
                where.update((f"{name}[{level}]", (name, j)) for j, level in enumerate(levels))
                vectors[name] = f"{name}[{levels[0]}]"
        return cls(where, tuple(sorted({len(n) for n in where}, reverse=True)), tuple(scalars), vectors)

    def match(self, text: str, start: int) -> str | None:
        """The longest name that starts at ``start`` and ends the word (``Intercept`` is not
        the start of ``Intercept|h[1]``)."""
        for length in self.lengths:
            name = text[start:start + length]
            end = start + length
            if len(name) == length and name in self.where and (end == len(text) or text[end].isspace()
                                                                or text[end] in _AFTER_NAME):
                return name
        return None

    def close_to(self, word: str) -> list[str]:
        """A few names like ``word``: among the scalars and the levels of the same variable."""
        base = word.partition("[")[0]
        candidates = list(self.scalars) + [n for n, (variable, j) in self.where.items()
                                           if j is not None and variable == base]
        return difflib.get_close_matches(word, candidates, n=5, cutoff=0.6)

    def draws(self, posterior: xr.Dataset, name: str) -> np.ndarray:
        variable, level = self.where[name]
        values = stack_draws(posterior, variable)
        return values if level is None else values[:, level]


# -- tokens and the expression tree ------------------------------------------------------
class Token(NamedTuple):
    """``kind`` is ``name``, ``number``, ``op``, ``func``, ``cmp`` or ``end``; ``value`` the
    parameter name, number, operator, function or comparison; ``start`` its position."""

    kind: str
    value: object
    start: int
    text: str


class Number(NamedTuple):
    value: float


class Parameter(NamedTuple):
    name: str


class Negate(NamedTuple):
    operand: object


class Binary(NamedTuple):
    op: str
    left: object
    right: object


class Call(NamedTuple):
    function: str
    argument: object


@dataclass(frozen=True)
class Hypothesis:
    """A parsed hypothesis: ``left comparison right`` with ``comparison`` one of ``<``, ``>``, ``=``."""

    key: str
    text: str
    left: object
    comparison: str
    right: object


class _Fault(Exception):
    """A problem at a position of the text (turned into a DataError with a caret)."""

    def __init__(self, message: str, position: int):
        super().__init__(message)
        self.message, self.position = message, position


def tokenize(text: str, names: ParameterNames) -> list[Token]:
    """The tokens of ``text``: known names first (longest match), then numbers, operators,
    comparisons and function calls; an unknown word raises naming it."""
    tokens, i = [], 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise _Fault("this backquote is not closed: write a name as `name`", i)
            name = text[i + 1:end]
            if name not in names.where:
                raise _Fault(_unknown(name, names), i)
            tokens.append(Token("name", name, i, text[i:end + 1]))
            i = end + 1
            continue
        name = names.match(text, i)
        if name is not None:
            tokens.append(Token("name", name, i, name))
            i += len(name)
            continue
        if (number := _NUMBER.match(text, i)) is not None:
            tokens.append(Token("number", float(number.group()), i, number.group()))
            i = number.end()
            continue
        pair = text[i:i + 2]
        if pair in REFUSED:
            raise _Fault(f"{pair!r} is not a comparison here: {REFUSED[pair]}", i)
        if pair in COMPARISONS or c in COMPARISONS:
            written = pair if pair in COMPARISONS else c
            tokens.append(Token("cmp", COMPARISONS[written], i, written))
            i += len(written)
            continue
        if pair == "**" or c in _OPERATORS:
            written = "**" if pair == "**" else c
            tokens.append(Token("op", "^" if written == "**" else c, i, written))
            i += len(written)
            continue
        if (function := _FUNCTION.match(text, i)) is not None:
            tokens.append(Token("func", function.group(1), i, function.group(1)))
            i = function.end()
            continue
        if c.isalpha() or c in "_.":
            raise _Fault(_unknown(_word(text, i), names), i)
        raise _Fault(f"unexpected character {c!r}", i)
    tokens.append(Token("end", None, len(text), ""))
    return tokens


def _word(text: str, start: int) -> str:
    """The unknown name at ``start``: up to a space or operator outside brackets."""
    depth, i = 0, start
    while i < len(text):
        c = text[i]
        if c in "([":
            depth += 1
        elif c in ")]" and depth > 0:
            depth -= 1
        elif c == ")":
            break
        elif depth == 0 and (c.isspace() or c in _WORD_END):
            break
        i += 1
    return text[start:i]


def _unknown(word: str, names: ParameterNames) -> str:
    if word in names.vectors:
        return f"{word} has one value per level: name a level as the summary does, e.g. {names.vectors[word]}"
    close = names.close_to(word)
    if close:
        hint = f"close names: {', '.join(close)}"
    else:
        shown = list(names.scalars[:12])
        more = f" and {len(names.where) - len(shown)} more" if len(names.where) > len(shown) else ""
        hint = f"the parameters are {', '.join(shown)}{more}"
    return (f"no parameter named {word!r} ({hint}); name parameters as fit.summary() does (a group effect "
            "as Intercept|g[level]), or in backquotes, `name`")


class _Parser:
    """Recursive descent over the tokens (grammar in the module notes)."""

    def __init__(self, tokens: list[Token]):
        self.tokens, self.i = tokens, 0

    @property
    def token(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def hypothesis(self) -> tuple[object, Token, object]:
        left = self.sum()
        if self.token.kind == "end":
            raise _Fault("no comparison: write the hypothesis as 'left > right', 'left < right' or "
                         "'left = right' (e.g. 'x > 0')", self.token.start)
        if self.token.kind != "cmp":
            raise self.unexpected(after_operand=True)
        comparison = self.take()
        right = self.sum()
        if self.token.kind == "cmp":
            raise _Fault(f"a second comparison ({comparison.text!r}, then {self.token.text!r}): a hypothesis "
                         "is one comparison, 'left < right'; test each in a hypothesis of its own",
                         self.token.start)
        if self.token.kind != "end":
            raise self.unexpected(after_operand=True)
        return left, comparison, right

    def sum(self):
        node = self.product()
        while self.token.kind == "op" and self.token.value in "+-":
            node = Binary(self.take().value, node, self.product())
        return node

    def product(self):
        node = self.unary()
        while self.token.kind == "op" and self.token.value in "*/":
            node = Binary(self.take().value, node, self.unary())
        return node

    def unary(self):
        if self.token.kind == "op" and self.token.value in "+-":
            sign = self.take().value
            operand = self.unary()
            return Negate(operand) if sign == "-" else operand
        return self.power()

    def power(self):
        base = self.atom()
        if self.token.kind == "op" and self.token.value == "^":
            self.take()
            return Binary("^", base, self.unary())  # right-associative; 2^-1 allowed
        return base

    def atom(self):
        token = self.token
        if token.kind == "number":
            return Number(self.take().value)
        if token.kind == "name":
            return Parameter(self.take().value)
        if token.kind == "func":
            self.take()
            opening = self.take()  # the tokenizer saw "(" next
            argument = self.sum()
            self.close(opening)
            return Call(token.value, argument)
        if token.kind == "op" and token.value == "(":
            opening = self.take()
            inner = self.sum()
            self.close(opening)
            return inner
        raise self.unexpected()

    def close(self, opening: Token) -> None:
        token = self.token
        if token.kind == "op" and token.value == ")":
            self.take()
            return
        if token.kind == "end":
            raise _Fault("this '(' is not closed", opening.start)
        if token.kind == "cmp":
            raise _Fault("a comparison inside parentheses: the comparison stands between the two sides, "
                         "'left > right'", token.start)
        raise self.unexpected(after_operand=True)

    def unexpected(self, after_operand: bool = False) -> _Fault:
        """The fault at the current token: where an operand is expected, or after a whole one."""
        token = self.token
        if token.kind == "end":
            return _Fault("the expression ends where a parameter, a number or '(' is expected", token.start)
        if not after_operand:
            return _Fault(f"{token.text!r} where a parameter, a number or '(' is expected", token.start)
        if token.kind == "op" and token.value == ")":
            return _Fault("')' without a matching '('", token.start)
        if token.kind in ("name", "number", "func") or token.value == "(":
            return _Fault(f"an operator is missing before {token.text!r}", token.start)
        return _Fault(f"unexpected {token.text!r}", token.start)


def parse_hypothesis(text: str, names: ParameterNames, key: str | None = None) -> Hypothesis:
    """Parse one hypothesis, or raise DataError naming it, with a caret under the fault."""
    text = text.strip()
    try:
        left, comparison, right = _Parser(tokenize(text, names)).hypothesis()
    except _Fault as fault:
        named = f"hypothesis {text!r}" if key in (None, text) else f"hypothesis {key!r} ({text!r})"
        raise DataError(f"{named}: {fault.message}\n  {text}\n  {' ' * fault.position}^") from None
    return Hypothesis(text if key is None else key, text, left, comparison.value, right)


# -- evaluation ----------------------------------------------------------------------------
def evaluate(node, draws: Callable[[str], np.ndarray]) -> np.ndarray | float:
    """The value of an expression tree for every draw (``draws(name)`` gives a parameter's)."""
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Parameter):
        return draws(node.name)
    if isinstance(node, Negate):
        return -evaluate(node.operand, draws)
    if isinstance(node, Call):
        return FUNCTIONS[node.function](evaluate(node.argument, draws))
    left, right = evaluate(node.left, draws), evaluate(node.right, draws)
    if node.op == "+":
        return left + right
    if node.op == "-":
        return left - right
    if node.op == "*":
        return left * right
    if node.op == "/":
        return left / right
    return np.power(left, right)


def hypothesis_draws(posterior: xr.Dataset, hypothesis: Hypothesis, names: ParameterNames | None = None
                     ) -> np.ndarray:
    """Draws of ``left - right``, shape ``(chain*draw,)``; DataError when some are not finite."""
    names = ParameterNames.of(posterior) if names is None else names
    num_draws = posterior.sizes["chain"] * posterior.sizes["draw"]
    with np.errstate(all="ignore"):
        value = evaluate(Binary("-", hypothesis.left, hypothesis.right),
                         lambda name: names.draws(posterior, name))
    value = np.broadcast_to(np.asarray(value, dtype=np.float64), (num_draws,))
    bad = ~np.isfinite(value)
    if bad.any():
        raise DataError(f"hypothesis {hypothesis.text!r} is not finite for {bad.sum()} of {num_draws} draws "
                        "(a log, square root or fractional power of a negative value, or a division by zero)")
    return value


# -- the table -----------------------------------------------------------------------------
def _as_items(hypotheses) -> list[tuple[str | None, str]]:
    """``(key, text)`` pairs from a string, a sequence of strings or a dict name -> string."""
    if isinstance(hypotheses, str):
        items = [(None, hypotheses)]
    elif isinstance(hypotheses, Mapping):
        items = [(k, v) for k, v in hypotheses.items()]
        bad_keys = [k for k, _ in items if not isinstance(k, str)]
        if bad_keys:
            raise DataError(f"the names of hypotheses must be strings, got {bad_keys[0]!r}")
    elif isinstance(hypotheses, Sequence):
        items = [(None, h) for h in hypotheses]
    else:
        raise DataError("hypotheses must be a string such as 'x > 0', a list of such strings, or a dict "
                        f"name -> string; got {type(hypotheses).__name__}")
    if not items:
        raise DataError("no hypotheses given: pass a string such as 'x > 0', or a list or dict of them")
    for key, text in items:
        if not isinstance(text, str):
            raise DataError(f"a hypothesis must be a string such as 'x > 0', got {text!r}"
                            + ("" if key is None else f" for {key!r}"))
    return items


def hypothesis_table(posterior: xr.Dataset, hypotheses: str | Sequence[str] | Mapping[str, str],
                     prob: float = 0.95, summary: bool = True, prior: xr.Dataset | None = None) -> pd.DataFrame:
    """Test hypotheses about the parameters, as brms's ``hypothesis()`` (see ``Fit.hypothesis``).

    Returns
    -------
    pandas.DataFrame
        ``summary=True``: one row per hypothesis, indexed by its name (a dict's key) or its
        text, with columns ``hypothesis``, ``estimate``, ``error``, the interval's bounds
        ``lower`` and ``upper`` (brms's ``CI.Lower``, ``CI.Upper``), ``evid_ratio`` and
        ``post_prob``.
        ``summary=False``: the draws of ``left - right``, ``chain*draw`` rows, one column
        per hypothesis.

    Notes
    -----
    With :math:`d^{(s)}` the value of ``left - right`` at draw :math:`s` of :math:`S`:
    ``estimate`` is :math:`\\bar d`, ``error`` the sd of the :math:`d^{(s)}` (``ddof=1``).
    For ``>``: ``post_prob`` is :math:`p = S^{-1} \\#\\{s: d^{(s)} > 0\\}`, ``evid_ratio``
    :math:`p / (1 - p)` (infinite when every draw agrees), and the interval is one-sided,
    :math:`[q_{1-\\mathrm{prob}}, \\infty)`; ``<`` likewise with :math:`d^{(s)} < 0` and
    :math:`(-\\infty, q_{\\mathrm{prob}}]`. For ``=`` the interval is the central one,
    :math:`[q_{(1-\\mathrm{prob})/2}, q_{(1+\\mathrm{prob})/2}]`, and ``evid_ratio`` and
    ``post_prob`` are NaN unless ``prior`` holds draws from the prior (a fit with
    ``prior_only=True``): then, as brms, ``evid_ratio`` is the Savage-Dickey density ratio
    :math:`p(d = 0 \\mid y) / p(d = 0)`, each density a Gaussian kernel density estimate
    (Scott's bandwidth) of the draws at 0, and ``post_prob`` is
    ``evid_ratio / (1 + evid_ratio)``. Quantiles are ``numpy.quantile`` (linear interpolation).
    """
    prob = check_prob(prob)
    items = _as_items(hypotheses)
    names = ParameterNames.of(posterior)
    parsed = [parse_hypothesis(text, names, key) for key, text in items]
    draws = np.column_stack([hypothesis_draws(posterior, h, names) for h in parsed])
    keys = pd.Index([h.key for h in parsed])
    if not summary:
        return pd.DataFrame(draws, columns=keys)
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    rows = []
    for h, d in zip(parsed, draws.T):
        if h.comparison == "=":
            lower, upper = np.quantile(d, [lo, hi])
            post_prob = evid_ratio = np.nan
            if prior is not None:
                evid_ratio = _density_at_zero(d) / _density_at_zero(hypothesis_draws(prior, h))
                post_prob = evid_ratio / (1 + evid_ratio)
        else:
            holds = d > 0 if h.comparison == ">" else d < 0
            post_prob = float(holds.mean())
            evid_ratio = np.inf if post_prob == 1 else post_prob / (1 - post_prob)
            lower, upper = (np.quantile(d, 1 - prob), np.inf) if h.comparison == ">" else \
                (-np.inf, np.quantile(d, prob))
        rows.append({"hypothesis": h.text, "estimate": d.mean(), "error": d.std(ddof=1),
                     "lower": lower, "upper": upper,
                     "evid_ratio": evid_ratio, "post_prob": post_prob})
    return pd.DataFrame(rows, index=keys)


def _density_at_zero(draws: np.ndarray) -> float:
    """A Gaussian kernel density estimate of ``draws`` at 0."""
    from scipy.stats import gaussian_kde  # scipy.stats, imported at first use
    return float(gaussian_kde(draws)(0.0)[0])
