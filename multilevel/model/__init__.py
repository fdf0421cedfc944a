"""Stage 3: families, priors, the parameter layout and the log density."""

from .families import FAMILIES, Family, Gaussian, check_response, get_family
from .layout import GroupLayout, Layout
from .logdensity import (ModelData, Params, Position, Structure, centering_arrays, constrain, recentre, deviance, initial_position,
                         make_logdensity, model_data, pointwise_log_likelihood, zero_position,
                         structure)
from .record import Model, build_model
from .prior_table import ParamPrior, PriorSet, default_priors, resolve_priors
from .priors import (LKJ, Beta, Cauchy, Exponential, Gamma, GammaPrecision, HalfCauchy, HalfNormal,
                     HalfStudentT, InverseGamma, InverseGammaVariance, InverseWishart, Normal, Prior,
                     StudentT, Uniform, prior_from_string)

__all__ = [
    "Model", "build_model",
    "FAMILIES", "Family", "Gaussian", "check_response", "get_family", "GroupLayout", "Layout", "ModelData", "Params", "Position",
    "Structure", "centering_arrays", "constrain", "recentre", "deviance", "initial_position", "make_logdensity",
    "model_data", "pointwise_log_likelihood", "zero_position", "structure", "ParamPrior", "PriorSet", "default_priors",
    "resolve_priors", "LKJ", "Beta", "Cauchy", "Exponential", "Gamma", "GammaPrecision", "HalfCauchy",
    "HalfNormal", "HalfStudentT", "InverseGamma", "InverseGammaVariance", "InverseWishart", "Normal",
    "Prior", "StudentT", "Uniform", "prior_from_string",
]
