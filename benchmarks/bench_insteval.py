"""Benchmark crossed random effects at scale: InstEval, ``y ~ service + (1 | s) + (1 | d) + (1 | dept)``.

73,421 course ratings by 2,972 students (s) of 1,128 lecturers (d) in 14
departments (lecturers are nested in departments, both crossed with students).
``ml.fit`` with its defaults picks the blocked Gibbs sampler; the issue's bar is
R-hat <= 1.01 and bulk ESS >= 400 on the fixed effects, sigma and the sds with
4 chains × 1000 draws, in under 60 s; ours runs at the package defaults and a long
run (4 × 5000). The peers are NumPyro NUTS on the full model with the same priors
(those of ``fit.priors``), float64, chains sequential, non-centred (``u = sd z``,
``z ~ N(0, 1)``: what most users write) and centred (``u ~ N(0, sd)`` sampled
directly); they are run shortened (``--peer-draws``, default 2 × 300 + 300)
because at 4 × 2000 iterations they take far longer. lme4's REML fit of this
model takes 21 s on this kind of machine (measured for the issue, not run here:
no R on the benchmark machine).

Each side runs in a fresh process (this script with ``--worker``) and reports the
standard columns of ``common.py`` (process s since its first line: imports, reading the
CSV, compilation included; min ESS/s; seconds to ESS 400; the split of the time).
Needs ``../shared/data/InstEval.csv``. See benchmarks/README.md.
"""

# ruff: noqa: E402  (the imports follow the process-start time on purpose)
from __future__ import annotations

import time

PROCESS_START = time.perf_counter()  # before the heavy imports, so that they count

import argparse
import json
import subprocess
import sys
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
from numpyro.infer import MCMC, NUTS

import multilevel as ml
from bench_scale import RESULT_PREFIX, numpyro_prior, peak_mib, summarise
from common import (DEFINITIONS, STANDARD_HEADER, add_run_options, cache_environment, cache_line, ess_per_second,
                    load_line, machine_info, markdown_table, ours_split, peer_split, resolve_runs, seconds_to_ess,
                    standard_cells, text_table)
from multilevel.model import prior_from_string
from workers import CompileClock

IMPORT_SECONDS = time.perf_counter() - PROCESS_START

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "InstEval.csv"
FORMULA = "y ~ service + (1 | s) + (1 | d) + (1 | dept)"
FACTORS = ("s", "d", "dept")
PARAMETERS = ("Intercept", "service", "sigma") + tuple(f"sd(Intercept|{f})" for f in FACTORS)
TARGET_SECONDS, TARGET_RHAT, TARGET_ESS = 60.0, 1.01, 400.0
LME4_SECONDS = 21.0
AGREEMENT_MCSE = 4.0


def ours_worker(args) -> dict:
    data = pd.read_csv(DATA)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is reported in the table instead
        fit = ml.fit(FORMULA, data, chains=args.chains, draws=args.draws, warmup=args.warmup, seed=args.seed,
                     progress=False)
    end = time.perf_counter()
    posterior = {name: fit.idata.posterior[name].values for name in PARAMETERS}
    return {"side": "ours", "sampler": fit.sampler_info["sampler"], "chains": args.chains, "draws": args.draws,
            "warmup": args.warmup, "fit_seconds": end - start, "process_seconds": end - PROCESS_START,
            "compile_seconds": fit.sampler_info["compile_seconds"],
            "sampling_seconds": fit.sampler_info["sampling_seconds"],
            "split": ours_split(IMPORT_SECONDS, fit.sampler_info["timings"]), **summarise(posterior),
            "priors": dict(zip(fit.priors["parameter"], fit.priors["prior"])), "peak_mib": peak_mib()}


