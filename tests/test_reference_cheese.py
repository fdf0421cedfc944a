"""Reference tests on the cheese data: an exact posterior for model 1, and the
convergence bar on all four models.

What is compared
----------------
Cheese model 1, ``y ~ 1 + cheese_A + cheese_B + cheese_C + cheese_D + (1 | background)``
with the priors of ``ml.datasets.cheese_priors(data, 1)``, has an exact
posterior up to a two-dimensional integral. Given ``(sigma, sd)`` the seven
remaining parameters ``theta`` (Intercept, the four cheese coefficients, the
rural and urban effects) are a priori Gaussian, ``theta ~ N(m0, S0)`` with
``S0 = diag((2.5 s_y)², 2², 2², 2², 2², sd², sd²)``, and ``y | theta ~ N(X theta,
sigma² I)``. Hence

    p(sigma, sd | y)  ∝  p(sigma) p(sd) N(y | X m0, X S0 Xᵀ + sigma² I),

computed below in numpy/scipy (independently of the library, through the
Woodbury identity with ``A = S0⁻¹ + XᵀX / sigma²``) on a 400 × 400 grid in
``(log sigma, log sd)`` with the Jacobian ``sigma · sd``; ``theta | sigma, sd, y``
is ``N(m0 + A⁻¹Xᵀ(y − X m0)/sigma², A⁻¹)``, and the laws of total expectation and
total variance over the grid give the exact posterior mean and sd of every
parameter. The design is rank deficient (Intercept = sum of the indicators):
the priors alone identify the redundant direction, exactly as in the fit.
``test_exact_reference_*`` check the reference itself: the grid holds the
posterior mass (the sd posterior decays only like sd⁻⁴, so its log range
reaches sd = 1e5 and the tail beyond is bounded by extrapolating the edge
decay), and halving the grid resolution changes no moment.

Tolerances
----------
The reference is exact to ~1e-6, so every error is the fit's Monte Carlo error
alone, and each family of comparisons below is bounded by ``agreement.z_limit``
(false alarm < 1e-3 for a correct sampler over the family; the draws differ
between machines, so nothing relies on the seed).

* Posterior means: within z = 4.44 Monte Carlo standard errors (``mcse_mean``
  of the fit's summary) of the exact mean, for the 9 parameters.
* Posterior sds of the 8 parameters with a finite fourth moment: within z = 4.4
  standard errors of the exact sd. The standard error of a sample sd is
  ``sqrt((μ₄ − σ⁴) / N) / (2σ)``: the Intercept and the two background effects
  are scale mixtures over the heavy-tailed group sd (kurtosis well above 3), for
  which the *estimated* ``mcse_sd`` is too often too small (simulated with iid
  draws from the exact posterior: |z| > 4 in ~9e-4 of runs; t₃₀ allows 3.8e-4). So
  the error used is the larger of the fit's ``mcse_sd`` and this formula with the
  exact ``μ₄`` of the grid and N the fit's bulk ESS (with which the same
  simulation gives |z| > 4 in 1.3e-4 of runs, within t₃₀'s rate).
* The group sd: its posterior tail ~ sd⁻⁴ has no fourth moment, so its sample sd
  has no finite Monte Carlo variance (in the same simulation at N = 3400 it is off
  by more than 35% in 3% of runs, mostly above). Its mean is compared with the
  others; its spread is compared on the log scale, where every moment is finite:
  the mean and sd of ``log sd(Intercept|background)`` within z = 3.9 MCSEs of the
  exact ones.
* The convergence bar (all four models, 4 chains × 2000 draws, default
  settings): every parameter including group effects has bulk ESS >= 400 and
  rank-normalised split R-hat <= 1.01, or, where the ESS is too small for 1.01
  to be a reliable bar, within the limit for its ESS (``agreement.rhat_limit``:
  false alarm < 1e-3 over the model's parameters; observed, every bulk ESS is above
  4800, NUTS's above 3400, where that limit is 1.01 itself); divergent transitions
  are either absent or announced by a ``ml.ConvergenceWarning``.

Fits use the library's default sampler (``sampler`` not passed). The same
comparisons with ``sampler="nuts"`` forced are in the slow tier.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import multilevel as ml
from agreement import assert_converged, assert_within_mcse

CHAINS, DRAWS, WARMUP, SEED = 4, 2000, 1000, 1

#: The convergence bar: bulk ESS floor (R-hat: ``agreement.rhat_limit``).
ESS_BULK_MIN = 400

#: Grid of the exact posterior: log sigma and log sd (sd's heavy tail needs the wide range).
LOG_SIGMA = np.linspace(np.log(4.0), np.log(14.0), 400)
LOG_SD = np.linspace(np.log(0.01), np.log(1e5), 400)

#: theta's order in the exact computation, by the library's summary row names.
THETA_NAMES = ("Intercept", "cheese_A", "cheese_B", "cheese_C", "cheese_D",
               "Intercept|background[rural]", "Intercept|background[urban]")
SIGMA, GROUP_SD = "sigma", "sd(Intercept|background)"
LOG_GROUP_SD = f"log {GROUP_SD}"
MODEL1_PARAMETERS = (*THETA_NAMES[:5], SIGMA, GROUP_SD, *THETA_NAMES[5:])
#: The parameters whose posterior has a finite fourth moment (all but the group sd).
FINITE_KURTOSIS = tuple(name for name in MODEL1_PARAMETERS if name != GROUP_SD)

#: Samplers the exact comparison runs with: the default one, and NUTS forced (slow tier).
SAMPLERS = [pytest.param(None, id="default"),
            pytest.param("nuts", id="nuts", marks=pytest.mark.slow)]


# --------------------------------------------------------------------------------------
# The exact posterior of model 1, in numpy/scipy only


@dataclass(frozen=True)
class ExactGrid:
    """Normalised posterior weights of grid cells, and theta's conditional moments there."""

    sigma: np.ndarray        # (S,)
    sd: np.ndarray           # (D,)
    weight: np.ndarray       # (S, D), sums to 1: p(log sigma, log sd | y) · cell area
    cond_mean: np.ndarray    # (S, D, 7) E[theta | sigma, sd, y]
    cond_var: np.ndarray     # (S, D, 7) Var[theta_i | sigma, sd, y]

    def moments(self, step: int = 1) -> dict[str, tuple[float, float]]:
        """Posterior (mean, sd) of every parameter and of ``log sd``, using every
        ``step``-th grid node."""
        return {name: (mean, sd) for name, (mean, sd, _) in self._moments(step).items()}

    def fourth_central_moments(self) -> dict[str, float]:
        """Posterior E[(x - mean)⁴] of every parameter but the group sd (whose is infinite)."""
        return {name: m4 for name, (_, _, m4) in self._moments(1).items() if name in FINITE_KURTOSIS}

    def _moments(self, step: int) -> dict[str, tuple[float, float, float]]:
        w = self.weight[::step, ::step]
        w = w / w.sum()
        sigma, sd = np.meshgrid(self.sigma[::step], self.sd[::step], indexing="ij")
        out = {}
        for name, x in ((SIGMA, sigma), (GROUP_SD, sd), (LOG_GROUP_SD, np.log(sd))):
            mean = np.sum(w * x)
            out[name] = (mean, np.sqrt(np.sum(w * (x - mean) ** 2)), np.sum(w * (x - mean) ** 4))
        m = self.cond_mean[::step, ::step]
        v = self.cond_var[::step, ::step]
        mean = np.einsum("sd,sdi->i", w, m)
        d = m - mean
        var = np.einsum("sd,sdi->i", w, v + d ** 2)   # total variance
        m4 = np.einsum("sd,sdi->i", w, d ** 4 + 6 * d ** 2 * v + 3 * v ** 2)   # of a mixture of normals
        for i, name in enumerate(THETA_NAMES):
            out[name] = (mean[i], np.sqrt(var[i]), m4[i])
        return out


