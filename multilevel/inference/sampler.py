"""The interface every sampler implements, and what it returns.

A sampler is a module-level object with a ``name``, a way to say why it cannot
fit a model (:meth:`Sampler.problem`: None when it can) and why it suits one
(:meth:`Sampler.suits`), and one :meth:`Sampler.run` that takes the
:class:`~multilevel.model.Model`, a seed and the :class:`Options`, does its own
preparation (sufficient statistics, offsets, pilot runs) and returns
:class:`Draws`. The registry (:mod:`.registry`) lists the samplers in order of
preference for ``sampler="auto"``. As BlackJAX puts it, every algorithm has the
same top-level API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, NamedTuple, Protocol

import numpy as np

if TYPE_CHECKING:
    from ..model import Model


class PriorProblem(str):
    """A reason a sampler cannot fit a model that lies in the priors (a sampler that
    needs conjugate priors): asking for that sampler raises PriorError, not SamplerError."""


class Options(NamedTuple):
    """Sampler options, as ``ml.fit`` takes them.

    ``target_accept`` and ``max_treedepth`` are NUTS settings (the collapsed sampler
    runs NUTS on the variance parameters; Gibbs has none); ``centered`` the NUTS
    parameterisation of the group effects (True, False, a dict by grouping factor,
    or None to choose).
    """

    chains: int = 4
    draws: int = 1000
    warmup: int = 1000
    target_accept: float = 0.8
    max_treedepth: int = 10
    centered: bool | Mapping[str, bool] | None = None
    progress: bool = False


class SamplerInfo(NamedTuple):
    """What a sampler reports about its run.

    ``exact_effects``: whether the group effects are exact draws from their
    conditional given the other parameters (then their mixing is that of those
    parameters). ``details``: the sampler's own settings and choices, JSON-ready.
    ``warmup_seconds``: the part of ``sampling_seconds`` spent in warmup, when the sampler
    measures it (None: not measured); ``draws_seconds``: time spent after the chains,
    making the reported draws from the chains' positions (the exact draws of the
    collapsed sampler).
    """

    compile_seconds: float
    sampling_seconds: float
    exact_effects: bool = False
    details: Mapping = {}
    warmup_seconds: float | None = None
    draws_seconds: float = 0.0


@dataclass(frozen=True)
class Draws:
    """Constrained draws, each array shaped ``(chain, draw, ...)``.

    ``b`` (p), ``aux`` (k), ``sd[t]`` (q), ``chol[t]`` (q, q) or None for
    independent terms, ``effects[t]`` (levels, q); ``stats`` holds per-draw
    sampler statistics for ``sample_stats`` (``deviance`` when the sampler computed
    it on the way); ``info`` what the sampler reports.
    """

    b: np.ndarray
    aux: np.ndarray
    sd: tuple[np.ndarray, ...]
    chol: tuple[np.ndarray | None, ...]
    effects: tuple[np.ndarray, ...]
    stats: Mapping[str, np.ndarray] = field(default_factory=dict)
    info: SamplerInfo = SamplerInfo(0.0, 0.0)


class Sampler(Protocol):
    """A sampler behind the common interface."""

    name: str

    def problem(self, model: Model) -> str | None:
        """Why this sampler cannot fit ``model`` (a :class:`PriorProblem` when the priors
        are the cause), or None if it can."""

    def suits(self, model: Model) -> str:
        """Why this sampler suits ``model`` (the reason ``auto`` gives for choosing it)."""

    def run(self, model: Model, seed: int, options: Options) -> Draws:
        """Sample the posterior of ``model``."""


def predicted_parameters_problem(model: Model) -> str | None:
    """Why a sampler that takes the family's parameters as scalars cannot fit ``model``
    (None when every parameter is one number)."""
    if model.layout.dpars:
        return f"{' and '.join(model.layout.dpars)} varies by row (a formula of its own)"
    return None


def bounded_response_problem(model: Model) -> str | None:
    """Why an exact Gaussian sampler cannot fit ``model``'s censored or truncated response
    (None without ``cens()`` and ``trunc()``): those rows' likelihood is a probability
    mass, not a Gaussian density, so the effects do not integrate out in closed form."""
    terms = [str(t) for t in (model.spec.cens, model.spec.trunc) if t is not None]
    if terms:
        return (f"{' and '.join(terms)} {'make' if len(terms) > 1 else 'makes'} the likelihood of the censored or "
                "truncated rows a probability, not a Gaussian density, so the effects have no closed-form "
                "conditional")
    return None
