"""Stage 2: a FormulaSpec evaluated on data gives a frozen Design."""

from .build import Design, GroupData, build_design, kept_columns
from .groups import Factor, GroupStructure
from .columns import Encoders

__all__ = ["Design", "GroupData", "Encoders", "Factor", "GroupStructure", "build_design", "kept_columns"]