def exact_model1(data: pd.DataFrame, log_sigma: np.ndarray = LOG_SIGMA,
                 log_sd: np.ndarray = LOG_SD) -> ExactGrid:
    """The exact posterior of cheese model 1 on a (log sigma, log sd) grid.

    Priors (``cheese_priors(data, 1)``, restated here): Intercept ~ N(ȳ, (2.5 s_y)²),
    cheese coefficients ~ N(0, 2²), background effects ~ N(0, sd²),
    sigma ~ Exponential(rate 1/s_y), sd ~ HalfCauchy(2).
    """
    y = data["y"].to_numpy(float)
    n = y.size
    X = np.column_stack([np.ones(n)] + [data[f"cheese_{c}"].to_numpy(float) for c in "ABCD"]
                        + [(data["background"] == b).to_numpy(float) for b in ("rural", "urban")])
    ybar, s_y = y.mean(), y.std(ddof=1)
    m0 = np.array([ybar, 0, 0, 0, 0, 0, 0], dtype=float)
    r = y - X @ m0
    XtX, Xtr, rtr = X.T @ X, X.T @ r, r @ r

    U, V = np.meshgrid(log_sigma, log_sd, indexing="ij")
    sigma, sd = np.exp(U).ravel(), np.exp(V).ravel()
    k = sigma.size
    prior_var = np.empty((k, 7))
    prior_var[:, 0] = (2.5 * s_y) ** 2
    prior_var[:, 1:5] = 2.0 ** 2
    prior_var[:, 5:] = sd[:, None] ** 2

    # A = S0^-1 + XᵀX / sigma²: the conditional posterior precision of theta.
    A = XtX[None] / sigma[:, None, None] ** 2
    A[:, np.arange(7), np.arange(7)] += 1.0 / prior_var
    A_inv = np.linalg.inv(A)
    logdet_A = 2.0 * np.log(np.diagonal(np.linalg.cholesky(A), axis1=1, axis2=2)).sum(axis=1)
    b = Xtr[None] / sigma[:, None] ** 2
    A_inv_b = np.einsum("kij,kj->ki", A_inv, b)

    # log N(y | X m0, X S0 Xᵀ + sigma² I) by Woodbury and the matrix determinant lemma.
    quad = rtr / sigma ** 2 - np.einsum("ki,ki->k", b, A_inv_b)
    logdet = 2 * n * np.log(sigma) + np.log(prior_var).sum(axis=1) + logdet_A
    log_marginal = -0.5 * (n * np.log(2 * np.pi) + logdet + quad)

    log_post = (log_marginal
                + stats.expon(scale=s_y).logpdf(sigma) + np.log(sigma)      # + log Jacobian
                + stats.halfcauchy(scale=2.0).logpdf(sd) + np.log(sd))
    weight = np.exp(log_post - log_post.max())
    weight /= weight.sum()

    shape = U.shape
    return ExactGrid(
        sigma=np.exp(log_sigma), sd=np.exp(log_sd), weight=weight.reshape(shape),
        cond_mean=(m0 + A_inv_b).reshape(*shape, 7),
        cond_var=np.diagonal(A_inv, axis1=1, axis2=2).reshape(*shape, 7),
    )


