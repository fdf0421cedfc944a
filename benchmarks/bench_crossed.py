"""Benchmark crossed random-intercept logistic regression: our Metropolis-within-Gibbs vs our NUTS vs NumPyro.

Simulated data shaped like the "no vehicles in the park" survey (Papaspiliopoulos,
Stumpf-Fétizon & Zanella 2023): 2,400 respondents each answering a random ~77% of 27
items (about 50,000 binary responses), model
``y ~ age + female + clarity + (1 | respondent) + (1 | item)`` (family ``bernoulli``,
logit), with ``age`` and ``female`` respondent covariates and ``clarity`` an item covariate.

Sides, each in a fresh process (this script with ``--worker``) whose whole wall time
counts (imports, simulation, compilation, sampling): ours with ``sampler="mwg"``, ours
with ``sampler="nuts"``, and NumPyro NUTS written by hand on the same posterior (our
default priors), float64, chains sequential, in two versions: non-centred effects
(``u = s_u z``, ``z ~ N(0, 1)``: what most users write) and centred ones (``u ~ N(0, s_u)``
sampled directly: the stronger peer when the data pin the groups). Two runs: the package
defaults (4 chains × 1000 draws after 1000 warmup) and a long one (4 × 5000). Reported per
side: the standard columns of ``common.py`` (process s, min bulk ESS (ArviZ) over the fixed
effects and the two sds, min ESS/s, seconds to a min bulk ESS of 400 and the split of the
process's time). See benchmarks/README.md. ``--quick`` is a smoke test whose numbers mean
nothing.
"""

# ruff: noqa: E402  (the imports follow the process-start time on purpose)
from __future__ import annotations

import time

PROCESS_START = time.perf_counter()  # before the heavy imports, so that they count

import argparse
import dataclasses
import json
import sys
import warnings
from pathlib import Path

import numpy as np
from common import (DEFINITIONS, RATIO_HEADER, STANDARD_HEADER, add_run_options, cache_line, ess_per_second, load_line,
                    machine_info, markdown_table, ours_split, peer_split, ratio_cells, resolve_runs, run_worker_process,
                    standard_cells, text_table)
from workers import CompileClock, numpyro_prior

RESULT_PREFIX = "RESULT "
SIDES = ("mwg", "nuts", "numpyro", "numpyro-centred")
FORMULA = "y ~ age + female + clarity + (1 | respondent) + (1 | item)"
PARAMETERS = ("Intercept", "age", "female", "clarity", "sd(Intercept|respondent)", "sd(Intercept|item)")
SIZE, QUICK_SIZE = (2400, 27, 0.77), (200, 10, 0.77)   # respondents, items, share of items answered
TARGET = 10.0   # ours (mwg) over our NUTS, min ESS/s of the whole process


