"""Every brms family against an independently written NumPyro model of the same
posterior: ``y ~ x + (1 | g)`` on data from :func:`test_families_fits.simulate`
(300 rows in 12 groups), the same explicit priors on every parameter, and the
likelihood written from NumPyro's own distributions (brms's parameterisations:
``Gamma(shape, shape / mu)``, ``LogNormal``, ``Exponential(1 / mu)``,
``Weibull(mu / Γ(1 + 1/k), k)``, ``Beta(mu phi, (1 - mu) phi)``, ``BetaBinomial``,
``ZeroInflatedPoisson``, ``ZeroInflatedNegativeBinomial2``,
``ZeroInflatedDistribution(BinomialLogits)``; the hurdles by hand: ``log hu`` at 0,
``log(1 - hu) + log f(y) - log(1 - f(0))`` above it for the counts, without the
last term for the continuous ones), group effects non-centred.

* The log densities agree at random points of the unconstrained space (both use
  ``exp`` for positive and the logistic for unit parameters, so a point is the same
  point in both): differences between two points within 1e-9 relative (within 2e-6
  a row where NumPyro's density goes through jax's imprecise ``betaln``: the beta-binomial
  and negative binomial families). This pins the likelihood and priors without Monte
  Carlo error.
* Fits agree: ours (4 chains × 1000 draws; the lognormal forced onto full-model NUTS,
  its default collapsed sampler is compared with NUTS in
  ``test_families_fits.test_lognormal_is_fitted_exactly_and_agrees_with_nuts``) and
  NumPyro's (4 chains × 1000 draws) both converge, and the posterior mean and sd of
  ``Intercept``, ``x``, ``sd(Intercept|g)`` and the family's parameters agree within
  :func:`agreement.z_limit` combined Monte Carlo standard errors. Ours centres its group
  term as its pilot decides, but for hurdle_negbinomial (held non-centred: see
  :data:`CENTERED`).

False alarms (a correct library failing): the agreement limit is split (Bonferroni)
over all :data:`COMPARISONS` (110) means and sds of the module's 13 fits, 1e-3 in all
(limit 4.85 combined MCSEs); the R-hat limits over all :data:`PARAMETERS` (110)
parameters of the 26 fits (ours and NumPyro's), 1e-3 in all; the bulk ESS floor
:data:`ESS_MIN` is half the smallest observed. So < 2e-3 for the module. Measured
(one run, max |z| per family, limit 4.85): gamma 2.01, lognormal 1.74, exponential
1.71, weibull 1.85, beta 1.85, beta_binomial 1.49, zero_inflated_poisson 1.44,
zero_inflated_negbinomial 1.99, zero_inflated_binomial 2.03, hurdle_poisson 2.55,
hurdle_negbinomial 1.49, hurdle_lognormal 1.85, hurdle_gamma 1.86.

Cost, on the shared 2-core machine under a load of 2-5: each family's fits 17-50 s (ours
4-17 s, NumPyro's four sequential chains 14-38 s); the whole module 6.5 minutes in one
session (381 s), of which the 13 log density checks take about 10 s.
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
from jax.scipy.special import expit, gammaln
from numpyro.infer import MCMC, NUTS
from numpyro.infer.util import potential_energy

import multilevel as ml
from agreement import assert_converged, assert_tables_agree
from multilevel.model import get_family
from test_families_fits import FAMILY_AUX, simulate

ROWS, GROUPS = 300, 12
CHAINS, DRAWS = 4, 1000
FAMILIES = ("gamma", "lognormal", "exponential", "weibull", "beta", "beta_binomial", "zero_inflated_poisson",
            "zero_inflated_negbinomial", "zero_inflated_binomial", "hurdle_poisson", "hurdle_negbinomial",
            "hurdle_lognormal", "hurdle_gamma")
TRIALS = ("beta_binomial", "zero_inflated_binomial")
#: NumPyro's BetaBinomial and NegativeBinomial2 go through jax's ``betaln``, off by up to
#: ~1.2e-6 a row against scipy at small shapes (ours is within 1e-12 of scipy there):
#: their log densities are compared within that error a row.
BETALN_FAMILIES, BETALN_ERROR = ("beta_binomial", "zero_inflated_negbinomial", "hurdle_negbinomial"), 2e-6

#: The priors, by class (ours) and by NumPyro site (the reference); a family takes those of its parameters.
PRIORS = {"Intercept": ml.Normal(0, 2.5), "b": ml.Normal(0, 1), "sd": ml.HalfNormal(1),
          "shape": ml.Gamma(2, 0.1), "phi": ml.Gamma(2, 0.1), "sigma": ml.HalfNormal(1),
          "zi": ml.Beta(1, 1), "hu": ml.Beta(1, 1)}
REFERENCE_PRIORS = {"Intercept": dist.Normal(0, 2.5), "x": dist.Normal(0, 1), "sd": dist.HalfNormal(1),
                    "shape": dist.Gamma(2, 0.1), "phi": dist.Gamma(2, 0.1), "sigma": dist.HalfNormal(1),
                    "zi": dist.Beta(1, 1), "hu": dist.Beta(1, 1)}


def family_params(family: str) -> tuple[str, ...]:
    return tuple(p.name for p in get_family(family).params)


#: Quantities compared per family (Intercept, x, sd(Intercept|g) and the family's).
QUANTITIES = {f: 3 + len(family_params(f)) for f in FAMILIES}
#: Means and sds compared over the module, and parameters whose R-hat is checked (two fits a family).
COMPARISONS = 2 * sum(QUANTITIES.values())
PARAMETERS = 2 * sum(QUANTITIES.values())
#: Bulk ESS floor over 4 chains (50 a chain), half the smallest observed: 430 (ours,
#: zero_inflated_negbinomial, which the pilot centres: 430-1316 over 7 seeds, 0-9 divergences);
#: every other fit of ours >= 822 over the seeds tried, NumPyro's >= 916.
ESS_MIN = 200
#: Group terms held non-centred instead of the pilot's choice. hurdle_negbinomial: the pilot's
#: median sd² × information is about 1 (0.78 to 1.09 over seeds), so it centres on some seeds;
#: the posterior of the sd (0.25 ± 0.13) reaches 0 and the centred form funnels there (over 8
#: seeds forced centred: 2-56 divergences, bulk ESS 91-787), which would fail the ESS floor on
#: a correct likelihood. What this module checks is the likelihood, not the centring rule.
CENTERED = {"hurdle_negbinomial": False}


def family_data(family: str, seed: int = 0) -> pd.DataFrame:
    data = simulate(family, FAMILY_AUX[family], seed=seed, rows=ROWS, groups=GROUPS)
    return data.assign(g=[f"g{v:02d}" for v in data["g"]])     # levels sort the same way everywhere


def formula(family: str) -> str:
    return "y | trials(n) ~ x + (1 | g)" if family in TRIALS else "y ~ x + (1 | g)"


def priors(family: str) -> dict:
    return {k: PRIORS[k] for k in ("Intercept", "b", "sd", *family_params(family))}


def likelihood(family: str, eta, aux: dict, y, n):
    """Log-likelihood per row, from NumPyro's distributions (the hurdles by hand)."""
    mu, p = jnp.exp(eta), expit(eta)
    if family == "gamma":
        return dist.Gamma(aux["shape"], aux["shape"] / mu).log_prob(y)
    if family == "lognormal":
        return dist.LogNormal(eta, aux["sigma"]).log_prob(y)
    if family == "exponential":
        return dist.Exponential(1 / mu).log_prob(y)
    if family == "weibull":
        k = aux["shape"]
        return dist.Weibull(mu / jnp.exp(gammaln(1 + 1 / k)), k).log_prob(y)
    if family == "beta":
        return dist.Beta(p * aux["phi"], (1 - p) * aux["phi"]).log_prob(y)
    if family == "beta_binomial":
        return dist.BetaBinomial(p * aux["phi"], (1 - p) * aux["phi"], total_count=n).log_prob(y)
    if family == "zero_inflated_poisson":
        return dist.ZeroInflatedPoisson(aux["zi"], mu).log_prob(y)
    if family == "zero_inflated_negbinomial":
        return dist.ZeroInflatedNegativeBinomial2(mu, aux["shape"], gate=aux["zi"]).log_prob(y)
    if family == "zero_inflated_binomial":
        return dist.ZeroInflatedDistribution(dist.BinomialLogits(eta, total_count=n), gate=aux["zi"]).log_prob(y)
    hu, positive = aux["hu"], y > 0
    safe = jnp.where(positive, y, 1.0)
    if family in ("hurdle_poisson", "hurdle_negbinomial"):
        base = dist.Poisson(mu) if family == "hurdle_poisson" else dist.NegativeBinomial2(mu, aux["shape"])
        above = base.log_prob(safe) - jnp.log(-jnp.expm1(base.log_prob(jnp.zeros_like(safe))))
    elif family == "hurdle_lognormal":
        above = dist.LogNormal(eta, aux["sigma"]).log_prob(safe)
    elif family == "hurdle_gamma":
        above = dist.Gamma(aux["shape"], aux["shape"] / mu).log_prob(safe)
    else:
        raise ValueError(family)
    return jnp.where(positive, jnp.log1p(-hu) + above, jnp.log(hu))


