"""Benchmark NUTS on non-Gaussian multilevel models: logistic and Poisson (issue 5, parts 2 and 5).

Simulated data, 50,000 rows × 500 equal groups: ``eta = b0 + b1 x + a_g + s_g x``,
``(a_g, s_g) ~ N(0, Σ)`` (sds 1 and 0.5, correlation 0.3), ``x ~ N(0, 1)``; the
logistic model draws ``y ~ Bernoulli(logit⁻¹ eta)`` with ``b = (-0.5, 0.5)``,
the Poisson one ``y ~ Poisson(exp eta)`` with ``b = (0.5, 0.3)``. Model
``y ~ x + (1 + x | g)``, the library's default priors. Sides, each in a fresh
process (this script with ``--worker``): ours with ``ml.fit`` defaults (the
pilot run chooses the centring), ours forced centred and forced non-centred
(``centered=True/False``), and NumPyro NUTS on the full non-centred model written
by hand with the priors of ``fit.priors``. See benchmarks/README.md.
``--quick`` is a smoke test whose numbers mean nothing.
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

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
from numpyro.infer import MCMC, NUTS

import multilevel as ml
from bench_scale import numpyro_prior
from common import machine_info, markdown_table, text_table
from multilevel.model import Prior, prior_from_string

FORMULA = "y ~ x + (1 + x | g)"
FAMILIES = {"logistic": "bernoulli", "poisson": "poisson"}
FIXED = {"logistic": (-0.5, 0.5), "poisson": (0.5, 0.3)}
SD, COR = (1.0, 0.5), 0.3
PARAMETERS = ("Intercept", "x", "sd(Intercept|g)", "sd(x|g)", "cor(Intercept,x|g)")
RESULT_PREFIX = "RESULT "
AGREEMENT_MCSE = 4.0
TARGET_RATIO = 3.0
SIDES = ("ours", "ours-centred", "ours-noncentred", "peer")


def simulate(model: str, rows: int, groups: int, seed: int) -> pd.DataFrame:
    """Correlated random intercepts and slopes on the link scale, equal groups."""
    rng = np.random.default_rng(seed)
    cov = np.array([[SD[0] ** 2, COR * SD[0] * SD[1]], [COR * SD[0] * SD[1], SD[1] ** 2]])
    effects = rng.multivariate_normal(np.zeros(2), cov, size=groups)
    g = rng.permutation(np.arange(rows) % groups)
    x = rng.normal(size=rows)
    b0, b1 = FIXED[model]
    eta = b0 + b1 * x + effects[g, 0] + effects[g, 1] * x
    y = rng.binomial(1, 1 / (1 + np.exp(-eta))) if model == "logistic" else rng.poisson(np.exp(eta))
    return pd.DataFrame({"y": y, "x": x, "g": g})


def summarise(posterior: dict[str, np.ndarray]) -> dict:
    """Mean, MCSE, bulk ESS and R-hat of (chain, draw) arrays by name; min ESS and max R-hat."""
    diagnostics = az.summary(az.from_dict(posterior=posterior), kind="diagnostics", round_to="none")
    table = {name: {"mean": float(draws.mean()),
                    **{k: float(diagnostics.loc[name, k]) for k in ("mcse_mean", "ess_bulk", "r_hat")}}
             for name, draws in posterior.items()}
    return {"table": table, "min_ess": float(diagnostics["ess_bulk"].min()),
            "max_rhat": float(diagnostics["r_hat"].max())}


# -- workers: each runs in its own process and prints one RESULT line -----------------

def ours_worker(args: argparse.Namespace) -> dict:
    """``ml.fit`` with the default (NUTS) sampler and priors; ``centered`` as the side says."""
    data = simulate(args.model, args.rows, args.groups, args.data_seed)
    centered = {"ours": None, "ours-centred": True, "ours-noncentred": False}[args.worker]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is reported in the table instead
        fit = ml.fit(FORMULA, data, family=FAMILIES[args.model], chains=args.chains, draws=args.draws,
                     warmup=args.warmup, seed=args.seed, centered=centered, progress=False)
    end = time.perf_counter()
    stats = fit.idata.sample_stats
    info = fit.sampler_info
    return {"side": args.worker, "fit_seconds": end - start, "process_seconds": end - PROCESS_START,
            "compile_seconds": info["compile_seconds"], "divergences": fit.num_divergent,
            "mean_steps": float(stats["n_steps"].mean()), "centering": info["centering"]["g"],
            **summarise({name: fit.idata.posterior[name].values for name in PARAMETERS}),
            "priors": dict(zip(fit.priors["parameter"], fit.priors["prior"]))}


def peer_model(model: str, priors: dict[str, Prior]):
    """The model by hand, non-centred: ``r_g = diag(sd) L z_g``, ``z_g ~ N(0, I)``."""
    sd_names = ("sd(Intercept|g)", "sd(x|g)")

    def run(x, refs, num_groups, y):
        intercept = numpyro.sample("Intercept", numpyro_prior(priors["Intercept"]))
        slope = numpyro.sample("x", numpyro_prior(priors["x"]))
        sd = jnp.stack([numpyro.sample(name, numpyro_prior(priors[name])) for name in sd_names])
        chol = numpyro.sample("L", dist.LKJCholesky(2, priors["cor|g"].eta))
        z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([num_groups, 2]).to_event(2))
        effects = z @ (sd[:, None] * chol).T
        eta = intercept + slope * x + effects[refs, 0] + effects[refs, 1] * x
        likelihood = dist.BernoulliLogits(eta) if model == "logistic" else dist.Poisson(jnp.exp(eta))
        numpyro.sample("y", likelihood, obs=y)

    return run


def peer_worker(args: argparse.Namespace) -> dict:
    """NumPyro NUTS on the full non-centred model, float64, chains sequential."""
    data = simulate(args.model, args.rows, args.groups, args.data_seed)
    priors = {name: prior_from_string(text) for name, text in json.loads(args.priors).items()}
    with jax.enable_x64(True):
        start = time.perf_counter()
        codes, levels = pd.factorize(data["g"], sort=True)
        mcmc = MCMC(NUTS(peer_model(args.model, priors)), num_warmup=args.warmup, num_samples=args.draws,
                    num_chains=args.chains, chain_method="sequential", progress_bar=False)
        mcmc.run(jax.random.PRNGKey(args.seed), jnp.asarray(data["x"].to_numpy()),
                 jnp.asarray(codes, dtype=jnp.int32), len(levels), jnp.asarray(data["y"].to_numpy(), jnp.float64),
                 extra_fields=("diverging", "num_steps"))
        samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
        end = time.perf_counter()
        extra = mcmc.get_extra_fields()
    posterior = {name: np.asarray(samples[name]) for name in PARAMETERS if name in samples}
    posterior["cor(Intercept,x|g)"] = np.asarray(samples["L"][..., 1, 0])
    return {"side": "peer", "fit_seconds": end - start, "process_seconds": end - PROCESS_START,
            "compile_seconds": float("nan"), "divergences": int(np.asarray(extra["diverging"]).sum()),
            "mean_steps": float(np.asarray(extra["num_steps"]).mean()), "centering": "non-centred",
            **summarise(posterior)}


def run_worker(side: str, model: str, args: argparse.Namespace, priors: dict | None = None) -> dict:
    """Run one worker in a fresh Python process and return its result."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", side, "--model", model,
               "--rows", str(args.rows), "--groups", str(args.groups), "--chains", str(args.chains),
               "--draws", str(args.draws), "--warmup", str(args.warmup), "--seed", str(args.seed),
               "--data-seed", str(args.data_seed)]
    if priors is not None:
        command += ["--priors", json.dumps(priors)]
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1].removeprefix(RESULT_PREFIX))


