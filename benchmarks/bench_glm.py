"""Benchmark NUTS on non-Gaussian multilevel models: logistic and Poisson (issue 5, parts 2 and 5).

Simulated data, 50,000 rows × 500 equal groups: ``eta = b0 + b1 x + a_g + s_g x``,
``(a_g, s_g) ~ N(0, Σ)`` (sds 1 and 0.5, correlation 0.3), ``x ~ N(0, 1)``; the
logistic model draws ``y ~ Bernoulli(logit⁻¹ eta)`` with ``b = (-0.5, 0.5)``,
the Poisson one ``y ~ Poisson(exp eta)`` with ``b = (0.5, 0.3)``. Model
``y ~ x + (1 + x | g)``, the library's default priors. Sides, each in a fresh
process (this script with ``--worker``): ours with ``ml.fit`` defaults (the
pilot run chooses the centring), ours forced centred and forced non-centred
(``centered=True/False``), and NumPyro NUTS on the full model written by hand with
the priors of ``fit.priors``, non-centred (``peer``, the model most users write) and
centred (``peer-centred``, the stronger peer here). ``--gradient`` times instead the
gradient of the log density alone (ours, both parameterisations, and the centred
peer's potential), at 20,000 × 200 and 50,000 × 500: µs per gradient per 1,000 rows,
the median of many calls of the compiled ``value_and_grad`` at one point. See
benchmarks/README.md. ``--quick`` is a smoke test whose numbers mean nothing.
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
from functools import partial
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
from common import (DEFINITIONS, STANDARD_HEADER, add_run_options, cache_environment, cache_line, ess_per_second,
                    load_line, machine_info, markdown_table, ours_split, peer_split, resolve_runs, seconds_to_ess,
                    standard_cells, text_table)
from multilevel.model import Prior, prior_from_string
from workers import CompileClock, correlated_slope_predictor

IMPORT_SECONDS = time.perf_counter() - PROCESS_START

FORMULA = "y ~ x + (1 + x | g)"
FAMILIES = {"logistic": "bernoulli", "poisson": "poisson"}
FIXED = {"logistic": (-0.5, 0.5), "poisson": (0.5, 0.3)}
SD, COR = (1.0, 0.5), 0.3
PARAMETERS = ("Intercept", "x", "sd(Intercept|g)", "sd(x|g)", "cor(Intercept,x|g)")
RESULT_PREFIX = "RESULT "
AGREEMENT_MCSE = 4.0
TARGET_RATIO = 40.0
TARGET_RATIO_CENTRED = 3.0
SIDES = ("ours", "ours-centred", "ours-noncentred", "ours-mwg", "peer", "peer-centred")
GRADIENT_SIZES = ((20_000, 200), (50_000, 500))
TARGET_GRADIENT_US = 15.0


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
    """``ml.fit`` with the default sampler and priors; ``centered`` as the side says
    (``ours-mwg``: the Metropolis-within-Gibbs sampler, no leapfrog steps)."""
    data = simulate(args.model, args.rows, args.groups, args.data_seed)
    centered = {"ours": None, "ours-centred": True, "ours-noncentred": False, "ours-mwg": None}[args.worker]
    sampler = "mwg" if args.worker == "ours-mwg" else "auto"
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is reported in the table instead
        fit = ml.fit(FORMULA, data, family=FAMILIES[args.model], chains=args.chains, draws=args.draws,
                     warmup=args.warmup, seed=args.seed, centered=centered, sampler=sampler, progress=False)
    end = time.perf_counter()
    stats = fit.idata.sample_stats
    info = fit.sampler_info
    return {"side": args.worker, "fit_seconds": end - start, "process_seconds": end - PROCESS_START,
            "split": ours_split(IMPORT_SECONDS, info["timings"]),
            "warmup": args.warmup, "draws": args.draws, "divergences": fit.num_divergent,
            "mean_steps": float(stats["n_steps"].mean()) if "n_steps" in stats else float("nan"),
            "centering": info["centering"]["g"] if "centering" in info else "mwg",
            **summarise({name: fit.idata.posterior[name].values for name in PARAMETERS}),
            "priors": dict(zip(fit.priors["parameter"], fit.priors["prior"]))}


def peer_model(model: str, priors: dict[str, Prior], centred: bool = False):
    """The model by hand, non-centred: ``r_g = diag(sd) L z_g``, ``z_g ~ N(0, I)``; or
    centred: ``beta_g ~ N((b0, b1), diag(sd) L Lᵀ diag(sd))`` and ``eta = beta_g0 + beta_g1 x``."""
    sd_names = ("sd(Intercept|g)", "sd(x|g)")

    def run(x, refs, num_groups, y):
        intercept = numpyro.sample("Intercept", numpyro_prior(priors["Intercept"]))
        slope = numpyro.sample("x", numpyro_prior(priors["x"]))
        sd = jnp.stack([numpyro.sample(name, numpyro_prior(priors[name])) for name in sd_names])
        chol = numpyro.sample("L", dist.LKJCholesky(2, priors["cor|g"].eta))
        eta = correlated_slope_predictor(centred, intercept, slope, sd, chol, num_groups, refs, x)
        likelihood = dist.BernoulliLogits(eta) if model == "logistic" else dist.Poisson(jnp.exp(eta))
        numpyro.sample("y", likelihood, obs=y)

    return run


def peer_worker(args: argparse.Namespace) -> dict:
    """NumPyro NUTS on the full model (non-centred or centred as the side says), float64,
    chains sequential."""
    clock = CompileClock(jax)
    data = simulate(args.model, args.rows, args.groups, args.data_seed)
    priors = {name: prior_from_string(text) for name, text in json.loads(args.priors).items()}
    centred = args.worker == "peer-centred"
    with jax.enable_x64(True):
        start = time.perf_counter()
        codes, levels = pd.factorize(data["g"], sort=True)
        mcmc = MCMC(NUTS(peer_model(args.model, priors, centred)), num_warmup=args.warmup, num_samples=args.draws,
                    num_chains=args.chains, chain_method="sequential", progress_bar=False)
        mcmc.run(jax.random.PRNGKey(args.seed), jnp.asarray(data["x"].to_numpy()),
                 jnp.asarray(codes, dtype=jnp.int32), len(levels), jnp.asarray(data["y"].to_numpy(), jnp.float64),
                 extra_fields=("diverging", "num_steps"))
        samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
        end = time.perf_counter()
        extra = mcmc.get_extra_fields()
    posterior = {name: np.asarray(samples[name]) for name in PARAMETERS if name in samples}
    posterior["cor(Intercept,x|g)"] = np.asarray(samples["L"][..., 1, 0])
    return {"side": args.worker, "fit_seconds": end - start, "process_seconds": end - PROCESS_START,
            "split": peer_split(IMPORT_SECONDS, clock.seconds, end - start),
            "warmup": args.warmup, "draws": args.draws, "divergences": int(np.asarray(extra["diverging"]).sum()),
            "mean_steps": float(np.asarray(extra["num_steps"]).mean()),
            "centering": "centred" if centred else "non-centred",
            **summarise(posterior)}


def gradient_microseconds(model: str, rows: int, groups: int, seed: int, repeats: int) -> dict[str, float]:
    """µs per gradient per 1,000 rows: median over ``repeats`` calls of the compiled
    ``value_and_grad`` of our log density (non-centred, centred) and of the centred peer's
    potential, each at one fixed point, in turn (so that load drifts hit all alike)."""
    from numpyro.infer.util import initialize_model

    from multilevel.model.logdensity import make_logdensity, model_data, structure
    from multilevel.model.record import build_model

    data = simulate(model, rows, groups, seed)
    built = build_model(FORMULA, data, family=FAMILIES[model])
    calls = {}
    with jax.enable_x64(True):
        start = jax.tree_util.tree_map(jnp.asarray, built.log_density()[1])
        gradient = jax.jit(jax.value_and_grad(make_logdensity(structure(built.layout, built.family))))
        for name, centred in (("ours non-centred", False), ("ours centred", True)):
            data_arrays = model_data(built.design, built.priors, (centred,), family=built.family)   # as NUTS has them
            calls[name] = partial(gradient, start, data_arrays)
        priors = dict(zip(built.priors.table()["parameter"], built.priors.table()["prior"]))
        codes, levels = pd.factorize(data["g"], sort=True)
        peer = initialize_model(jax.random.PRNGKey(0), peer_model(model, {k: prior_from_string(v) for k, v in
                                                                         priors.items()}, centred=True),
                                model_args=(jnp.asarray(data["x"].to_numpy()), jnp.asarray(codes, jnp.int32),
                                            len(levels), jnp.asarray(data["y"].to_numpy(), jnp.float64)))
        peer_gradient = jax.jit(jax.value_and_grad(peer.potential_fn))
        calls["peer centred"] = partial(peer_gradient, peer.param_info.z)
        times = {name: [] for name in calls}
        for call in calls.values():
            jax.block_until_ready(call())
        for _ in range(repeats):
            for name, call in calls.items():
                begin = time.perf_counter()
                jax.block_until_ready(call())
                times[name].append(time.perf_counter() - begin)
    return {name: 1e6 * float(np.median(t)) / (rows / 1000) for name, t in times.items()}


def gradient_report(args: argparse.Namespace, info: list[str]) -> None:
    """Print the gradient costs as a table and as Markdown."""
    header = ["model", "rows × groups", "ours non-centred µs", "ours centred µs", "peer centred µs",
              "peer / ours centred", f"target ≤ {TARGET_GRADIENT_US:g}"]
    sizes = ((5_000, 100),) if args.quick else GRADIENT_SIZES
    repeats = 20 if args.quick else args.repeats
    rows = []
    for model in args.models:
        for n, groups in sizes:
            us = gradient_microseconds(model, n, groups, args.data_seed, repeats)
            worst = max(us["ours non-centred"], us["ours centred"])
            rows.append([model, f"{n:,} × {groups:,}", f"{us['ours non-centred']:.1f}", f"{us['ours centred']:.1f}",
                         f"{us['peer centred']:.1f}", f"{us['peer centred'] / us['ours centred']:.2f}",
                         "met" if worst <= TARGET_GRADIENT_US else "NOT met"])
            print(text_table(header, rows[-1:]), flush=True)
    print("\n----- Markdown for benchmarks/RESULTS.md -----\n")
    print("\n".join(["## GLMM gradient cost: µs per gradient per 1,000 rows", "", *[f"- {line}" for line in info],
                     f"- model `{FORMULA}`; median of {repeats} calls of the compiled value_and_grad at one point, "
                     "the three sides in turn", "", markdown_table(header, rows)]))


def run_worker(side: str, model: str, args: argparse.Namespace, priors: dict | None = None,
               draws: int | None = None) -> dict:
    """Run one worker in a fresh Python process (``draws`` kept draws per chain, default
    ``args.draws``) and return its result."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", side, "--model", model,
               "--rows", str(args.rows), "--groups", str(args.groups), "--chains", str(args.chains),
               "--draws", str(args.draws if draws is None else draws), "--warmup", str(args.warmup),
               "--seed", str(args.seed),
               "--data-seed", str(args.data_seed)]
    if priors is not None:
        command += ["--priors", json.dumps(priors)]
    with cache_environment(args.cache) as env:
        completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, env=env)
    return json.loads(completed.stdout.strip().splitlines()[-1].removeprefix(RESULT_PREFIX))