@pytest.fixture(scope="module")
def exact(cheese) -> ExactGrid:
    return exact_model1(cheese)


# --------------------------------------------------------------------------------------
# Fits, each run once per module


@dataclass(frozen=True)
class CheeseFit:
    fit: ml.Fit
    caught: list
    seconds: float


@pytest.fixture(scope="module")
def cheese_fit(cheese):
    """``cheese_fit(model, sampler)``: a fit of a cheese model, 4 chains × 2000 draws, cached."""
    cache: dict = {}

    def get(model: int, sampler: str | None = None) -> CheeseFit:
        if (model, sampler) not in cache:
            options = {} if sampler is None else {"sampler": sampler}
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                fit = ml.fit(ml.datasets.CHEESE_MODELS[model][1], cheese,
                             priors=ml.datasets.cheese_priors(cheese, model), chains=CHAINS,
                             draws=DRAWS, warmup=WARMUP, seed=SEED, progress=False, **options)
            cache[model, sampler] = CheeseFit(fit, list(caught), time.perf_counter() - start)
        return cache[model, sampler]

    return get


# --------------------------------------------------------------------------------------
# The reference itself


@pytest.mark.unit
def test_exact_reference_uses_the_priors_of_cheese_model_1(cheese):
    ybar, s_y = cheese["y"].mean(), cheese["y"].std(ddof=1)
    priors = ml.datasets.cheese_priors(cheese, 1)
    assert set(priors) == {"Intercept", "b", "sigma", "sd"}
    assert isinstance(priors["Intercept"], ml.Normal)
    assert (priors["Intercept"].mean, priors["Intercept"].sd) == pytest.approx((ybar, 2.5 * s_y), rel=1e-12)
    assert priors["b"] == ml.Normal(0.0, 2.0)
    assert isinstance(priors["sigma"], ml.Exponential)
    assert priors["sigma"].rate == pytest.approx(1.0 / s_y, rel=1e-12)
    assert priors["sd"] == ml.HalfCauchy(2.0)