def reference_model(family: str):
    """The posterior written directly in NumPyro: non-centred group effects."""
    names = family_params(family)

    def model(x, g, y, n):
        intercept = numpyro.sample("Intercept", REFERENCE_PRIORS["Intercept"])
        b = numpyro.sample("x", REFERENCE_PRIORS["x"])
        sd = numpyro.sample("sd", REFERENCE_PRIORS["sd"])
        z = numpyro.sample("z", dist.Normal(0, 1).expand([GROUPS]))
        aux = {name: numpyro.sample(name, REFERENCE_PRIORS[name]) for name in names}
        numpyro.factor("y", likelihood(family, intercept + b * x + sd * z[g], aux, y, n).sum())

    return model


def reference_arguments(data: pd.DataFrame) -> tuple:
    g = pd.Categorical(data["g"]).codes
    return tuple(jnp.asarray(v) for v in (data["x"].to_numpy(), g, data["y"].to_numpy(dtype=float),
                                          data["n"].to_numpy(dtype=float)))


def numpyro_reference(family: str, data: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """NumPyro's summary of Intercept, x, sd(Intercept|g) and the family's parameters, and its divergences."""
    names = family_params(family)
    mcmc = MCMC(NUTS(reference_model(family), target_accept_prob=0.9), num_warmup=DRAWS, num_samples=DRAWS,
                num_chains=CHAINS, chain_method="sequential", progress_bar=False)
    with jax.enable_x64(True):
        mcmc.run(jax.random.PRNGKey(1), *reference_arguments(data))
        idata = az.from_numpyro(mcmc)
    table = az.summary(idata, var_names=["Intercept", "x", "sd", *names], round_to="none")
    table.index = ["Intercept", "x", "sd(Intercept|g)", *names]
    return table, int(mcmc.get_extra_fields()["diverging"].sum())


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_the_log_density_is_the_hand_written_numpyro_models(family):
    data = family_data(family)
    model = ml.build_model(formula(family), data, family=family, priors=priors(family))
    names = family_params(family)
    assert model.layout.fixed == ("Intercept", "x") and model.layout.aux == names
    assert model.layout.groups[0].levels == tuple(sorted(set(data["g"])))
    f, start = model.log_density()
    rng = np.random.default_rng(7)
    ours, theirs = [], []
    for _ in range(3):
        b, aux, sd, z = rng.normal(size=2), rng.normal(size=len(names)), rng.normal(size=1), rng.normal(size=GROUPS)
        position = start._replace(b=b, aux=aux, sd=(sd,), z=(z[:, None],))
        unconstrained = {"Intercept": b[0], "x": b[1], "sd": sd[0], "z": z, **dict(zip(names, aux))}
        with jax.enable_x64(True):
            ours.append(float(f(jax.tree_util.tree_map(jnp.asarray, position))))
            theirs.append(-float(potential_energy(reference_model(family), reference_arguments(data), {},
                                                  jax.tree_util.tree_map(jnp.asarray, unconstrained))))
    ours, theirs = np.array(ours), np.array(theirs)
    assert np.isfinite(ours).all() and np.isfinite(theirs).all()
    # equal up to a constant (ours drops the normal constant of the effects' density)
    atol = ROWS * BETALN_ERROR if family in BETALN_FAMILIES else 1e-8
    np.testing.assert_allclose(ours[1:] - ours[0], theirs[1:] - theirs[0], rtol=1e-9, atol=atol)


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_a_fit_agrees_with_the_hand_written_numpyro_model(family):
    data = family_data(family)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.ConvergenceWarning)
        fit = ml.fit(formula(family), data, family=family, priors=priors(family),
                     sampler="nuts" if family == "lognormal" else "auto", chains=CHAINS, draws=DRAWS, warmup=DRAWS,
                     target_accept=0.9, seed=2, progress=False, centered=CENTERED.get(family))
    middle = time.perf_counter()
    reference, divergent = numpyro_reference(family, data)
    end = time.perf_counter()
    print(f"{family}: ours ({fit.sampler_info['sampler']}) {middle - start:.0f} s, {fit.num_divergent} divergent, "
          f"{fit.sampler_info['centering_reason']}; NumPyro {end - middle:.0f} s, {divergent} divergent")
    assert fit.sampler_info["sampler"] == "nuts"
    ours = fit.summary(group_effects=False).loc[reference.index]
    assert_converged(ours, CHAINS, ESS_MIN, f"{family}, ours", count=PARAMETERS)
    assert_converged(reference, CHAINS, ESS_MIN, f"{family}, NumPyro", count=PARAMETERS)
    assert_tables_agree(ours, reference, f"{family}: ours and NumPyro", count=COMPARISONS)