# -- report ---------------------------------------------------------------------------

HEADER = ["model", "run", "side", "centring", *STANDARD_HEADER, "divergent", "mean leapfrog steps", "max R-hat",
          "ESS/s: / peer", "ESS/s: / centred peer", "s to ESS 400: peer / this", "s to ESS 400: centred peer / this"]


def row(model: str, run: str, result: dict, peer: dict | None, centred_peer: dict | None) -> list[str]:
    ratios = [f"{ess_per_second(result) / ess_per_second(p):.2f}" if p else "—" for p in (peer, centred_peer)]
    times = [f"{seconds_to_ess(p) / seconds_to_ess(result):.2f}" if p else "—" for p in (peer, centred_peer)]
    return [model, run, result["side"], result["centering"], *standard_cells(result), str(result["divergences"]),
            f"{result['mean_steps']:.1f}", f"{result['max_rhat']:.3f}", *ratios, *times]


def agreement_line(model: str, ours: dict, peer: dict, target: float) -> str:
    z = {n: (r["mean"] - peer["table"][n]["mean"]) / np.hypot(r["mcse_mean"], peer["table"][n]["mcse_mean"])
         for n, r in ours["table"].items()}
    far = {n: v for n, v in z.items() if abs(v) > AGREEMENT_MCSE}
    verdict = "agree" if not far else "differ: " + ", ".join(f"{n} (z = {v:.1f})" for n, v in far.items())
    ratio = ess_per_second(ours) / ess_per_second(peer)
    return (f"{model}: ours (defaults) / {peer['side']} min ESS/s {ratio:.2f} (target >= {target:g}: "
            f"{'met' if ratio >= target else 'NOT met'}); seconds to ESS 400, {peer['side']} / ours "
            f"{seconds_to_ess(peer) / seconds_to_ess(ours):.2f}; posterior means within {AGREEMENT_MCSE:g} MCSE: "
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
    add_run_options(parser)
    parser.add_argument("--seed", type=int, default=1, help="seed of the samplers (default 1)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the simulated data (default 0)")
    parser.add_argument("--gradient", action="store_true", help="time the gradient of the log density alone "
                        "(µs per gradient per 1,000 rows) instead of the fits")
    parser.add_argument("--repeats", type=int, default=300, help="calls per side timed by --gradient (default 300)")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=sorted(FAMILIES), help=argparse.SUPPRESS)
    parser.add_argument("--priors", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name, (full, quick) in dict(rows=(50_000, 5_000), groups=(500, 100)).items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    args.run_draws = resolve_runs(args)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker = peer_worker if args.worker.startswith("peer") else ours_worker
        print(RESULT_PREFIX + json.dumps(worker(args)))
        return
    info = machine_info()
    setting = (f"{args.rows:,} rows × {args.groups:,} groups; runs: "
               f"{', '.join(f'{r} {args.chains} chains × {d} draws' for r, d in args.run_draws.items())}, after "
               f"{args.warmup} warmup, seed {args.seed}, data seed {args.data_seed}")
    print("\n".join(info), setting + (" (--quick: smoke test, not a benchmark)" if args.quick else ""),
          sep="\n", flush=True)
    if args.gradient:
        gradient_report(args, info)
        return
    rows, notes = [], []
    for model in args.models:
        for run, draws in args.run_draws.items():
            name = f"{args.chains}×{draws}"
            results = {}
            for side in SIDES:
                if side not in args.sides:
                    continue
                print(f"\n{model}, {name}: {side} ...", flush=True)
                priors = next(r["priors"] for r in results.values() if "priors" in r) if side.startswith("peer") \
                    else None
                results[side] = run_worker(side, model, args, priors, draws)
            peer, centred_peer = results.get("peer"), results.get("peer-centred")
            model_rows = [row(model, name, r, peer, centred_peer) for r in results.values()]
            model_notes = [f"{name}: " + agreement_line(model, results["ours"], p, target)
                           for p, target in ((peer, TARGET_RATIO), (centred_peer, TARGET_RATIO_CENTRED))
                           if p and "ours" in results]
            print(text_table(HEADER, model_rows), *model_notes, sep="\n", flush=True)
            rows += model_rows
            notes += model_notes
    print("\n----- Markdown for benchmarks/RESULTS.md -----\n")
    print("\n".join(["## Non-Gaussian NUTS: logistic and Poisson, multilevel vs NumPyro", "",
                     *[f"- {line}" for line in info], f"- {load_line()}", f"- {cache_line(args.cache)}",
                     f"- model `{FORMULA}`, default priors; {setting}",
                     f"- every row is a fresh process; {DEFINITIONS}; min bulk ESS over the fixed effects, sds and "
                     "correlation; ratios: this side against the peers; peers: NumPyro NUTS written by hand, "
                     "non-centred (peer) and centred (peer-centred), "
                     "same priors, float64, chains sequential; ours: chains in parallel threads", "",
                     markdown_table(HEADER, rows), "", *[f"- {n}" for n in notes]]))


if __name__ == "__main__":
    sys.exit(main())