def simulate(respondents: int, items: int, share: float, seed: int, family: str = "bernoulli") -> dict[str, np.ndarray]:
    """The survey's rows: each respondent answers a random ``share`` of the items; the
    response binary, or for ``--family poisson`` / ``negbinomial`` (shape 2) a count with
    log mean ``eta``."""
    rng = np.random.default_rng(seed)
    age, female = rng.normal(size=respondents), (rng.random(respondents) < 0.5).astype(float)
    clarity = rng.normal(size=items)
    u, v = rng.normal(0.0, 1.2, respondents), rng.normal(0.0, 0.8, items)
    answered = rng.random((respondents, items)) < share
    r, i = np.nonzero(answered)
    eta = 0.3 + 0.4 * age[r] - 0.3 * female[r] + 0.5 * clarity[i] + u[r] + v[i]
    if family == "poisson":
        y = rng.poisson(np.exp(eta)).astype(float)
    elif family == "negbinomial":
        y = rng.negative_binomial(2.0, 2.0 / (2.0 + np.exp(eta))).astype(float)
    else:
        y = (rng.random(r.size) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    return {"y": y, "age": age[r], "female": female[r], "clarity": clarity[i], "respondent": r, "item": i}


def summarise(posterior: dict[str, np.ndarray]) -> dict:
    """Means, MCSEs, bulk ESS and R-hat; the minimum ESS and its parameter, the maximum R-hat."""
    import arviz as az

    d = az.summary(az.from_dict(posterior=posterior), kind="diagnostics", round_to="none")
    table = {n: {"mean": float(v.mean()), "mcse_mean": float(d.loc[n, "mcse_mean"])} for n, v in posterior.items()}
    return {"table": table, "min_ess": float(d["ess_bulk"].min()), "limiting": str(d["ess_bulk"].idxmin()),
            "max_rhat": float(d["r_hat"].max())}


def ours_worker(args: argparse.Namespace) -> dict:
    """``ml.fit`` with ``sampler=args.worker`` and the default priors."""
    import pandas as pd

    import multilevel as ml

    imports = time.perf_counter() - PROCESS_START
    data = pd.DataFrame(simulate(*args.size, args.data_seed, args.family))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is reported in the table instead
        fit = ml.fit(FORMULA, data, family=args.family, sampler=args.worker, chains=args.chains, draws=args.draws,
                     warmup=args.warmup, seed=args.seed, progress=False)
    end = time.perf_counter()
    info = fit.sampler_info
    return {"side": args.worker, "fit_seconds": end - start, "process_seconds": end - PROCESS_START,
            "split": ours_split(imports, info["timings"]), "warmup": args.warmup, "draws": args.draws,
            "priors": {p: s for p, s in zip(fit.priors["parameter"], fit.priors["prior"])},
            **summarise({name: fit.idata.posterior[name].values for name in PARAMETERS})}


def peer_worker(args: argparse.Namespace) -> dict:
    """NumPyro NUTS on the model by hand, our priors, float64; the effects non-centred
    (``u = s_u z_u``, ``z_u ~ N(0, 1)``) or, for ``numpyro-centred``, centred (``u ~ N(0, s_u)``)."""
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    imports = time.perf_counter() - PROCESS_START
    numpyro.enable_x64()
    clock = CompileClock(jax)
    centred = args.worker == "numpyro-centred"
    priors = json.loads(args.priors)

    def prior(name):
        return numpyro_prior(*priors[name])

    def model(X, r, i, y, num_r, num_i):
        b = jnp.stack([numpyro.sample(n, prior(n)) for n in PARAMETERS[1:4]])
        intercept = numpyro.sample("Intercept", prior("Intercept"))
        s_r = numpyro.sample(PARAMETERS[4], prior(PARAMETERS[4]))
        s_i = numpyro.sample(PARAMETERS[5], prior(PARAMETERS[5]))
        if centred:
            u_r = numpyro.sample("u_r", dist.Normal(0.0, s_r).expand([num_r]).to_event(1))
            u_i = numpyro.sample("u_i", dist.Normal(0.0, s_i).expand([num_i]).to_event(1))
        else:
            u_r = s_r * numpyro.sample("z_r", dist.Normal(0.0, 1.0).expand([num_r]).to_event(1))
            u_i = s_i * numpyro.sample("z_i", dist.Normal(0.0, 1.0).expand([num_i]).to_event(1))
        eta = intercept + X @ b + u_r[r] + u_i[i]
        numpyro.sample("y", dist.Poisson(jnp.exp(eta)) if args.family == "poisson" else dist.BernoulliLogits(eta),
                       obs=y)

    if args.family == "negbinomial":
        raise SystemExit("the numpyro side is written for bernoulli and poisson only")
    data = simulate(*args.size, args.data_seed, args.family)
    X = jnp.asarray(np.column_stack([data["age"], data["female"], data["clarity"]]))
    start = time.perf_counter()
    mcmc = MCMC(NUTS(model), num_warmup=args.warmup, num_samples=args.draws, num_chains=args.chains,
                chain_method="sequential", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(args.seed), X, jnp.asarray(data["respondent"]), jnp.asarray(data["item"]),
             jnp.asarray(data["y"]), args.size[0], args.size[1])
    samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    end = time.perf_counter()
    return {"side": args.worker, "fit_seconds": end - start, "process_seconds": end - PROCESS_START,
            "split": peer_split(imports, clock.seconds, end - start), "warmup": args.warmup,
            "draws": args.draws, **summarise({name: np.asarray(samples[name]) for name in PARAMETERS})}


def run_worker(side: str, draws: int, args: argparse.Namespace, priors: dict) -> dict:
    """One worker in a fresh Python process; its result, or ``{"error": ...}``."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", side, "--chains", str(args.chains),
               "--draws", str(draws), "--warmup", str(args.warmup), "--seed", str(args.seed),
               "--data-seed", str(args.data_seed), "--family", args.family, "--priors", json.dumps(priors)]
    command += ["--quick"] if args.quick else []
    return run_worker_process(command, side, args.cache, RESULT_PREFIX)


def prior_table(args: argparse.Namespace) -> dict:
    """Our default priors for the data, as (class name, arguments), for the peer."""
    import pandas as pd

    import multilevel as ml

    built = ml.build_model(FORMULA, pd.DataFrame(simulate(*args.size, args.data_seed, args.family)),
                           family=args.family)
    return {p.name: (type(p.prior).__name__, {f.name: float(getattr(p.prior, f.name))
                                               for f in dataclasses.fields(p.prior)}) for p in built.priors.all()}


HEADER = ["run", "side", *STANDARD_HEADER, "limiting parameter", "max R-hat", *RATIO_HEADER]


def row(run: str, result: dict, mwg: dict | None) -> list[str]:
    """One row of HEADER; the ratios are mwg's against this side."""
    if "error" in result:
        return [run, result["side"], "failed: " + result["error"][:80], *["—"] * (len(HEADER) - 3)]
    return [run, result["side"], *standard_cells(result), result["limiting"], f"{result['max_rhat']:.3f}",
            *ratio_cells(mwg, result)]


def agreement(a: dict, b: dict) -> str:
    z = {n: (r["mean"] - b["table"][n]["mean"]) / np.hypot(r["mcse_mean"], b["table"][n]["mcse_mean"])
         for n, r in a["table"].items()}
    worst = max(z, key=lambda n: abs(z[n]))
    return f"means of {a['side']} and {b['side']}: max |z| = {abs(z[worst]):.1f} ({worst})"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: 200 × 10, 2 chains × 200 draws after "
                        "200 warmup, default run only")
    parser.add_argument("--only", nargs="+", choices=SIDES, default=list(SIDES))
    add_run_options(parser)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--family", choices=("bernoulli", "poisson", "negbinomial"), default="bernoulli",
                        help="the response: binary (default) or a count with a log link")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--priors", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.run_draws = resolve_runs(args)
    args.size = QUICK_SIZE if args.quick else SIZE
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker = peer_worker if args.worker.startswith("numpyro") else ours_worker
        print(RESULT_PREFIX + json.dumps(worker(args), default=str))
        return
    info = machine_info()
    setting = (f"family {args.family}; runs: "
               f"{', '.join(f'{r} {args.chains} chains × {d} draws' for r, d in args.run_draws.items())}, "
               f"after {args.warmup} warmup, seed {args.seed}, data seed {args.data_seed}; {args.size[0]} "
               f"respondents × {args.size[1]} items, share answered {args.size[2]}")
    print("\n".join(info), setting + (" (--quick: smoke test, not a benchmark)" if args.quick else ""), sep="\n",
          flush=True)
    priors = prior_table(args)
    rows, notes = [], []
    for run, draws in args.run_draws.items():
        name = f"{args.chains}×{draws}"
        results = {}
        for side in args.only:
            print(f"\n{name}: {side} ...", flush=True)
            results[side] = run_worker(side, draws, args, priors)
            print(text_table(HEADER, [row(name, results[side], None)]), flush=True)
        ok = {s: r for s, r in results.items() if "error" not in r}
        mwg = ok.get("mwg")
        if mwg and "nuts" in ok:
            ratio = ess_per_second(mwg) / ess_per_second(ok["nuts"])
            notes.append(f"{name}: mwg / our NUTS, min ESS/s of the whole process: {ratio:.1f} (target >= "
                         f"{TARGET:g}: " + ("met" if ratio >= TARGET else f"NOT met, {TARGET / ratio:.1f}× short")
                         + ")")
        notes += [f"{name}: " + agreement(mwg, ok[s]) for s in SIDES[1:] if mwg and s in ok]
        rows += [row(name, r, mwg) for r in results.values()]
    print("\n----- Markdown for benchmarks/RESULTS.md -----\n")
    print("\n".join(["## Crossed logistic (survey-shaped), mwg vs NUTS vs NumPyro", "",
                     *[f"- {line}" for line in info], f"- {load_line()}", f"- {cache_line(args.cache)}", f"- {setting}",
                     f"- model `{FORMULA}`, family {args.family}; every row a fresh process; {DEFINITIONS}; peers: "
                     "NumPyro NUTS by hand, non-centred (numpyro) and centred (numpyro-centred), our default "
                     "priors, float64, chains sequential; ratios: mwg against this side",
                     "", markdown_table(HEADER, rows), "", *[f"- {n}" for n in notes]]))


if __name__ == "__main__":
    sys.exit(main())
