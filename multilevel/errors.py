"""One error hierarchy for everything the library rejects.

Every error raised on bad user input is a :class:`MultilevelError`, so callers
can catch the library's complaints without catching bugs. Messages name the
column, term or value at fault and say what to do.
"""

from __future__ import annotations


class MultilevelError(Exception):
    """Base class of all errors the library raises on bad input.

    Catch it to catch every complaint of the library; raise one of its
    subclasses, which are also ``ValueError``, never this class itself.
    """


class FormulaError(MultilevelError, ValueError):
    """A formula string that cannot be parsed or does not make sense.

    The message repeats the formula with a caret under the position at fault.
    """

    def __init__(self, message: str, formula: str | None = None, position: int | None = None):
        self.formula = formula
        self.position = position
        self.reason = message
        if formula is not None and position is not None:
            message = f"{message}\n  {formula}\n  {' ' * position}^"
        super().__init__(message)


class DataError(MultilevelError, ValueError):
    """Data that cannot be used as given: a file that cannot be read (or is not a
    fit), missing columns, bad values, unseen levels; or an argument saying how to
    use, summarise or compare them that is not one accepted (``na_action``,
    ``kind``, ``prob``, ``ic``)."""


class PriorError(MultilevelError, ValueError):
    """A prior that does not apply: unknown key, wrong support, unsupported by a sampler."""


class FamilyError(MultilevelError, ValueError):
    """A response family, link or family parameter that does not exist or does not apply."""


class SamplerError(MultilevelError, ValueError):
    """Sampler options that are invalid or a sampler that cannot handle the model."""
