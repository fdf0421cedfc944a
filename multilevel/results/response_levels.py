"""Which level of a categorical response a fit models, for its summary header."""

from __future__ import annotations

from ..design import Encoders
from ..formula.spec import FormulaSpec
from ..model.families import Family


def modelled_level(spec: FormulaSpec, encoders: Encoders, family: Family) -> str | None:
    """The header line that names the modelled level of a Bernoulli response given as two
    categories (``"Response: yes of survived (1); no is 0"``), or None for a numeric one.

    The levels are the fitting data's, in R's order (the first is failure), as
    :meth:`multilevel.model.families.binary.Bernoulli.prepare` coded them.
    """
    levels = encoders.levels.get(str(spec.successes))
    if family.name != "bernoulli" or levels is None or len(levels) != 2:
        return None
    return (f"Response: P({spec.successes} = {levels[1]}) is modelled ({levels[1]} is 1, {levels[0]} is 0: "
            "the second level in R's order)")
