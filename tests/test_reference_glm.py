"""Reference checks of the non-Gaussian families on two classic lme4 examples.

The models
----------
* **cbpp** (binomial): ``cbind(incidence, size - incidence) ~ C(period) + (1 | herd)``,
  56 rows, 15 herds. ``period`` is stored as the integers 1-4; ``C()`` makes it the
  factor lme4's ``cbpp`` has (treatment contrasts, level 1 the baseline).
* **grouseticks** (Poisson): ``TICKS ~ C(YEAR) + scale(HEIGHT) + (1 | BROOD) +
  (1 | INDEX) + (1 | LOCATION)``, 403 chicks (INDEX, one row each: an
  observation-level effect), 118 broods, 63 locations; YEAR (95, 96, 97) as a factor.

Both with the same vague-ish priors: ``Intercept, b ~ Normal(0, 10)`` (on the
logit and log scales, wide), every sd ~ ``HalfStudentT(3, 2.5)``.

What is checked
---------------
(a) *Convergence* of our fit (default sampler: NUTS on the full model): bulk
    ESS >= 400 and R-hat within the limit for its ESS (``agreement.rhat_limit``,
    false alarm < 1e-3 over the fixed effects and sds) on every fixed effect and
    sd, and divergent transitions in at most ``MAX_DIVERGENT_SHARE`` = 0.2% of
    the draws (cbpp: none; grouseticks: 0-11 of 12000, isolated ones at small
    sds, which part (b) shows bias nothing detectably; were they Poisson with
    mean 11, more than 24 would have probability 2e-4).
(b) *Agreement with an independent run*: the model is written by hand in
    NumPyro below (nothing of the library is used) and sampled by NumPyro's NUTS
    in float64. Every posterior mean and sd (fixed effects, sds, every group
    effect) must agree within ``z`` combined Monte Carlo standard errors, ``z``
    the bound of ``agreement.z_limit`` over the ``2m`` compared numbers (false
    alarm < 1e-3 in all: z = 4.6 for cbpp's 20 quantities, 5.5 for
    grouseticks' 591), after both runs pass the convergence bar (the MCSEs
    mean nothing otherwise).
(c) *Closeness to lme4's glmer* (Laplace maximum likelihood): the posterior
    median of every fixed effect and sd lies within ``GLMER_TOL = 0.5``
    posterior sds of glmer's estimate. With priors this vague the posterior
    mode of the fixed effects is close to the maximum likelihood estimate, and
    the median of a nearly Gaussian marginal is close to its mode (the
    observed gaps are <= 0.1 sd). For the sds the median sits above the ML
    estimate for two reasons that do not vanish with more draws: the
    marginal posterior of an sd is right-skewed (median above mode) and it
    integrates over the fixed effects, which like REML inflates the sd
    relative to ML (cbpp: 15 herds, median 0.727 vs glmer 0.642, 0.37 sd).
    Half a posterior sd allows that and still catches a wrong scale (sd vs
    variance), link, contrast or missing term, each of which moves an
    estimate by several posterior sds. The MCSE of the medians is ~0.02
    posterior sd, so the largest observed gap (0.37) is ~6 MCSEs inside the
    tolerance: a false alarm below 1e-8 for a correct sampler.

glmer's estimates (sources)
---------------------------
* cbpp: lme4's own example (``?cbpp``, ``glmer(cbind(incidence, size -
  incidence) ~ period + (1 | herd), family = binomial)``), as printed on the
  lme4 reference pages (GitHub ``lme4/lme4``, ``docs/reference/``, pkgdown
  build of lme4 1.1-37.9000; recorded in ../shared/data/SOURCES.md): fixed
  effects -1.3983, -0.9919, -1.1282, -1.5797; herd sd 0.6421.
* grouseticks: lme4's test ``tests/elston.R`` (GitHub ``lme4/lme4``, commit
  09a2476c), the stored glmer fit of ``TICKS ~ YEAR + HEIGHT + (1|BROOD) +
  (1|INDEX) + (1|LOCATION)``, Poisson: (Intercept) 11.35591, YEAR96 1.18041,
  YEAR97 -0.97870, HEIGHT -0.0237607; variances INDEX 0.293232, BROOD
  0.562552, LOCATION 0.279548 (theta = sds 0.54151, 0.75003, 0.52872;
  logLik -424.772). This is the model of Elston et al. (2001) that Bolker's
  worked example fits. The fit is on raw HEIGHT; the ML estimate is
  equivariant under the affine change to ``scale(HEIGHT) = (HEIGHT - m) / s``
  (m = 462.24, s = 35.956, the sample mean and sd, ddof 1, as R's
  ``scale``), so the slope becomes ``-0.0237607 s = -0.85435`` and the
  intercept ``11.35591 - 0.0237607 m = 0.37273``; the sds do not change.

Sampler settings
----------------
cbpp fits with the defaults (4 chains × 2000 draws, in seconds). grouseticks is
a hard posterior: most locations hold a single brood, so the BROOD and
LOCATION sds trade off, and the INDEX effects are pinned by one count each.
It fits with the automatic choice of parameterisation and
``target_accept=0.95``. The pilot's sd² × information (the median over levels,
the other terms integrated out: ``multilevel/inference/centering.py``) is about
2.0 for BROOD, 0.55 for INDEX and 0.3 for LOCATION, whose rows inform brood +
location: BROOD alone is centred, around its location's total
(``multilevel/model/hierarchy.py``).

Measured (4 × 3000 draws after 1000 warmup, seed 3; min bulk ESS over the fixed
effects and sds, always on sd(Intercept|LOCATION); wall time on 2 shared cores):

    centred terms                       accept  R-hat  min ESS  divergent  wall s
    before: BROOD, LOCATION (on b0)      0.95   1.016    285        0        61
    before: BROOD, LOCATION (on b0)      0.8    1.006    209        0        51
    after: BROOD (automatic)             0.95   1.001    933        0        56
    after: BROOD (automatic)             0.9    1.003    783        0        36
    after: BROOD (automatic)             0.8    1.002    857       25        57
    after: BROOD, INDEX                  0.95   1.002    809        0        39
    after: BROOD, INDEX                  0.8    1.007    805        1        48
    after: INDEX                         0.95   1.003    945       65        63
    after: none                          0.95   1.003    901        1        80

At the default ``target_accept`` 0.8 the automatic choice diverges in 0.05-0.2%
of the draws (seeds 3-5: 25, 11, 6 of 12000; seed 3's all where the BROOD sd is
in its lower tail, 0.43-0.72, and the LOCATION sd in its upper one): there the broods
are weakly informed and their centred form is a funnel; no single
parameterisation suits the whole posterior. Before the nested centring, the
explicit choice this test made then (INDEX centred on the Intercept, BROOD and
LOCATION non-centred) left the Intercept at bulk ESS 178 of 12000. The reference samples its own
parameterisation (INDEX centred, BROOD and LOCATION non-centred), written
independently. All grouseticks runs are in the slow tier.

Tiers and run times (2 cores shared with other work): default tier, cbpp
only, our fit (~10 s) for (a) and (c); the NumPyro references are in the slow
tier (the default run's cbpp reference of 4 × 2000 draws, ~20 s, moved there: the
default tier keeps tests/test_families.py's agreement of bernoulli and poisson
fits with hand-written NumPyro, and its check of the binomial likelihood against
scipy). Slow tier 2.5 min on 2 quiet cores: cbpp against 4 × 10000 reference draws
(10 s), grouseticks (ours 4 × 3000 draws, 22 s, bulk ESS >= 790 on every fixed
effect and sd, 0-1 divergence; reference 4 × 5000, 2 min, bulk ESS >= 1800).
Observed: cbpp means within 1.1 and sds within 2.7 MCSE of the long reference
(bound 4.57); grouseticks (591 quantities, bound 5.49) within 3.1 and 3.1;
medians within 0.1 posterior sd of glmer for the fixed effects, 0.37 (cbpp herd)
and 0.36 (grouseticks BROOD) for the sds.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

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
from conftest import read_shared

PRIORS = {"Intercept": ml.Normal(0.0, 10.0), "b": ml.Normal(0.0, 10.0), "sd": ml.HalfStudentT(3.0, 2.5)}
CHAINS = 4
ESS_BULK_MIN = 400
#: Share of divergent draws allowed, in our fits and in the reference runs.
MAX_DIVERGENT_SHARE = 2e-3
#: Posterior median within this many posterior sds of glmer's estimate.
GLMER_TOL = 0.5


@dataclass(frozen=True)
class Case:
    name: str
    file: str
    formula: str
    family: str
    #: Fixed effects and sds: library name -> reference variable name.
    scalars: dict
    #: Group effect variable -> (grouping column, reference variable name).
    groups: dict
    glmer: dict
    draws: int
    warmup: int = 1000
    fit_options: dict = field(default_factory=dict)
    ref_target_accept: float = 0.8


CBPP = Case(
    name="cbpp", file="cbpp.csv", family="binomial",
    formula="cbind(incidence, size - incidence) ~ C(period) + (1 | herd)",
    scalars={"Intercept": "Intercept", "C(period)[2]": "period2", "C(period)[3]": "period3",
             "C(period)[4]": "period4", "sd(Intercept|herd)": "sd_herd"},
    groups={"Intercept|herd": ("herd", "u_herd")},
    glmer={"Intercept": -1.3983, "C(period)[2]": -0.9919, "C(period)[3]": -1.1282,
           "C(period)[4]": -1.5797, "sd(Intercept|herd)": 0.6421},
    draws=2000,
)

_HEIGHT_MEAN, _HEIGHT_SD, _GLMER_HEIGHT = 462.2406947890819, 35.956498475249845, -0.0237607330254979
GROUSETICKS = Case(
    name="grouseticks", file="grouseticks.csv", family="poisson",
    formula="TICKS ~ C(YEAR) + scale(HEIGHT) + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
    scalars={"Intercept": "Intercept", "C(YEAR)[96]": "year96", "C(YEAR)[97]": "year97",
             "scale(HEIGHT)": "height", "sd(Intercept|BROOD)": "sd_brood",
             "sd(Intercept|INDEX)": "sd_index", "sd(Intercept|LOCATION)": "sd_location"},
    groups={"Intercept|BROOD": ("BROOD", "u_brood"), "Intercept|INDEX": ("INDEX", "u_index"),
            "Intercept|LOCATION": ("LOCATION", "u_location")},
    glmer={"Intercept": 11.3559080756861 + _GLMER_HEIGHT * _HEIGHT_MEAN,
           "C(YEAR)[96]": 1.1804105508475, "C(YEAR)[97]": -0.978704335712111,
           "scale(HEIGHT)": _GLMER_HEIGHT * _HEIGHT_SD,
           "sd(Intercept|BROOD)": 0.750034415832756, "sd(Intercept|INDEX)": 0.541509425632023,
           "sd(Intercept|LOCATION)": 0.528723159081737},
    draws=3000,
    fit_options={"target_accept": 0.95},
    ref_target_accept=0.95,
)

CASES = [pytest.param(CBPP, id="cbpp"), pytest.param(GROUSETICKS, id="grouseticks", marks=pytest.mark.slow)]
#: (case, reference draws per chain): all in the slow tier (see "Tiers" above).
REF_RUNS = [pytest.param(CBPP, 10000, id="cbpp-ref10000", marks=pytest.mark.slow),
            pytest.param(GROUSETICKS, 5000, id="grouseticks-ref5000", marks=pytest.mark.slow)]
REF_WARMUP, REF_SEED, SEED = 1000, 0, 3


# --------------------------------------------------------------------------------------
# The independent references: the models written by hand in NumPyro


def _half_student_t():
    return dist.FoldedDistribution(dist.StudentT(3.0, 0.0, 2.5))


def _codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Level of each row as 0 ... k-1, and the levels (sorted numerically)."""
    levels = np.sort(column.unique())
    return np.searchsorted(levels, column.to_numpy()), levels


