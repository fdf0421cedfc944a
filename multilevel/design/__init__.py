"""Stage 2: a FormulaSpec evaluated on data gives a frozen Design."""

from .build import Design, GroupData, build_design
from .columns import Encoders

__all__ = ["Design", "GroupData", "Encoders", "build_design"]
