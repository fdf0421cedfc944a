"""Benchmark crossed random-intercept logistic regression: our Metropolis-within-Gibbs vs our NUTS vs NumPyro.

Simulated data shaped like the "no vehicles in the park" survey (Papaspiliopoulos,
Stumpf-Fétizon & Zanella 2023): 2,400 respondents each answering a random ~77% of 27
items (about 50,000 binary responses), model
``y ~ age + female + clarity + (1 | respondent) + (1 | item)`` (family ``bernoulli``,
logit), with ``age`` and ``female`` respondent covariates and ``clarity`` an item covariate.

Sides, each in a fresh process (this script with ``--worker``) whose whole wall time
counts (imports, simulation, compilation, sampling): ours with ``sampler="mwg"``, ours
with ``sampler="nuts"``, and NumPyro NUTS written by hand on the same posterior (our
default priors; non-centred effects, what most users write), float64, chains sequential.
Reported per side: min bulk ESS (ArviZ) over the fixed effects and the two sds, min ESS
per second of the whole process, and the time to a min bulk ESS of 400, extrapolated
linearly from the sampling time (``process s - sampling s + sampling s × 400 / min ESS``).
See benchmarks/README.md. ``--quick`` is a smoke test whose numbers mean nothing.
"""

# ruff: noqa: E402  (the imports follow the process-start time on purpose)
from __future__ import annotations

import time

PROCESS_START = time.perf_counter()  # before the heavy imports, so that they count

import argparse
import dataclasses
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
from workers import numpyro_prior

RESULT_PREFIX = "RESULT "
SIDES = ("mwg", "nuts", "numpyro")
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

    data = pd.DataFrame(simulate(*args.size, args.data_seed, args.family))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is reported in the table instead
        fit = ml.fit(FORMULA, data, family=args.family, sampler=args.worker, chains=args.chains, draws=args.draws,
                     warmup=args.warmup, seed=args.seed, progress=False)
    end = time.perf_counter()
    info = fit.sampler_info
    return {"side": args.worker, "fit_seconds": end - start, "process_seconds": end - PROCESS_START,
            "sampling_seconds": info["sampling_seconds"], "compile_seconds": info["compile_seconds"],
            "priors": {p: s for p, s in zip(fit.priors["parameter"], fit.priors["prior"])},
            **summarise({name: fit.idata.posterior[name].values for name in PARAMETERS})}


def peer_worker(args: argparse.Namespace) -> dict:
    """NumPyro NUTS on the model by hand (non-centred effects), our priors, float64."""
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    numpyro.enable_x64()
    priors = json.loads(args.priors)

    def prior(name):
        return numpyro_prior(*priors[name])

    def model(X, r, i, y, num_r, num_i):
        b = jnp.stack([numpyro.sample(n, prior(n)) for n in PARAMETERS[1:4]])
        intercept = numpyro.sample("Intercept", prior("Intercept"))
        s_r = numpyro.sample(PARAMETERS[4], prior(PARAMETERS[4]))
        s_i = numpyro.sample(PARAMETERS[5], prior(PARAMETERS[5]))
        z_r = numpyro.sample("z_r", dist.Normal(0.0, 1.0).expand([num_r]).to_event(1))
        z_i = numpyro.sample("z_i", dist.Normal(0.0, 1.0).expand([num_i]).to_event(1))
        eta = intercept + X @ b + s_r * z_r[r] + s_i * z_i[i]
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
    return {"side": "numpyro", "fit_seconds": end - start, "process_seconds": end - PROCESS_START,
            "sampling_seconds": end - start, "compile_seconds": float("nan"),
            **summarise({name: np.asarray(samples[name]) for name in PARAMETERS})}


