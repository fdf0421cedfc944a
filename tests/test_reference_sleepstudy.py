"""Reference test on the sleepstudy data: the library against an independent NumPyro run.

What is compared
----------------
``Reaction ~ Days + (Days | Subject)`` on the real sleepstudy data (18 subjects ×
10 days) with explicit proper priors: Intercept ~ Normal(250, 100), Days ~
Normal(0, 50), sigma and both group sds ~ HalfStudentT(3, 50) (a Student-t with 3
degrees of freedom folded at 0), and the 2 × 2 correlation ~ LKJ(2). The same
model is written by hand in NumPyro below (non-centred: ``u_j = diag(sd) L z_j``
with ``z_j ~ N(0, I)`` and ``L ~ LKJCholesky(2, 2)``, the Cholesky factor whose
correlation matrix ``L Lᵀ`` is LKJ(2)) and sampled by NumPyro's NUTS in float64;
nothing of the library is used for it. Every scalar parameter (Intercept, Days,
sigma, both sds, the correlation) and every group effect (``Intercept|Subject``
and ``Days|Subject``, deviations from the fixed effects, one per subject) is
compared.

Tolerance
---------
Both posterior means are Monte Carlo estimates of the same number, so

    |mean_ours − mean_ref| <= z · sqrt(mcse_ours² + mcse_ref²),

with ``mcse_ours`` the fit summary's ``mcse_mean`` and ``mcse_ref`` from
``arviz.mcse`` on the reference draws, and z = 4.58 the bound of
``agreement.z_limit`` for the 42 compared quantities (one test per scalar and
per group term, the bound shared over all of them): a correct sampler fails any
of them with probability < 1e-3. The MCSEs are only meaningful for converged
chains, so both runs must first have bulk ESS >= 400 and R-hat within the limit
for their ESS (``agreement.rhat_limit``; false alarm < 1e-3 over the 42) on every
compared quantity (observed: bulk ESS >= ~2700 ours, >= ~1900 for a reference of
4 × 2000 draws, so the floor is far below), and the reference must be essentially free of divergences
(at most 1 in 1000 draws: isolated ones in a non-centred model).

Run lengths and tiers
---------------------
The library fits 4 chains × 2000 draws (~10 s); its convergence is checked in the
default tier. The reference, 4 chains × 5000 draws (1000 warmup; ~40 s of NumPyro
compilation, then sampling), is in the slow tier: it was the heaviest single item
of the default run (4 × 2000 draws, ~50 s of its ~9 min), and the default tier
keeps the same model with the same priors in tests/test_collapsed_vs_nuts.py (the
collapsed sampler against NUTS, every mean and sd, group effects included), the
priors' densities against scipy (tests/test_priors.py) and an independent exact
posterior of a Gaussian model (tests/test_reference_cheese.py). Because the
reference's MCSE enters the tolerance, a shorter reference only makes the
comparison less sensitive (by about sqrt(1 + mcse_ref² / mcse_ours²)), never
flaky; at 4 × 2000 draws it had bulk ESS >= ~1900 on every quantity.
"""

from __future__ import annotations

import time
import warnings

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
import pytest
from numpyro.infer import MCMC, NUTS

import multilevel as ml
from agreement import assert_converged, z_limit

FORMULA = "Reaction ~ Days + (Days | Subject)"
PRIORS = {"Intercept": ml.Normal(250.0, 100.0), "b": ml.Normal(0.0, 50.0),
          "sigma": ml.HalfStudentT(3.0, 50.0), "sd": ml.HalfStudentT(3.0, 50.0), "cor": ml.LKJ(2.0)}
CHAINS, DRAWS, WARMUP, SEED = 4, 2000, 1000, 2

REF_WARMUP, REF_SEED = 1000, 0
#: The reference's draws per chain: slow tier only (see the module docstring).
REF_DRAWS = [pytest.param(5000, id="ref5000", marks=pytest.mark.slow)]

ESS_BULK_MIN = 400
#: At most this share of divergent reference draws (isolated ones in a non-centred model).
REF_DIVERGENT_MAX = 1e-3

#: Library name -> reference variable name (and, for group effects, column of u).
SCALARS = {"Intercept": "Intercept", "Days": "Days", "sigma": "sigma",
           "sd(Intercept|Subject)": "sd_Intercept", "sd(Days|Subject)": "sd_Days",
           "cor(Intercept,Days|Subject)": "cor"}
GROUP_TERMS = {"Intercept|Subject": 0, "Days|Subject": 1}


def subject_levels(data: pd.DataFrame) -> list[str]:
    return sorted(data["Subject"].astype(str).unique())


def compared_names(data: pd.DataFrame) -> list[str]:
    return [*SCALARS, *(f"{term}[{level}]" for term in GROUP_TERMS for level in subject_levels(data))]


# --------------------------------------------------------------------------------------
# The independent reference: the model written by hand in NumPyro


def _half_student_t():
    return dist.FoldedDistribution(dist.StudentT(3.0, 0.0, 50.0))


