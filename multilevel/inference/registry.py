"""The samplers, in order of preference, and the choice ``sampler="auto"`` makes.

``auto`` takes the first sampler that can fit the model: the collapsed sampler
(Gaussian, one grouping factor or a nested chain: exact and row-count
independent), then blocked Gibbs (Gaussian, crossed factors), then
Metropolis-within-Gibbs (random-intercept GLMMs with crossed factors), then NUTS on the
full model; the reason names what ruled out the ones before it. A sampler may also
decline, for ``auto`` only, a model it can fit (an optional ``declines(model)``, the
reason or None: where it measured slower than the next). A new sampler is one module in
this package and one line here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import PriorError, SamplerError
from .collapsed import COLLAPSED
from .gibbs import GIBBS
from .mwg import MWG
from .nuts import NUTS
from .sampler import PriorProblem, Sampler

if TYPE_CHECKING:
    from ..model import Model

#: Every sampler, most preferred first.
REGISTRY: tuple[Sampler, ...] = (COLLAPSED, GIBBS, MWG, NUTS)
#: The names ``ml.fit(sampler=...)`` takes.
SAMPLERS: tuple[str, ...] = ("auto",) + tuple(s.name for s in REGISTRY)


def get_sampler(name: str) -> Sampler:
    """The sampler called ``name`` (not ``auto``)."""
    for sampler in REGISTRY:
        if sampler.name == name:
            return sampler
    raise SamplerError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")


def choose_sampler(requested: str, model: Model) -> tuple[Sampler, str]:
    """``(sampler, reason)``: the requested sampler if it can fit the model, or for
    ``"auto"`` the first in :data:`REGISTRY` that can, with why."""
    if requested != "auto":
        sampler = get_sampler(requested)
        problem = sampler.problem(model)
        if problem:
            error = PriorError if isinstance(problem, PriorProblem) else SamplerError
            others = [s.name for s in REGISTRY if s is not sampler and s.problem(model) is None]
            alternatives = f" or {' or '.join(map(repr, others))}" if others else ""
            raise error(f"sampler={requested!r} cannot fit this model: {problem}; use sampler='auto'{alternatives}")
        return sampler, "requested"
    passed = []
    for sampler in REGISTRY:
        problem = sampler.problem(model) or getattr(sampler, "declines", lambda _: None)(model)
        if problem is None:
            reason = sampler.suits(model)
            return sampler, reason + "".join(f"; {name.capitalize()} cannot: {why}" for name, why in passed)
        passed.append((sampler.name, problem))
    raise SamplerError("no sampler can fit this model: " + "; ".join(f"{n}: {why}" for n, why in passed))