def peer_model(priors, centred: bool):
    """The model by hand: per factor, effects ``u = sd z``, ``z ~ N(0, 1)`` (non-centred) or
    ``u ~ N(0, sd)`` sampled directly (centred)."""
    def model(service, refs, sizes, y):
        intercept = numpyro.sample("Intercept", numpyro_prior(priors["Intercept"]))
        slope = numpyro.sample("service", numpyro_prior(priors["service"]))
        sigma = numpyro.sample("sigma", numpyro_prior(priors["sigma"]))
        mu = intercept + slope * service
        for factor, ref, size in zip(FACTORS, refs, sizes):
            sd = numpyro.sample(f"sd(Intercept|{factor})", numpyro_prior(priors[f"sd(Intercept|{factor})"]))
            if centred:
                u = numpyro.sample(f"u_{factor}", dist.Normal(0.0, sd).expand([size]).to_event(1))
            else:
                u = sd * numpyro.sample(f"z_{factor}", dist.Normal(0.0, 1.0).expand([size]).to_event(1))
            mu = mu + u[ref]
        numpyro.sample("y", dist.Normal(mu, sigma), obs=y)

    return model


def peer_worker(args) -> dict:
    clock = CompileClock(jax)
    data = pd.read_csv(DATA)
    priors = {name: prior_from_string(text) for name, text in json.loads(args.priors).items()}
    with jax.enable_x64(True):
        start = time.perf_counter()
        codes = [pd.factorize(data[f], sort=True) for f in FACTORS]
        mcmc = MCMC(NUTS(peer_model(priors, args.worker == "peer-centred")), num_warmup=args.warmup,
                    num_samples=args.draws,
                    num_chains=args.chains, chain_method="sequential", progress_bar=False)
        mcmc.run(jax.random.PRNGKey(args.seed), jnp.asarray(data["service"].to_numpy(), jnp.float64),
                 tuple(jnp.asarray(c, jnp.int32) for c, _ in codes), tuple(len(levels) for _, levels in codes),
                 jnp.asarray(data["y"].to_numpy(), jnp.float64))
        samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
        end = time.perf_counter()
        divergences = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    posterior = {name: np.asarray(samples[name]) for name in PARAMETERS}
    return {"side": args.worker, "sampler": "numpyro NUTS", "chains": args.chains, "draws": args.draws,
            "warmup": args.warmup, "fit_seconds": end - start, "process_seconds": end - PROCESS_START,
            "split": peer_split(IMPORT_SECONDS, clock.seconds, end - start),
            "divergences": divergences, **summarise(posterior), "peak_mib": peak_mib()}


def run_worker(side: str, chains: int, draws: int, warmup: int, seed: int, priors: dict | None = None,
               cache: str = "cold") -> dict:
    command = [sys.executable, __file__, "--worker", side, "--chains", str(chains), "--draws", str(draws),
               "--warmup", str(warmup), "--seed", str(seed)]
    if priors is not None:
        command += ["--priors", json.dumps(priors)]
    with cache_environment(cache) as env:
        out = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith(RESULT_PREFIX))[len(RESULT_PREFIX):])