def cbpp_model(period, herd, num_herds, size, incidence=None):
    intercept = numpyro.sample("Intercept", dist.Normal(0.0, 10.0))
    slopes = jnp.stack([numpyro.sample(f"period{k}", dist.Normal(0.0, 10.0)) for k in (2, 3, 4)])
    sd = numpyro.sample("sd_herd", _half_student_t())
    z = numpyro.sample("z_herd", dist.Normal(0.0, 1.0).expand([num_herds]).to_event(1))
    u = numpyro.deterministic("u_herd", sd * z)
    effect = jnp.concatenate([jnp.zeros(1), slopes])[period - 1]       # period 1 is the baseline
    logits = intercept + effect + u[herd]
    numpyro.sample("incidence", dist.BinomialLogits(logits, total_count=size), obs=incidence)


def cbpp_args(data: pd.DataFrame) -> tuple[tuple, dict]:
    herd, herds = _codes(data["herd"])
    args = (jnp.asarray(data["period"].to_numpy()), jnp.asarray(herd), len(herds),
            jnp.asarray(data["size"].to_numpy(float)), jnp.asarray(data["incidence"].to_numpy(float)))
    return args, {"herd": herds}


def grouseticks_model(year, height, brood, location, num_broods, num_locations, ticks=None):
    """INDEX (one per row) centred; BROOD and LOCATION non-centred."""
    intercept = numpyro.sample("Intercept", dist.Normal(0.0, 10.0))
    year96 = numpyro.sample("year96", dist.Normal(0.0, 10.0))
    year97 = numpyro.sample("year97", dist.Normal(0.0, 10.0))
    slope = numpyro.sample("height", dist.Normal(0.0, 10.0))
    sd_brood = numpyro.sample("sd_brood", _half_student_t())
    sd_index = numpyro.sample("sd_index", _half_student_t())
    sd_location = numpyro.sample("sd_location", _half_student_t())
    z_brood = numpyro.sample("z_brood", dist.Normal(0.0, 1.0).expand([num_broods]).to_event(1))
    z_location = numpyro.sample("z_location", dist.Normal(0.0, 1.0).expand([num_locations]).to_event(1))
    u_index = numpyro.sample("u_index", dist.Normal(0.0, sd_index).expand([year.shape[0]]).to_event(1))
    u_brood = numpyro.deterministic("u_brood", sd_brood * z_brood)
    u_location = numpyro.deterministic("u_location", sd_location * z_location)
    log_rate = (intercept + year96 * (year == 96) + year97 * (year == 97) + slope * height
                + u_brood[brood] + u_location[location] + u_index)
    numpyro.sample("ticks", dist.Poisson(jnp.exp(log_rate)), obs=ticks)