@pytest.mark.unit
def test_exact_reference_grid_holds_the_posterior_mass(exact):
    sigma_mass = exact.weight.sum(axis=1)
    sd_mass = exact.weight.sum(axis=0)
    assert sigma_mass[0] < 1e-12 and sigma_mass[-1] < 1e-12
    assert sd_mass[0] < 1e-8
    # Beyond the top of the grid the sd density decays as a power law; extrapolating
    # the decay of the last cells bounds the missing share of E[sd^k], k = 0, 1, 2.
    dv = np.log(exact.sd[1] / exact.sd[0])
    rate = np.log(sd_mass[-2] / sd_mass[-1]) / dv          # sd_mass ∝ exp(-rate · log sd)
    for k in (0, 1, 2):
        assert rate > k + 0.5, f"the sd posterior decays too slowly for its {k}-th moment"
        tail = sd_mass[-1] / ((rate - k) * dv)              # ∫ beyond the grid, relative to sd_max^k
        moment = np.sum(sd_mass * exact.sd ** k) / exact.sd[-1] ** k
        assert tail / moment < 1e-3, f"the grid misses {tail / moment:.1e} of E[sd^{k}]"


@pytest.mark.unit
def test_exact_reference_is_resolved_by_the_grid(exact):
    fine, coarse = exact.moments(), exact.moments(step=2)
    for name in (*MODEL1_PARAMETERS, LOG_GROUP_SD):
        assert coarse[name] == pytest.approx(fine[name], rel=1e-4, abs=1e-6), name


# --------------------------------------------------------------------------------------
# Model 1 against the exact posterior


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_model1_posterior_means_are_exact_within_mcse(cheese_fit, exact, sampler):
    table = cheese_fit(1, sampler).fit.summary().loc[list(MODEL1_PARAMETERS)]
    moments = exact.moments()
    exact_mean = pd.Series({name: moments[name][0] for name in MODEL1_PARAMETERS})
    assert_within_mcse(table["mean"], exact_mean, table["mcse_mean"], what="posterior means")


def sd_standard_error(sd: float, fourth_moment: float, ess: float) -> float:
    """The standard error of the sample sd of ``ess`` independent draws (delta method)."""
    return float(np.sqrt((fourth_moment - sd ** 4) / ess) / (2 * sd))


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_model1_posterior_sds_are_exact_within_mcse(cheese_fit, exact, sampler):
    """All parameters but the group sd (see the next test); the error is the larger of the
    fit's ``mcse_sd`` and the exact standard error at the fit's bulk ESS."""
    table = cheese_fit(1, sampler).fit.summary().loc[list(FINITE_KURTOSIS)]
    moments, fourth = exact.moments(), exact.fourth_central_moments()
    exact_sd = pd.Series({name: moments[name][1] for name in FINITE_KURTOSIS})
    floor = pd.Series({name: sd_standard_error(exact_sd[name], fourth[name], table.loc[name, "ess_bulk"])
                       for name in FINITE_KURTOSIS})
    assert_within_mcse(table["sd"], exact_sd, np.maximum(table["mcse_sd"], floor), what="posterior sds")


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_model1_log_group_sd_has_the_exact_mean_and_sd(cheese_fit, exact, sampler):
    draws = np.log(cheese_fit(1, sampler).fit.idata.posterior[GROUP_SD].values)     # (chain, draw)
    mean, sd = exact.moments()[LOG_GROUP_SD]
    estimate = pd.Series({"mean": draws.mean(), "sd": draws.std(ddof=1)})
    mcse = pd.Series({"mean": float(az.mcse(draws)), "sd": float(az.mcse(draws, method="sd"))})
    assert_within_mcse(estimate, pd.Series({"mean": mean, "sd": sd}), mcse, what=LOG_GROUP_SD)


# --------------------------------------------------------------------------------------
# The convergence bar on the four models


def _check_convergence_bar(result: CheeseFit, label: str) -> None:
    fit = result.fit
    table = fit.summary()
    divergent_warned = any(issubclass(w.category, ml.ConvergenceWarning)
                           and "divergent transitions" in str(w.message) for w in result.caught)
    report = f"{label}: {fit.num_divergent} divergences, {result.seconds:.0f} s"
    assert_converged(table, CHAINS, ESS_BULK_MIN, what=report)
    assert fit.num_divergent == 0 or divergent_warned, (
        f"{fit.num_divergent} divergent transitions and no ConvergenceWarning about them [{report}]")


@pytest.mark.parametrize("model", sorted(ml.datasets.CHEESE_MODELS))
def test_cheese_model_meets_the_convergence_bar(cheese_fit, model):
    _check_convergence_bar(cheese_fit(model), f"model {model}")


@pytest.mark.slow
def test_cheese_model_1_meets_the_convergence_bar_with_nuts(cheese_fit):
    _check_convergence_bar(cheese_fit(1, "nuts"), "model 1, NUTS")