def run_worker(side: str, args: argparse.Namespace, priors: dict) -> dict:
    """One worker in a fresh Python process; its result, or ``{"error": ...}``."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", side, "--chains", str(args.chains),
               "--draws", str(args.draws), "--warmup", str(args.warmup), "--seed", str(args.seed),
               "--data-seed", str(args.data_seed), "--family", args.family, "--priors", json.dumps(priors)]
    command += ["--quick"] if args.quick else []
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return {"side": side, "error": lines[-1] if lines else f"exit status {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1].removeprefix(RESULT_PREFIX))


def prior_table(args: argparse.Namespace) -> dict:
    """Our default priors for the data, as (class name, arguments), for the peer."""
    import pandas as pd

    import multilevel as ml

    built = ml.build_model(FORMULA, pd.DataFrame(simulate(*args.size, args.data_seed, args.family)),
                           family=args.family)
    return {p.name: (type(p.prior).__name__, {f.name: float(getattr(p.prior, f.name))
                                               for f in dataclasses.fields(p.prior)}) for p in built.priors.all()}


HEADER = ["side", "process s", "sampling s", "min bulk ESS", "limiting parameter", "max R-hat", "min ESS/s",
          "s to ESS 400", "mwg / this"]


def ess_per_second(result: dict) -> float:
    return result["min_ess"] / result["process_seconds"]


def to_400(result: dict) -> float:
    fixed = result["process_seconds"] - result["sampling_seconds"]
    return fixed + result["sampling_seconds"] * 400.0 / max(result["min_ess"], 1e-9)


def row(result: dict, mwg: dict | None) -> list[str]:
    if "error" in result:
        return [result["side"], "failed: " + result["error"][:80], *["—"] * (len(HEADER) - 2)]
    ratio = f"{ess_per_second(mwg) / ess_per_second(result):.1f}" if mwg and result is not mwg else "—"
    return [result["side"], f"{result['process_seconds']:.1f}", f"{result['sampling_seconds']:.1f}",
            f"{result['min_ess']:.0f}", result["limiting"], f"{result['max_rhat']:.3f}",
            f"{ess_per_second(result):.2f}", f"{to_400(result):.0f}", ratio]


def agreement(a: dict, b: dict) -> str:
    z = {n: (r["mean"] - b["table"][n]["mean"]) / np.hypot(r["mcse_mean"], b["table"][n]["mcse_mean"])
         for n, r in a["table"].items()}
    worst = max(z, key=lambda n: abs(z[n]))
    return f"means of {a['side']} and {b['side']}: max |z| = {abs(z[worst]):.1f} ({worst})"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: 200 × 10, 2 chains × 200 draws")
    parser.add_argument("--only", nargs="+", choices=SIDES, default=list(SIDES))
    parser.add_argument("--chains", type=int)
    parser.add_argument("--draws", type=int)
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--family", choices=("bernoulli", "poisson", "negbinomial"), default="bernoulli",
                        help="the response: binary (default) or a count with a log link")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--priors", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name, (full, quick) in dict(chains=(4, 2), draws=(1000, 200), warmup=(1000, 200)).items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    args.size = QUICK_SIZE if args.quick else SIZE
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker = peer_worker if args.worker == "numpyro" else ours_worker
        print(RESULT_PREFIX + json.dumps(worker(args), default=str))
        return
    from common import machine_info, markdown_table, text_table

    info = machine_info()
    setting = (f"family {args.family}; {args.chains} chains × {args.draws} draws after {args.warmup} warmup, "
               f"seed {args.seed}, "
               f"data seed {args.data_seed}; {args.size[0]} respondents × {args.size[1]} items, "
               f"share answered {args.size[2]}")
    print("\n".join(info), setting, sep="\n", flush=True)
    priors = prior_table(args)
    results = {}
    for side in args.only:
        print(f"\n{side} ...", flush=True)
        results[side] = run_worker(side, args, priors)
        print(text_table(HEADER, [row(results[side], None)]), flush=True)
    ok = {s: r for s, r in results.items() if "error" not in r}
    mwg = ok.get("mwg")
    notes = []
    if mwg and "nuts" in ok:
        ratio = ess_per_second(mwg) / ess_per_second(ok["nuts"])
        notes.append(f"mwg / our NUTS, min ESS/s of the whole process: {ratio:.1f} (target >= {TARGET:g}: "
                     + ("met" if ratio >= TARGET else f"NOT met, {TARGET / ratio:.1f}× short") + ")")
    notes += [agreement(mwg, ok[s]) for s in ("nuts", "numpyro") if mwg and s in ok]
    rows = [row(r, mwg) for r in results.values()]
    print("\n----- Markdown for benchmarks/RESULTS.md -----\n")
    print("\n".join(["## Crossed logistic (survey-shaped), mwg vs NUTS vs NumPyro", "",
                     *[f"- {line}" for line in info], f"- {setting}", f"- model `{FORMULA}`, family {args.family}",
                     "", markdown_table(HEADER, rows), "", *[f"- {n}" for n in notes]]))


if __name__ == "__main__":
    sys.exit(main())