def grouseticks_args(data: pd.DataFrame) -> tuple[tuple, dict]:
    height = data["HEIGHT"].to_numpy(float)
    brood, broods = _codes(data["BROOD"])
    location, locations = _codes(data["LOCATION"])
    args = (jnp.asarray(data["YEAR"].to_numpy()), jnp.asarray((height - height.mean()) / height.std(ddof=1)),
            jnp.asarray(brood), jnp.asarray(location), len(broods), len(locations),
            jnp.asarray(data["TICKS"].to_numpy(float)))
    # INDEX is the row: its effects are in row order, and the rows are sorted by INDEX
    assert (np.diff(data["INDEX"].to_numpy()) > 0).all()
    return args, {"BROOD": broods, "LOCATION": locations, "INDEX": data["INDEX"].to_numpy()}


REFERENCE_MODELS = {"cbpp": (cbpp_model, cbpp_args), "grouseticks": (grouseticks_model, grouseticks_args)}


def run_reference(case: Case, data: pd.DataFrame, draws: int) -> tuple[pd.DataFrame, int, float]:
    """Sample the hand-written model; return ``(table, divergent, seconds)``.

    ``table`` has one row per compared name (library naming) with the reference
    ``mean``, ``sd``, ``mcse_mean``, ``mcse_sd``, ``ess_bulk`` and ``r_hat``.
    """
    model, make_args = REFERENCE_MODELS[case.name]
    args, levels = make_args(data)
    with jax.enable_x64(True):
        start = time.perf_counter()
        mcmc = MCMC(NUTS(model, target_accept_prob=case.ref_target_accept), num_warmup=REF_WARMUP,
                    num_samples=draws, num_chains=CHAINS, chain_method="vectorized", progress_bar=False)
        mcmc.run(jax.random.PRNGKey(REF_SEED), *args)
        seconds = time.perf_counter() - start
        samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
        divergent = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    by_name = {name: samples[ref] for name, ref in case.scalars.items()}
    for term, (column, ref) in case.groups.items():
        for j, level in enumerate(levels[column]):
            by_name[f"{term}[{level}]"] = samples[ref][:, :, j]
    return _table(by_name), divergent, seconds