def row(result: dict, ours: dict | None) -> list[str]:
    """One row of HEADER; the ratios are ours (the default run) against this side."""
    ratios = ["—", "—"]
    if ours and result is not ours:
        ratios = [f"{ess_per_second(ours) / ess_per_second(result):.2f}",
                  f"{seconds_to_ess(result) / seconds_to_ess(ours):.2f}"]
    return [result["side"], result["sampler"], f"{result['chains']}×{result['draws']} (+{result['warmup']})",
            *standard_cells(result), f"{result['fit_seconds']:.1f}", f"{result['max_rhat']:.3f}",
            f"{result['peak_mib']:.0f}", *ratios]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: ours 2 chains × 200 draws after 200 "
                        "warmup, default run only, the peers 1 chain × 50 after 50 (numbers mean nothing)")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--priors", help=argparse.SUPPRESS)
    add_run_options(parser)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--peer-chains", type=int)
    parser.add_argument("--peer-draws", type=int)
    parser.add_argument("--peer-warmup", type=int)
    parser.add_argument("--only", nargs="+", choices=SIDES, default=list(SIDES),
                        help="which sides to run (default all; the peers need ours for their priors)")
    args = parser.parse_args()
    run_draws = resolve_runs(args)
    for name, full, quick in (("peer_chains", 2, 1), ("peer_draws", 300, 50), ("peer_warmup", 300, 50)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.worker:
        result = ours_worker(args) if args.worker == "ours" else peer_worker(args)
        print(RESULT_PREFIX + json.dumps(result))
        return
    if not DATA.exists():
        sys.exit(f"{DATA} is absent: this benchmark needs the real InstEval data beside the repository")
    if "ours" not in args.only:
        sys.exit("the peers need our priors: run with ours")

    info = machine_info()
    print("\n".join(info), flush=True)
    results = []
    for draws in run_draws.values():
        results.append(run_worker("ours", args.chains, draws, args.warmup, args.seed, cache=args.cache))
        print(text_table(HEADER, [row(results[-1], None)]), flush=True)
    ours = results[0]
    for side in SIDES[1:]:
        if side in args.only:
            results.append(run_worker(side, args.peer_chains, args.peer_draws, args.peer_warmup, args.seed,
                                      ours["priors"], args.cache))
            print(text_table(HEADER, [row(results[-1], ours)]), flush=True)

    notes = []
    verdict = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    notes.append(f"target ({ours['chains']}×{ours['draws']}): whole process {ours['process_seconds']:.1f} s < "
                 f"{TARGET_SECONDS:.0f} s: {verdict(ours['process_seconds'] < TARGET_SECONDS)} (fit "
                 f"{ours['fit_seconds']:.1f} s: compilation {ours['compile_seconds']:.1f} s, sampling "
                 f"{ours['sampling_seconds']:.1f} s)")
    notes.append(f"target: max R-hat {ours['max_rhat']:.3f} <= {TARGET_RHAT}: "
                 f"{verdict(ours['max_rhat'] <= TARGET_RHAT)}")
    notes.append(f"target: min bulk ESS {ours['min_ess']:.0f} >= {TARGET_ESS:.0f}: "
                 f"{verdict(ours['min_ess'] >= TARGET_ESS)}")
    notes.append(f"lme4 REML (point estimates, no posterior): {LME4_SECONDS:.0f} s as measured for the issue; "
                 f"ours gives the full posterior in {ours['process_seconds'] / LME4_SECONDS:.1f}× that time")
    for peer in (r for r in results if r["side"] != "ours"):
        z = max(abs(ours["table"][n]["mean"] - peer["table"][n]["mean"])
                / np.hypot(ours["table"][n]["mcse_mean"], peer["table"][n]["mcse_mean"]) for n in PARAMETERS)
        notes.append(f"ours ({ours['chains']}×{ours['draws']}) / {peer['side']}: min ESS/s (whole process) "
                     f"{ess_per_second(ours) / ess_per_second(peer):.1f}, seconds to ESS 400 "
                     f"{seconds_to_ess(peer) / seconds_to_ess(ours):.1f}; posterior means within "
                     f"{AGREEMENT_MCSE:.0f} MCSE: {'agree' if z <= AGREEMENT_MCSE else 'DISAGREE'} (max |z| = {z:.1f})")
    print("\n" + "\n".join(notes))
    print("\n## InstEval: crossed random intercepts (Gibbs) vs NumPyro\n")
    print("\n".join(f"- {line}" for line in [*info, load_line(), cache_line(args.cache)]))
    print(f"- model `{FORMULA}`, default priors, real data (73,421 rows); every row a fresh process; {DEFINITIONS}; "
          "min bulk ESS over the fixed effects, sigma and sds; peers: NumPyro NUTS by hand, non-centred (peer) and "
          "centred (peer-centred), float64, chains sequential, run shortened; ratios: ours (first row) against "
          "this side\n")
    print(markdown_table(HEADER, [row(r, ours) for r in results]))
    print("\n" + "\n".join(f"- {line}" for line in notes))


HEADER = ["side", "sampler", "chains×draws", *STANDARD_HEADER, "fit s", "max R-hat", "peak MiB", "ESS/s: ours / this",
          "s to ESS 400: this / ours"]
SIDES = ("ours", "peer", "peer-centred")

if __name__ == "__main__":
    main()
