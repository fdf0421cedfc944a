"""What every sampler returns: constrained draws in a common form."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class SamplerOutput:
    """Constrained draws, each array shaped ``(chain, draw, ...)``.

    ``b`` (p), ``aux`` (k), ``sd[t]`` (q), ``chol[t]`` (q, q) or None for
    independent terms, ``effects[t]`` (levels, q); ``stats`` holds per-draw
    sampler statistics for ``sample_stats``; ``info`` what the sampler reports
    about itself (settings, timings, choices made).
    """

    b: np.ndarray
    aux: np.ndarray
    sd: list[np.ndarray]
    chol: list[np.ndarray | None]
    effects: list[np.ndarray]
    stats: dict[str, np.ndarray]
    info: dict = field(default_factory=dict)

    def with_stats(self, **stats: np.ndarray) -> "SamplerOutput":
        """A copy with these per-draw statistics added to ``stats``."""
        return replace(self, stats={**self.stats, **stats})