# -- report ---------------------------------------------------------------------------

HEADER = ["model", "side", "centring", "fit s", "compile s", "process s", "divergent", "mean leapfrog steps",
          "min bulk ESS", "max R-hat", "min ESS/s", "ratio to peer"]


def ess_per_second(result: dict) -> float:
    return result["min_ess"] / result["process_seconds"]


def row(model: str, result: dict, peer: dict | None) -> list[str]:
    ratio = f"{ess_per_second(result) / ess_per_second(peer):.2f}" if peer else "—"
    return [model, result["side"], result["centering"], f"{result['fit_seconds']:.1f}",
            f"{result['compile_seconds']:.1f}", f"{result['process_seconds']:.1f}", str(result["divergences"]),
            f"{result['mean_steps']:.1f}", f"{result['min_ess']:.0f}", f"{result['max_rhat']:.3f}",
            f"{ess_per_second(result):.2f}", ratio]


def agreement_line(model: str, ours: dict, peer: dict) -> str:
    z = {n: (r["mean"] - peer["table"][n]["mean"]) / np.hypot(r["mcse_mean"], peer["table"][n]["mcse_mean"])
         for n, r in ours["table"].items()}
    far = {n: v for n, v in z.items() if abs(v) > AGREEMENT_MCSE}
    verdict = "agree" if not far else "differ: " + ", ".join(f"{n} (z = {v:.1f})" for n, v in far.items())
    ratio = ess_per_second(ours) / ess_per_second(peer)
    return (f"{model}: ours (defaults) / peer min ESS/s {ratio:.2f} (target >= {TARGET_RATIO:g}: "
            f"{'met' if ratio >= TARGET_RATIO else 'NOT met'}); posterior means within {AGREEMENT_MCSE:g} MCSE: "
            f"{verdict} (max |z| = {max(map(abs, z.values())):.1f})")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: 5,000 rows × 100 groups, 2 chains, "
                        "200 warmup, 200 draws (numbers mean nothing)")
    parser.add_argument("--models", nargs="+", choices=sorted(FAMILIES), default=["logistic", "poisson"])
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES),
                        help="which fits to run (default all; the peer needs ours for its priors)")
    parser.add_argument("--rows", type=int, help="rows (default 50,000)")
    parser.add_argument("--groups", type=int, help="groups (default 500)")
    parser.add_argument("--chains", type=int, help="chains of every side (default 4)")
    parser.add_argument("--draws", type=int, help="kept draws per chain (default 1000)")
    parser.add_argument("--warmup", type=int, help="warmup iterations per chain (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the samplers (default 1)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the simulated data (default 0)")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=sorted(FAMILIES), help=argparse.SUPPRESS)
    parser.add_argument("--priors", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    defaults = dict(rows=(50_000, 5_000), groups=(500, 100), chains=(4, 2), draws=(1000, 200), warmup=(1000, 200))
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker = peer_worker if args.worker == "peer" else ours_worker
        print(RESULT_PREFIX + json.dumps(worker(args)))
        return
    info = machine_info()
    setting = (f"{args.rows:,} rows × {args.groups:,} groups; {args.chains} chains × {args.draws} draws after "
               f"{args.warmup} warmup, seed {args.seed}, data seed {args.data_seed}")
    print("\n".join(info), setting + (" (--quick: smoke test, not a benchmark)" if args.quick else ""),
          sep="\n", flush=True)
    rows, notes = [], []
    for model in args.models:
        results = {}
        for side in ("ours", "ours-centred", "ours-noncentred", "peer"):
            if side not in args.sides:
                continue
            print(f"\n{model}: {side} ...", flush=True)
            priors = results["ours"]["priors"] if side == "peer" else None
            results[side] = run_worker(side, model, args, priors)
        peer = results.get("peer")
        model_rows = [row(model, r, peer) for r in results.values()]
        model_notes = [agreement_line(model, results["ours"], peer)] if peer and "ours" in results else []
        print(text_table(HEADER, model_rows), *model_notes, sep="\n", flush=True)
        rows += model_rows
        notes += model_notes
    print("\n----- Markdown for benchmarks/RESULTS.md -----\n")
    print("\n".join(["## Non-Gaussian NUTS: logistic and Poisson, multilevel vs NumPyro", "",
                     *[f"- {line}" for line in info],
                     f"- model `{FORMULA}`, default priors; {setting}",
                     "- every row is a fresh process; process s = its wall time since start (imports, simulation, "
                     "compilation, fit); min ESS/s = min bulk ESS over the fixed effects, sds and correlation / "
                     "process s; peer: NumPyro NUTS written by hand, non-centred, same priors, float64, chains "
                     "sequential; ours: chains in parallel threads", "",
                     markdown_table(HEADER, rows), "", *[f"- {n}" for n in notes]]))


if __name__ == "__main__":
    sys.exit(main())
