"""Predictions for new data from posterior draws.

For draw s and new row i, with fixed effects ``b_s`` and group effects
``r_{t,s}``:

* ``kind="linear"``: ``eta_{s,i} = x_i b_s + sum_t z_{t,i} r_{t,s}[level_t(i)] + offset_i``;
* ``kind="mean"``: the family's mean on the data scale, ``E[y | eta]`` (for the
  binomial, ``trials_i`` times the probability);
* ``kind="posterior_predictive"``: a new response drawn from the family.

With ``dpar="sigma"`` (any parameter of the family), ``kind="linear"`` gives the
parameter's linear predictor (its link scale) and ``kind="mean"`` its value, per
row when it has a formula of its own, else the same for every row.

Offsets and numbers of trials are read from the new data, as the formula
computes them (``offset(log(exposure))``: the column ``exposure``); so are the
known standard errors of ``y | se(s)``, which ``posterior_predictive`` needs (each
new row's sd is its ``s``, or ``sqrt(sigma² + s²)`` with ``sigma = TRUE``) and the
mean does not. Row weights (``weights(w)``) play no part in predictions; the
internal ``log_likelihood`` of cross-validation is weighted, as the fit's is.

A truncated response (``y | trunc(lb, ub) ~ ...``) has its ``posterior_predictive``
draws inside each new row's window: bounds that are numbers hold for every row, bounds
that are columns are read from the new data (which then need them). ``kind="mean"`` is
the truncated distribution's mean ``E[y | eta, lb <= y <= ub]`` (brms's), with the
bounds read likewise; when the new data lack the bounds' columns, it is the family's
untruncated mean ``E[y | eta]`` (as for a grid of conditional effects).
Censoring (``cens()``) describes how the fitted rows were observed and plays no part in
predictions; the internal ``log_likelihood`` of cross-validation takes the censored
rows' probability masses, as the fit's does.

``re_formula`` chooses the group terms, as brms's: None, all of them; ``"~ 0"``
(brms's ``NA``), none (population-level predictions); ``"~ (1 | g)"``, only the
effects it names (the intercept of ``g``; ``"~ (1 + x | g)"`` its slope too).
The grouping columns of the terms left out need not be in the new data.

A level of a grouping factor not seen in fitting gets, with ``new_groups=``:
``"population"``, an effect drawn per draw from ``N(0, diag(sd) R diag(sd))``
(what a new group could be); ``"zero"``, the population mean (no effect); or
``"error"``, a DataError naming the unseen levels.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from typing import Mapping

import jax
import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from ..design import Design, Encoders, build_design
from ..errors import DataError, FormulaError
from ..formula import parse_formula
from ..formula.spec import FormulaSpec, Num, Terms, term_name
from ..model.bounded import bounded_log_likelihood, truncated_mean, truncated_sample
from ..model.families import Family, get_link
from ..model.layout import SE_KNOWN, Layout
from ..model.predictors import Predictors
from .posterior import stack_draws

KINDS = ("linear", "mean", "posterior_predictive", "probs")
NEW_GROUPS = ("population", "zero", "error")


def predict_draws(posterior: xr.Dataset, spec: FormulaSpec, encoders: Encoders, layout: Layout,
                  family: Family, new_data: pd.DataFrame, *, kind: str = "mean",
                  new_groups: str = "population", seed: int = 0, dpar: str | None = None,
                  re_formula: str | None = None) -> np.ndarray:
    """Draws of predictions, shape ``(chain*draw, rows of new_data)``."""
    if kind not in KINDS:
        raise DataError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if new_groups not in NEW_GROUPS:
        raise DataError(f"new_groups must be one of {', '.join(NEW_GROUPS)}, got {new_groups!r}")
    if dpar is not None:
        names = [p.name for p in family.params if p.predictable]
        if dpar not in names:
            has = f"its parameters are {', '.join(names)}" if names else "it has none besides the mean"
            raise DataError(f"dpar={dpar!r}: the {family} family has no such parameter; {has}")
        if kind not in ("linear", "mean"):
            raise DataError(f"dpar={dpar!r} takes kind='linear' (the link scale) or 'mean' (the parameter's "
                            f"value), not {kind!r}")
    kept = kept_effects(re_formula, layout)
    frame = _without_left_out_groups(pd.DataFrame(new_data), spec, kept)
    design = build_design(spec, frame, na_action="error", encoders=encoders, with_response=False)
    return design_draws(posterior, layout, family, design, kind=kind, new_groups=new_groups, seed=seed,
                        dpar=dpar, kept=kept)


def kept_effects(re_formula: str | None, layout: Layout) -> tuple[np.ndarray, ...]:
    """Per group term, which of its columns ``re_formula`` keeps (see the module notes)."""
    if re_formula is None:
        return tuple(np.ones(g.q, dtype=bool) for g in layout.groups)
    if not isinstance(re_formula, str):
        raise DataError(f"re_formula must be None, '~ 0' or a formula of group terms such as '~ (1 | g)', "
                        f"got {re_formula!r}")
    try:
        spec = parse_formula("y " + re_formula.strip() if re_formula.strip().startswith("~") else re_formula)
    except FormulaError as exc:
        raise DataError(f"re_formula {re_formula!r} does not parse: {exc}") from None
    if spec.fixed.terms:
        raise DataError(f"re_formula {re_formula!r} names fixed terms; it takes group terms only, "
                        "e.g. '~ (1 | g)', or '~ 0' for none")
    names = {g.name for g in layout.groups}
    unknown = [t.group_name for t in spec.groups if t.group_name not in names]
    if unknown:
        raise DataError(f"re_formula names {', '.join(map(repr, unknown))}, not a grouping factor of the model; "
                        f"it has {', '.join(map(repr, sorted(names)))}")
    out = []
    for g in layout.groups:
        named = [term_name(t) for term in spec.groups if term.group_name == g.name
                 for t in ((() if term.effects.intercept else None), *term.effects.terms) if t is not None]
        columns = [c[len(d) + 1:] if d else c for c, d in zip(g.columns, g.dpars)]
        out.append(np.array([any(c == n or c.startswith(n + "[") for n in named) for c in columns], dtype=bool))
    return tuple(out)


def _without_left_out_groups(frame: pd.DataFrame, spec: FormulaSpec, kept: tuple[np.ndarray, ...]) -> pd.DataFrame:
    """``frame`` with a placeholder for each missing column that only left-out group terms read."""
    terms = [tuple(term for _, term in parts) for parts in spec.group_terms()]
    used = lambda parts: set(FormulaSpec("", Num(0.0), Terms(False, ()), parts).variables())  # noqa: E731
    fixed = replace(spec, groups=(), dpars=tuple(replace(d, groups=()) for d in spec.dpars))
    needed = set(fixed.variables(response=False)) | used(tuple(t for ts, k in zip(terms, kept) if k.any() for t in ts))
    missing = [c for c in used(tuple(t for ts in terms for t in ts)) - needed if c not in frame.columns]
    return frame.assign(**{c: 0.0 for c in missing}) if missing else frame


def design_draws(posterior: Mapping[str, ArrayLike], layout: Layout, family: Family, design: Design, *,
                 kind: str = "mean", new_groups: str = "population", seed: int = 0,
                 dpar: str | None = None, kept: tuple[np.ndarray, ...] | None = None) -> np.ndarray:
    """Draws of predictions for the rows of a design built with the fit's encoders
    (of the family's parameter ``dpar``, if given), with the group effects ``kept``
    (per term, a mask of its columns; default all).

    Posterior predictive draws of a discrete family are integers. ``kind="log_likelihood"``
    (internal, for cross-validation) gives ``log p(y_i | θ_s)`` of the design's own response
    (a design built ``with_response=True``).
    """
    rng = np.random.default_rng(seed)
    predictors = Predictors.of(layout, family)
    num_draws = stack_draws(posterior, next(iter(posterior))).shape[0]
    b = np.stack([stack_draws(posterior, n) for n in layout.fixed], axis=-1) if layout.fixed \
        else np.zeros((num_draws, 0))  # "y ~ 0 + (1 | g)" has no fixed effects
    X = design.X[:, [design.columns.index(n) for n in layout.fixed]]  # an ordinal model has no intercept
    etas = [b[:, start:stop] @ X[:, start:stop].T for start, stop in predictors.blocks]
    kept = kept if kept is not None else tuple(np.ones(g.q, dtype=bool) for g in layout.groups)
    for g, data, targets, keep in zip(layout.groups, design.groups, predictors.terms, kept):
        if not keep.any():
            continue
        effects = np.stack([stack_draws(posterior, n) for n in g.effect_names], axis=-1)  # (S, L, q)
        refs = data.refs
        if data.new_levels:
            if new_groups == "error":
                raise DataError(f"grouping factor {g.name!r} has levels not seen in fitting: "
                                f"{', '.join(map(repr, data.new_levels[:10]))}; use "
                                "new_groups='population' or 'zero' to predict for new groups")
            if new_groups == "population":
                extra = _population_draws(posterior, g, len(data.new_levels), rng)
                refs = np.where(refs < 0, len(g.levels) - 1 - refs, refs)
            else:
                extra = np.zeros_like(effects[:, :1])
                refs = np.where(refs < 0, len(g.levels), refs)
            effects = np.concatenate([effects, extra], axis=1)
        for k in set(targets):
            mask = keep & (np.asarray(targets) == k)
            etas[k] = etas[k] + np.einsum("siq,iq->si", effects[:, refs, :], data.z * mask)
    if design.offset is not None:
        etas[0] = etas[0] + design.offset
    aux = np.stack([stack_draws(posterior, n) for n in layout.aux], axis=-1)[:, None, :] \
        if layout.aux else np.zeros((num_draws, 1, 0))
    aux = tuple(aux[..., j] for j in range(aux.shape[-1]))
    with jax.enable_x64(True):
        if dpar is not None:
            if dpar == "sigma" and predictors.se == SE_KNOWN:
                raise DataError(f"dpar='sigma': the model has no sigma, {design.spec.se} gives each row's sd; "
                                "the new data's standard errors are the sds")
            eta, params = predictors.family_arguments(family, etas, aux)    # the parameter, without se
            j = family.aux.index(dpar)
            value = np.broadcast_to(np.asarray(params[j], dtype=np.float64), eta.shape)
            if kind == "mean":
                return value
            if predictors.sources[j] >= 0:
                return np.asarray(etas[predictors.sources[j]], dtype=np.float64)
            param = family.params[j]
            return np.asarray(get_link(param.link)(value - param.lower), dtype=np.float64)
    if kind == "linear":
        return etas[0]
    if predictors.se and design.se is None and kind in ("posterior_predictive", "log_likelihood"):
        columns = ", ".join(repr(c) for c in design.spec.se_variables())
        raise DataError(f"kind={kind!r} of a model with {design.spec.se} needs the standard error of each new row: "
                        f"the new data need the column(s) {columns}")
    with jax.enable_x64(True):
        eta, params = predictors.family_arguments(family, etas, aux, design.se)
    trials = design.trials
    if family.needs_trials and trials is None:
        columns = ", ".join(repr(c) for c in design.spec.trials_variables())
        raise DataError(f"kind={kind!r} of a {family.name} model needs the number of trials of each new row: "
                        f"the new data need the column(s) {columns}")
    with jax.enable_x64(True):
        if kind == "mean" and design.bounds is not None and design.bounds.truncated:
            return np.asarray(_compiled_bounded(family, "mean")(eta, params, trials, design.bounds.lb,
                                                                design.bounds.ub), dtype=np.float64)
        if kind == "mean":
            return np.asarray(_compiled(family, "mean")(eta, params, trials), dtype=np.float64)
        if kind == "log_likelihood":
            loglik = np.asarray(_compiled_bounded(family, "log_likelihood")(design.y, eta, params, trials,
                                                                           design.bounds), dtype=np.float64)
            return loglik if design.weights is None else loglik * design.weights
        if kind == "probs":
            if not hasattr(family, "category_log_probs"):
                raise DataError(f"kind='probs' gives category probabilities of an ordinal model; the "
                                f"{family.name} family has no categories: use kind='mean'")
            return np.exp(np.asarray(_compiled(family, "category_log_probs")(eta, params), dtype=np.float64))
        if design.spec.trunc is not None:
            if design.bounds is None or not design.bounds.truncated:
                columns = ", ".join(repr(c) for c in design.spec.bound_variables("trunc"))
                raise DataError(f"kind='posterior_predictive' of a model with {design.spec.trunc} draws inside each "
                                f"new row's window: the new data need the column(s) {columns}")
            draws = np.asarray(_compiled_bounded(family, "sample")(jax.random.PRNGKey(seed), eta, params, trials,
                                                                  design.bounds.lb, design.bounds.ub))
        else:
            draws = np.asarray(_compiled(family, "sample")(jax.random.PRNGKey(seed), eta, params, trials))
    return draws.astype(np.int64) if family.discrete else draws.astype(np.float64)


@lru_cache(maxsize=64)
def _compiled(family: Family, method: str):
    """The family's ``method`` compiled as one program (not op by op), once per family."""
    return jax.jit(getattr(family, method))


@lru_cache(maxsize=64)
def _compiled_bounded(family: Family, method: str):
    """The censored and truncated log-likelihood (``"log_likelihood"``), truncated draws
    (``"sample"``) or truncated mean (``"mean"``) of the family (:mod:`multilevel.model.bounded`),
    compiled once per family."""
    function = {"log_likelihood": bounded_log_likelihood, "sample": truncated_sample, "mean": truncated_mean}[method]
    return jax.jit(lambda *args: function(family, *args))


def _population_draws(posterior: Mapping[str, ArrayLike], g, num_new: int, rng: np.random.Generator) -> np.ndarray:
    """Draw effects for ``num_new`` new levels from the fitted population, per draw."""
    sds = np.stack([stack_draws(posterior, n) for n in g.sd_names], axis=-1)  # (S, q)
    num_draws = sds.shape[0]
    normal = rng.standard_normal((num_draws, num_new, g.q))
    if g.has_cor:
        corr = np.broadcast_to(np.eye(g.q), (num_draws, g.q, g.q)).copy()
        pairs = [(i, j) for i in range(g.q) for j in range(i)]
        for name, (i, j) in zip(g.cor_names, pairs):
            corr[:, i, j] = corr[:, j, i] = stack_draws(posterior, name)
        chol = np.linalg.cholesky(corr + 1e-12 * np.eye(g.q))
        normal = np.einsum("sij,snj->sni", chol, normal)
    return normal * sds[:, None, :]


def summarise_probabilities(draws: np.ndarray, new_data: pd.DataFrame, categories: tuple[str, ...],
                            prob: float) -> pd.DataFrame:
    """Category probabilities ``(draws, rows, K)`` in long form: one row per new row and
    category, the new data's columns, ``category``, and ``mean``, ``sd`` and interval columns."""
    rows, num_categories = draws.shape[1], draws.shape[2]
    flat = draws.reshape(draws.shape[0], rows * num_categories)
    out = new_data.loc[new_data.index.repeat(num_categories)].reset_index(drop=True)
    out["category"] = pd.Categorical(np.tile(categories, rows), categories=list(categories), ordered=True)
    return summarise_predictions(flat, out, prob)


def summarise_predictions(draws: np.ndarray, new_data: pd.DataFrame, prob: float) -> pd.DataFrame:
    """The new data with ``mean``, ``sd`` and interval columns added (a copy)."""
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    out = new_data.copy()
    quantiles = np.quantile(draws, [lo, hi], axis=0)
    out["mean"] = draws.mean(axis=0)
    out["sd"] = draws.std(axis=0, ddof=1)
    out[f"q{100 * lo:g}"] = quantiles[0]
    out[f"q{100 * hi:g}"] = quantiles[1]
    return out


def posterior_predictive_draws(posterior: Mapping[str, ArrayLike], layout: Layout, family: Family,
                               design: Design, seed: int = 0) -> np.ndarray:
    """Replicates of y at the fitted rows: one per draw and row, shape ``(chain, draw, rows)``.

    Parameters
    ----------
    posterior
        The named posterior draws, each ``(chain, draw, ...)``: the dict that
        :func:`~multilevel.results.posterior.posterior_dataset` returns, or ``idata.posterior``.
    layout, family
        The model's parameter names and response family.
    design
        The design the model was fitted to (its rows are the rows replicated).
    seed
        Seed of the replicates' randomness.

    Returns
    -------
    numpy.ndarray
        Integers for a discrete family, floats otherwise; pass it to
        :func:`~multilevel.results.posterior.make_idata` as ``posterior_predictive``.
    """
    draws = design_draws(posterior, layout, family, design, kind="posterior_predictive",
                         new_groups="error", seed=seed)
    num_chains, num_draws = np.shape(posterior[next(iter(posterior))])[:2]
    return draws.reshape(num_chains, num_draws, draws.shape[-1])