def sleepstudy_model(days, subject, num_subjects, reaction=None):
    intercept = numpyro.sample("Intercept", dist.Normal(250.0, 100.0))
    slope = numpyro.sample("Days", dist.Normal(0.0, 50.0))
    sigma = numpyro.sample("sigma", _half_student_t())
    sd_intercept = numpyro.sample("sd_Intercept", _half_student_t())
    sd_days = numpyro.sample("sd_Days", _half_student_t())
    chol = numpyro.sample("L", dist.LKJCholesky(2, 2.0))
    z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([num_subjects, 2]).to_event(2))
    u = (z @ chol.T) * jnp.stack([sd_intercept, sd_days])      # row j: diag(sd) L z_j
    numpyro.deterministic("u", u)
    numpyro.deterministic("cor", chol[1, 0])                     # (L Lᵀ)[0, 1], as L[0, 0] = 1
    mu = intercept + u[subject, 0] + (slope + u[subject, 1]) * days
    numpyro.sample("Reaction", dist.Normal(mu, sigma), obs=reaction)


def run_reference(data: pd.DataFrame, draws: int) -> tuple[pd.DataFrame, int, float]:
    """Sample the NumPyro model; return ``(table, divergent, seconds)``.

    ``table`` has one row per compared name (library naming) with the reference
    ``mean``, ``mcse_mean`` (``arviz.mcse``), ``ess_bulk`` and ``r_hat``.
    """
    levels = subject_levels(data)
    subject = np.searchsorted(levels, data["Subject"].astype(str).to_numpy())
    with jax.enable_x64(True):
        start = time.perf_counter()
        mcmc = MCMC(NUTS(sleepstudy_model, target_accept_prob=0.9), num_warmup=REF_WARMUP,
                    num_samples=draws, num_chains=CHAINS, chain_method="vectorized", progress_bar=False)
        mcmc.run(jax.random.PRNGKey(REF_SEED), jnp.asarray(data["Days"].to_numpy(float)),
                 jnp.asarray(subject), len(levels), jnp.asarray(data["Reaction"].to_numpy(float)))
        seconds = time.perf_counter() - start
        samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
        divergent = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    by_name = {name: samples[ref] for name, ref in SCALARS.items()}
    for term, column in GROUP_TERMS.items():
        for j, level in enumerate(levels):
            by_name[f"{term}[{level}]"] = samples["u"][:, :, j, column]
    table = pd.DataFrame.from_dict(
        {name: {"mean": x.mean(), "mcse_mean": float(az.mcse(x)),
                "ess_bulk": float(az.ess(x, method="bulk")), "r_hat": float(az.rhat(x))}
         for name, x in by_name.items()}, orient="index")
    return table, divergent, seconds


@pytest.fixture(scope="session")
def reference(sleepstudy):
    """``reference(draws)``: the NumPyro run of 4 chains × ``draws``, run once per session."""
    cache: dict = {}

    def get(draws: int):
        if draws not in cache:
            cache[draws] = run_reference(sleepstudy, draws)
        return cache[draws]

    return get


# --------------------------------------------------------------------------------------
# The library's fit


@pytest.fixture(scope="module")
def ours(sleepstudy):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.ConvergenceWarning)    # judged by the tests below
        fit = ml.fit(FORMULA, sleepstudy, priors=PRIORS, chains=CHAINS, draws=DRAWS, warmup=WARMUP,
                     seed=SEED, progress=False)
    return fit, time.perf_counter() - start


def test_group_effects_are_named_by_subject(ours, sleepstudy):
    fit, _ = ours
    for term in GROUP_TERMS:
        assert list(fit.idata.posterior[term].coords["Subject"].values) == subject_levels(sleepstudy)


def test_our_fit_is_converged(ours, sleepstudy):
    fit, seconds = ours
    table = fit.summary().loc[compared_names(sleepstudy)]
    assert_converged(table, CHAINS, ESS_BULK_MIN, what=f"our fit ({fit.num_divergent} divergences, {seconds:.0f} s)")


@pytest.mark.parametrize("ref_draws", REF_DRAWS)
def test_reference_run_is_converged(reference, ref_draws):
    table, divergent, seconds = reference(ref_draws)
    assert divergent <= REF_DIVERGENT_MAX * CHAINS * ref_draws, f"{divergent} divergent reference draws"
    assert_converged(table, CHAINS, ESS_BULK_MIN, what=f"reference ({divergent} divergences, {seconds:.0f} s)")


@pytest.mark.parametrize("ref_draws", REF_DRAWS)
@pytest.mark.parametrize("name", [*SCALARS, *GROUP_TERMS])
def test_posterior_means_match_the_reference_within_mcse(ours, reference, sleepstudy, ref_draws, name):
    """One test per scalar parameter, and one per group term covering all its subjects;
    the z bound is shared over all compared quantities."""
    fit, _ = ours
    ref, _, _ = reference(ref_draws)
    names = [name] if name in SCALARS else [f"{name}[{level}]" for level in subject_levels(sleepstudy)]
    table = fit.summary().loc[names]
    error = (table["mean"] - ref.loc[names, "mean"]).abs()
    scale = np.sqrt(table["mcse_mean"] ** 2 + ref.loc[names, "mcse_mean"] ** 2)
    z = error / scale
    limit = z_limit(len(compared_names(sleepstudy)), two_fits=True)
    report = pd.DataFrame({"ours": table["mean"], "reference": ref.loc[names, "mean"],
                           "mcse_ours": table["mcse_mean"], "mcse_ref": ref.loc[names, "mcse_mean"],
                           "z": z})
    print(f"{name}: max z {z.max():.2f}, limit {limit:.2f}")
    assert (z <= limit).all(), f"differences beyond {limit:.2f} combined MCSE:\n{report[~(z <= limit)].to_string()}"
