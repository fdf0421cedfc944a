"""multilevel: Bayesian multilevel regression from lme4/brms formulas.

>>> import multilevel as ml
>>> fit = ml.fit("y ~ x + (1 + x | g)", data=df)   # doctest: +SKIP
>>> fit.summary()                                   # doctest: +SKIP
"""

from . import datasets, families
from .api import default_priors, fit, sbc
from .errors import DataError, FamilyError, FormulaError, MultilevelError, PriorError, SamplerError
from .formula import Formula, parse_formula
from .model import Model, build_model
from .model.priors import (LKJ, Beta, Cauchy, Exponential, Gamma, GammaPrecision, HalfCauchy, HalfNormal,
                           HalfStudentT, InverseGamma, InverseGammaVariance, InverseWishart, Normal,
                           StudentT, Uniform)
from .results import DIC, ConvergenceWarning, Fit, compare, load

__version__ = "0.1.0"

__all__ = [
    "fit", "default_priors", "sbc", "Formula", "build_model", "Model", "load", "compare", "Fit", "DIC", "parse_formula", "datasets", "families", "ConvergenceWarning",
    "MultilevelError", "FormulaError", "DataError", "PriorError", "FamilyError", "SamplerError",
    "Normal", "StudentT", "Cauchy", "HalfNormal", "HalfCauchy", "HalfStudentT", "Exponential",
    "Beta", "Gamma", "InverseGamma", "InverseGammaVariance", "InverseWishart", "GammaPrecision", "Uniform",
    "LKJ",
]