def _table(by_name: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame.from_dict(
        {name: {"mean": x.mean(), "sd": x.std(ddof=1), "mcse_mean": float(az.mcse(x)),
                "mcse_sd": float(az.mcse(x, method="sd")), "ess_bulk": float(az.ess(x, method="bulk")),
                "r_hat": float(az.rhat(x))}
         for name, x in by_name.items()}, orient="index")


@pytest.fixture(scope="session")
def shared_data():
    cache: dict = {}

    def get(case: Case) -> pd.DataFrame:
        if case.file not in cache:
            cache[case.file] = read_shared(case.file)
        return cache[case.file]

    return get


@pytest.fixture(scope="session")
def reference(shared_data):
    """``reference(case, draws)``: the NumPyro run, once per session."""
    cache: dict = {}

    def get(case: Case, draws: int):
        if (case.name, draws) not in cache:
            cache[case.name, draws] = run_reference(case, shared_data(case), draws)
        return cache[case.name, draws]

    return get


@pytest.fixture(scope="session")
def ours(shared_data):
    """``ours(case)``: the library's fit and its wall time, once per session."""
    cache: dict = {}

    def get(case: Case):
        if case.name not in cache:
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ml.ConvergenceWarning)   # judged by the tests
                fit = ml.fit(case.formula, shared_data(case), family=case.family, priors=PRIORS,
                             chains=CHAINS, draws=case.draws, warmup=case.warmup, seed=SEED,
                             progress=False, **case.fit_options)
            cache[case.name] = fit, time.perf_counter() - start
        return cache[case.name]

    return get


def compared_names(case: Case, fit: ml.Fit) -> list[str]:
    posterior = fit.idata.posterior
    return [*case.scalars, *(f"{term}[{level}]" for term, (column, _) in case.groups.items()
                             for level in posterior[term].coords[column].values)]


# --------------------------------------------------------------------------------------
# (a) convergence


@pytest.mark.parametrize("case", CASES)
def test_our_fit_is_converged(ours, case):
    fit, seconds = ours(case)
    assert fit.sampler_info["sampler"] == "nuts"
    table = fit.summary(group_effects=False).loc[list(case.scalars)]
    assert fit.num_divergent <= MAX_DIVERGENT_SHARE * CHAINS * case.draws, f"{fit.num_divergent} divergences"
    assert_converged(table, CHAINS, ESS_BULK_MIN, what=f"{case.name} ({fit.num_divergent} divergences, {seconds:.0f} s)")


@pytest.mark.parametrize("case, ref_draws", REF_RUNS)
def test_reference_run_is_converged(reference, case, ref_draws):
    table, divergent, seconds = reference(case, ref_draws)
    assert divergent <= MAX_DIVERGENT_SHARE * CHAINS * ref_draws, f"{divergent} divergent reference draws"
    assert_converged(table.loc[list(case.scalars)], CHAINS, ESS_BULK_MIN,
                     what=f"{case.name} reference ({divergent} divergences, {seconds:.0f} s)")


# --------------------------------------------------------------------------------------
# (b) agreement with the reference


@pytest.mark.parametrize("case, ref_draws", REF_RUNS)
def test_posterior_agrees_with_the_reference_within_mcse(ours, reference, case, ref_draws):
    """Means and sds of every fixed effect, sd and group effect."""
    fit, _ = ours(case)
    ref, _, _ = reference(case, ref_draws)
    names = compared_names(case, fit)
    table = fit.summary().loc[names]
    ref = ref.loc[names]
    z_max = z_limit(2 * len(names), two_fits=True)
    z_mean = (table["mean"] - ref["mean"]).abs() / np.sqrt(table["mcse_mean"] ** 2 + ref["mcse_mean"] ** 2)
    z_sd = (table["sd"] - ref["sd"]).abs() / np.sqrt(table["mcse_sd"] ** 2 + ref["mcse_sd"] ** 2)
    report = pd.DataFrame({"ours": table["mean"], "reference": ref["mean"], "z_mean": z_mean,
                           "sd_ours": table["sd"], "sd_ref": ref["sd"], "z_sd": z_sd})
    print(f"{case.name}: max z (mean) {z_mean.max():.2f}, max z (sd) {z_sd.max():.2f}, bound {z_max:.2f}, "
          f"{len(names)} quantities\n{report.loc[list(case.scalars)].to_string()}")
    bad = report[(z_mean > z_max) | (z_sd > z_max)]
    assert bad.empty, f"differences beyond {z_max:.2f} combined MCSE:\n{bad.to_string()}"


# --------------------------------------------------------------------------------------
# (c) glmer


@pytest.mark.parametrize("case", CASES)
def test_posterior_medians_are_close_to_glmer(ours, case):
    fit, _ = ours(case)
    table = fit.summary(group_effects=False).loc[list(case.glmer)]
    glmer = pd.Series(case.glmer)
    gap = (table["q50"] - glmer) / table["sd"]
    report = pd.DataFrame({"median": table["q50"], "glmer": glmer, "posterior_sd": table["sd"], "gap_in_sd": gap})
    print(f"{case.name} vs glmer:\n{report.to_string()}")
    assert (gap.abs() <= GLMER_TOL).all(), f"posterior medians beyond {GLMER_TOL} sd of glmer:\n{report.to_string()}"
