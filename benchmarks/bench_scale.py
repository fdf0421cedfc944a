"""Benchmark the Gaussian fast path at scale: rows, memory and the cost of a gradient.

Simulated ``y = 1 + 0.5 x + a_g + s_g x + e``, ``(a_g, s_g) ~ N(0, Σ)`` (sds 1 and
0.5, correlation 0.3), ``x, e ~ N(0, 1)``, equal-sized groups; model ``y ~ x +
(1 + x | g)`` with the library's default priors. Parts: ``small`` (10⁵ rows ×
2,000 groups, ``ml.fit`` against the full model by hand in NumPyro NUTS with the
priors of ``fit.priors``, float64, non-centred (``peer``, what most users write) and
centred (``peer-centred``, ``beta_g ~ N(b, Σ)``), at the package defaults and a long
run), ``large`` (10⁶ rows × 10,000
groups, ours alone, against the issue's targets) and ``gradient`` (µs per
gradient of the collapsed log density at 10⁵ and 10⁷ rows, 2,000 groups).

Every fit and gradient size runs in a fresh process (this script with
``--worker``) that reports its wall time since start (imports, simulation and
compilation included), the fit's own wall time and its peak memory. See
benchmarks/README.md. ``--quick`` is a smoke test whose numbers mean nothing.
"""

# ruff: noqa: E402  (the imports follow the process-start time on purpose)
from __future__ import annotations

import time

PROCESS_START = time.perf_counter()  # before the heavy imports, so that they count

import argparse
import json
import resource
import subprocess
import sys
import warnings
from dataclasses import dataclass
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
from common import (DEFINITIONS, STANDARD_HEADER, add_run_options, cache_environment, cache_line, ess_per_second,
                    load_line, machine_info, markdown_table, ours_split, peer_split, resolve_runs, seconds_to_ess,
                    standard_cells, text_table)
from multilevel.design import build_design
from multilevel.design.suffstats import design_statistics
from multilevel.formula import parse_formula
from multilevel.inference.collapsed import collapsed_structure
from multilevel.model import Layout, Prior, get_family, prior_from_string, resolve_priors, zero_position
from multilevel.model.marginal import CollapsedData, make_collapsed_logdensity
from workers import CompileClock, correlated_slope_predictor

IMPORT_SECONDS = time.perf_counter() - PROCESS_START

FORMULA = "y ~ x + (1 + x | g)"
#: True values of the benchmarked parameters, named as in ``fit.summary()``.
TRUTH = {"Intercept": 1.0, "x": 0.5, "sigma": 1.0, "sd(Intercept|g)": 1.0, "sd(x|g)": 0.5,
         "cor(Intercept,x|g)": 0.3}
INTERVAL = 0.99
RESULT_PREFIX = "RESULT "
AGREEMENT_MCSE = 4.0
TARGET_SECONDS, TARGET_MIB, TARGET_RHAT, TARGET_GRADIENT_RATIO = 60.0, 4096.0, 1.01, 1.1
#: Gradients per timed loop, timed loops per size, and the step that chains each gradient to the last.
NUM_GRADIENTS, REPEATS, GRADIENT_STEP = 1000, 5, 1e-12


@dataclass(frozen=True)
class Size:
    """A simulated data set's rows and groups."""

    rows: int
    groups: int

    def __str__(self) -> str:
        return f"{self.rows:,} rows × {self.groups:,} groups"


FULL_SIZES = {"small": Size(100_000, 2_000), "large": Size(1_000_000, 10_000),
              "gradient": (Size(100_000, 2_000), Size(10_000_000, 2_000))}
QUICK_SIZES = {"small": Size(20_000, 200), "large": Size(50_000, 1_000),
               "gradient": (Size(20_000, 200), Size(200_000, 200))}


def simulate(size: Size, seed: int) -> pd.DataFrame:
    """Correlated random intercepts and slopes, every group with the same number of rows."""
    rng = np.random.default_rng(seed)
    sd_a, sd_s, cor = TRUTH["sd(Intercept|g)"], TRUTH["sd(x|g)"], TRUTH["cor(Intercept,x|g)"]
    cov = np.array([[sd_a ** 2, cor * sd_a * sd_s], [cor * sd_a * sd_s, sd_s ** 2]])
    effects = rng.multivariate_normal(np.zeros(2), cov, size=size.groups)
    g = rng.permutation(np.arange(size.rows) % size.groups)
    x = rng.normal(size=size.rows)
    y = (TRUTH["Intercept"] + TRUTH["x"] * x + effects[g, 0] + effects[g, 1] * x
         + rng.normal(0.0, TRUTH["sigma"], size.rows))
    return pd.DataFrame({"y": y, "x": x, "g": g})


def peak_mib() -> float:
    """Peak resident memory of this process so far (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def summarise(posterior: dict[str, np.ndarray]) -> dict:
    """``table``: mean, MCSE, bulk ESS, R-hat and the INTERVAL bounds of (chain, draw) arrays by name;
    ``min_ess`` and ``max_rhat`` over them."""
    diagnostics = az.summary(az.from_dict(posterior=posterior), kind="diagnostics", round_to="none")
    lo, hi = (1 - INTERVAL) / 2, 1 - (1 - INTERVAL) / 2
    table = {name: {"mean": float(draws.mean()), "low": float(np.quantile(draws, lo)),
                    "high": float(np.quantile(draws, hi)),
                    **{k: float(diagnostics.loc[name, k]) for k in ("mcse_mean", "ess_bulk", "r_hat")}}
             for name, draws in posterior.items()}
    return {"table": table, "min_ess": float(diagnostics["ess_bulk"].min()),
            "max_rhat": float(diagnostics["r_hat"].max())}


# -- workers: each runs in its own process and prints one RESULT line -----------------

def ours_worker(size: Size, args: argparse.Namespace) -> dict:
    """Fit with ``ml.fit`` and its default sampler and default priors."""
    data = simulate(size, args.data_seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is reported in the table instead
        fit = ml.fit(FORMULA, data, chains=args.chains, draws=args.draws, warmup=args.warmup,
                     seed=args.seed, progress=False)
    end = time.perf_counter()
    posterior = {name: fit.idata.posterior[name].values for name in TRUTH}
    return {"side": "ours", "sampler": fit.sampler_info["sampler"], "fit_seconds": end - start,
            "process_seconds": end - PROCESS_START, "split": ours_split(IMPORT_SECONDS, fit.sampler_info["timings"]),
            "warmup": args.warmup, "draws": args.draws, "divergences": fit.num_divergent,
            **summarise(posterior), "priors": dict(zip(fit.priors["parameter"], fit.priors["prior"])),
            "peak_mib": peak_mib()}


def numpyro_prior(prior: Prior) -> dist.Distribution:
    """The NumPyro distribution of one of the library's default priors."""
    if isinstance(prior, ml.Normal):
        return dist.Normal(prior.mean, prior.sd)
    if isinstance(prior, ml.HalfStudentT):
        return dist.FoldedDistribution(dist.StudentT(prior.df, 0.0, prior.scale))
    raise ValueError(f"no NumPyro translation of the prior {prior}")


def peer_model(priors: dict[str, Prior], centred: bool = False):
    """The model by hand, priors by our parameter names, non-centred: ``r_g = diag(sd) L z_g`` with
    ``z_g ~ N(0, I)``; or centred: ``beta_g ~ N((b0, b1), diag(sd) L Lᵀ diag(sd))`` sampled directly."""
    sd_names = ("sd(Intercept|g)", "sd(x|g)")

    def model(x, refs, num_groups, y):
        intercept = numpyro.sample("Intercept", numpyro_prior(priors["Intercept"]))
        slope = numpyro.sample("x", numpyro_prior(priors["x"]))
        sigma = numpyro.sample("sigma", numpyro_prior(priors["sigma"]))
        sd = jnp.stack([numpyro.sample(name, numpyro_prior(priors[name])) for name in sd_names])
        chol = numpyro.sample("L", dist.LKJCholesky(2, priors["cor|g"].eta))
        mu = correlated_slope_predictor(centred, intercept, slope, sd, chol, num_groups, refs, x)
        numpyro.sample("y", dist.Normal(mu, sigma), obs=y)

    return model


def peer_worker(size: Size, args: argparse.Namespace) -> dict:
    """NumPyro NUTS on the full model (centred for ``peer-centred``), float64, with the priors given in
    ``args.priors``."""
    clock = CompileClock(jax)
    data = simulate(size, args.data_seed)
    priors = {name: prior_from_string(text) for name, text in json.loads(args.priors).items()}
    with jax.enable_x64(True):
        start = time.perf_counter()
        codes, levels = pd.factorize(data["g"], sort=True)
        mcmc = MCMC(NUTS(peer_model(priors, args.worker == "peer-centred")), num_warmup=args.warmup,
                    num_samples=args.draws,
                    num_chains=args.chains, chain_method="sequential", progress_bar=False)
        mcmc.run(jax.random.PRNGKey(args.seed), jnp.asarray(data["x"].to_numpy()),
                 jnp.asarray(codes, dtype=jnp.int32), len(levels), jnp.asarray(data["y"].to_numpy()))
        samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
        end = time.perf_counter()
        divergences = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    posterior = {name: np.asarray(samples[name]) for name in TRUTH if name in samples}
    posterior["cor(Intercept,x|g)"] = np.asarray(samples["L"][..., 1, 0])
    return {"side": args.worker, "sampler": "numpyro NUTS", "fit_seconds": end - start,
            "process_seconds": end - PROCESS_START, "split": peer_split(IMPORT_SECONDS, clock.seconds, end - start),
            "warmup": args.warmup, "draws": args.draws, "divergences": divergences,
            **summarise(posterior), "peak_mib": peak_mib()}


def float64(tree):
    """Every leaf as a float64 JAX array but integer (index) leaves, as the collapsed sampler passes
    its data (call inside ``enable_x64``)."""
    return jax.tree_util.tree_map(
        lambda a: jnp.asarray(a) if np.issubdtype(np.asarray(a).dtype, np.integer) else jnp.asarray(a, jnp.float64),
        tree)


def gradient_loop(logdensity):
    """Jitted ``loop(position, data)``: NUM_GRADIENTS evaluations of ``value_and_grad`` in one
    ``fori_loop``. Each position moves by GRADIENT_STEP times the last gradient, so that no
    evaluation is loop-invariant (XLA could hoist it out of the loop)."""
    value_and_grad = jax.value_and_grad(logdensity)

    @jax.jit
    def loop(position, data):
        def body(_, carry):
            position, total = carry
            value, grad = value_and_grad(position, data)
            return jax.tree_util.tree_map(lambda p, g: p + GRADIENT_STEP * g, position, grad), total + value

        return jax.lax.fori_loop(0, NUM_GRADIENTS, body, (position, jnp.zeros(())))

    return loop


def gradient_worker(size: Size, args: argparse.Namespace) -> dict:
    """Time the design, the sufficient statistics and gradients of the collapsed log density."""
    frame = simulate(size, args.data_seed)
    start = time.perf_counter()
    design = build_design(parse_formula(FORMULA), frame)
    design_seconds = time.perf_counter() - start
    start = time.perf_counter()
    order = design.structure.order
    stats = design_statistics(design, order)
    stats_seconds = time.perf_counter() - start
    layout = Layout.of(design, get_family("gaussian"))
    priors = resolve_priors(design, layout, None)
    struct = collapsed_structure(layout, priors, order)
    # The collapsed sampler's position: no group effects, b only when it is not integrated out.
    # At zero: sigma = sds = 1, correlation 0, b = 0.
    full = zero_position(layout)
    position = full._replace(z=(), b=None if struct.integrate_fixed else full.b)
    loop = gradient_loop(make_collapsed_logdensity(struct))
    with jax.enable_x64(True):
        data = CollapsedData(float64(stats), float64(priors.values()))
        position = float64(position)
        start = time.perf_counter()
        jax.block_until_ready(loop(position, data))
        compile_seconds = time.perf_counter() - start
        timings = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            jax.block_until_ready(loop(position, data))
            timings.append(time.perf_counter() - start)
    return {"design_seconds": design_seconds, "stats_seconds": stats_seconds, "compile_seconds": compile_seconds,
            "us_per_gradient": 1e6 * min(timings) / NUM_GRADIENTS, "position": [f for f, v in zip(position._fields, position) if v is not None and not (isinstance(v, tuple) and not v)],
            "peak_mib": peak_mib()}


WORKERS = {"ours": ours_worker, "peer": peer_worker, "peer-centred": peer_worker, "gradient": gradient_worker}


def run_worker(role: str, size: Size, args: argparse.Namespace, priors: dict | None = None,
               draws: int | None = None) -> dict:
    """Run one worker in a fresh Python process (``draws`` kept draws per chain, default ``args.draws``)
    and return its result."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", role, "--rows", str(size.rows),
               "--groups", str(size.groups), "--chains", str(args.chains),
               "--draws", str(args.draws if draws is None else draws),
               "--warmup", str(args.warmup), "--seed", str(args.seed), "--data-seed", str(args.data_seed)]
    if priors is not None:
        command += ["--priors", json.dumps(priors)]
    with cache_environment(args.cache) as env:
        completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, env=env)
    line = completed.stdout.strip().splitlines()[-1]
    return json.loads(line.removeprefix(RESULT_PREFIX))


# -- report ---------------------------------------------------------------------------

FIT_HEADER = ["size", "run", "side", "sampler", *STANDARD_HEADER, "fit s", "divergent", "max R-hat", "peak MiB",
              f"truth in {INTERVAL:.0%}"]
GRADIENT_HEADER = ["size", "design s", "suff. stats s", "compile s", "µs per gradient", "peak MiB"]


def truth_misses(result: dict) -> list[str]:
    """Parameters whose true value lies outside the INTERVAL posterior interval."""
    return [n for n, row in result["table"].items() if not row["low"] <= TRUTH[n] <= row["high"]]


def fit_row(size: Size, result: dict) -> list[str]:
    """One row of FIT_HEADER."""
    misses = truth_misses(result)
    return [str(size), f"{result['chains']}×{result['draws']}", result["side"], result["sampler"],
            *standard_cells(result), f"{result['fit_seconds']:.1f}", str(result["divergences"]),
            f"{result['max_rhat']:.3f}", f"{result['peak_mib']:.0f}",
            "all" if not misses else "missed " + ", ".join(misses)]


def gradient_row(size: Size, result: dict) -> list[str]:
    """One row of GRADIENT_HEADER."""
    return [str(size), f"{result['design_seconds']:.2f}", f"{result['stats_seconds']:.3f}",
            f"{result['compile_seconds']:.1f}", f"{result['us_per_gradient']:.1f}", f"{result['peak_mib']:.0f}"]


def comparison_lines(ours: dict, peer: dict) -> list[str]:
    """Ratio ours/peer of min ESS/s and of the seconds to ESS 400, and the agreement of the posterior means."""
    ratio = ess_per_second(ours) / ess_per_second(peer)
    fit_only = (ours["min_ess"] / ours["fit_seconds"]) / (peer["min_ess"] / peer["fit_seconds"])
    z = {n: (row["mean"] - peer["table"][n]["mean"]) / np.hypot(row["mcse_mean"], peer["table"][n]["mcse_mean"])
         for n, row in ours["table"].items()}
    far = {n: v for n, v in z.items() if abs(v) > AGREEMENT_MCSE}
    agreement = ("agree" if not far else "differ: " + ", ".join(f"{n} (z = {v:.1f})" for n, v in far.items()))
    run = f"{ours['chains']}×{ours['draws']}, {peer['side']}"
    return [f"{run}: ratio ours/{peer['side']} of min ESS/s: {ratio:.1f} (whole process), {fit_only:.1f} (fit wall "
            f"only); seconds to ESS 400, {peer['side']} / ours: {seconds_to_ess(peer) / seconds_to_ess(ours):.1f}",
            f"{run}: posterior means within {AGREEMENT_MCSE:g} MCSE: {agreement} "
            f"(max |z| = {max(map(abs, z.values())):.1f})"]


def target_lines(result: dict) -> list[str]:
    """The large size against the issue's targets."""
    checks = [(f"whole process {result['process_seconds']:.1f} s < {TARGET_SECONDS:g} s",
               result["process_seconds"] < TARGET_SECONDS),
              (f"peak memory {result['peak_mib']:.0f} MiB < {TARGET_MIB:g} MiB", result["peak_mib"] < TARGET_MIB),
              (f"max R-hat {result['max_rhat']:.3f} <= {TARGET_RHAT}", result["max_rhat"] <= TARGET_RHAT),
              (f"true values inside the {INTERVAL:.0%} intervals", not truth_misses(result))]
    return [f"target: {text}: {'met' if ok else 'NOT met'}" for text, ok in checks]


def gradient_line(results: list[tuple[Size, dict]]) -> str:
    """The ratio of µs per gradient, large size over small, against the target."""
    (small, a), (large, b) = results
    ratio = b["us_per_gradient"] / a["us_per_gradient"]
    verdict = "met" if ratio <= TARGET_GRADIENT_RATIO else "NOT met"
    return (f"µs per gradient at {large.rows:,} / at {small.rows:,} rows: {ratio:.2f} "
            f"(target <= {TARGET_GRADIENT_RATIO}: {verdict}); position {', '.join(a['position'])}")






def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny sizes, 2 chains, 200 warmup, "
                        "200 draws (numbers mean nothing)")
    parser.add_argument("--only", nargs="+", choices=("small", "large", "gradient"),
                        default=["small", "large", "gradient"], help="which parts to run (default all)")
    parser.add_argument("--no-peer", action="store_true", help="skip NumPyro at the small size")
    add_run_options(parser)
    parser.add_argument("--seed", type=int, default=1, help="seed of the samplers (default 1)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the simulated data (default 0)")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--groups", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--priors", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.run_draws = resolve_runs(args)
    return args


def run_fits(parts: list[str], sizes: dict, args: argparse.Namespace) -> tuple[list, list[str]]:
    """Ours (and both peers at the small size) in fresh processes, each run at the small size, the
    default run at the large one; the rows and the notes under them."""
    fits, notes = [], []
    for part in ("small", "large"):
        if part not in parts:
            continue
        size = sizes[part]
        for run, draws in args.run_draws.items():
            if part == "large" and run != "default":
                continue
            print(f"\nours at {size}, {args.chains}×{draws} ...", flush=True)
            ours = {**run_worker("ours", size, args, draws=draws), "chains": args.chains}
            results, part_notes = [ours], []
            if part == "large":
                part_notes = target_lines(ours)
            elif not args.no_peer:
                for side in ("peer", "peer-centred"):
                    print(f"{side} at {size}, {args.chains}×{draws} ...", flush=True)
                    peer = {**run_worker(side, size, args, priors=ours["priors"], draws=draws), "chains": args.chains}
                    results.append(peer)
                    part_notes += comparison_lines(ours, peer)
            print(text_table(FIT_HEADER, [fit_row(size, r) for r in results]), *part_notes, sep="\n", flush=True)
            fits += [(size, r) for r in results]
            notes += part_notes
    return fits, notes


def run_gradients(sizes: tuple[Size, Size], args: argparse.Namespace) -> tuple[list, str]:
    """The gradient worker at both sizes, and the line comparing them."""
    gradients = []
    for size in sizes:
        print(f"\ngradient at {size} ...", flush=True)
        gradients.append((size, run_worker("gradient", size, args)))
    line = gradient_line(gradients)
    print(text_table(GRADIENT_HEADER, [gradient_row(s, r) for s, r in gradients]), line, sep="\n", flush=True)
    return gradients, line


def markdown_report(fits: list, gradients: list, notes: list[str], info: list[str],
                    args: argparse.Namespace) -> str:
    """All tables and notes as Markdown for benchmarks/RESULTS.md."""
    lines = ["## Scale: rows, memory and gradient cost", "", *[f"- {line}" for line in info], f"- {load_line()}",
             f"- {cache_line(args.cache)}",
             f"- model `{FORMULA}`, default priors, simulated data (data seed {args.data_seed}); runs: "
             f"{', '.join(f'{r} {args.chains} chains × {d} draws' for r, d in args.run_draws.items())} (large: "
             f"default only), after {args.warmup} warmup, seed {args.seed}",
             f"- every row is a fresh process; {DEFINITIONS}; min bulk ESS over the fixed effects, sigma, sds and "
             "correlation; peers: NumPyro NUTS, non-centred (peer) and centred (peer-centred), float64, chains "
             "sequential", ""]
    if fits:
        lines += [markdown_table(FIT_HEADER, [fit_row(s, r) for s, r in fits]), ""]
    if gradients:
        lines += [markdown_table(GRADIENT_HEADER, [gradient_row(s, r) for s, r in gradients]), ""]
    return "\n".join(lines + [f"- {note}" for note in notes])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        result = WORKERS[args.worker](Size(args.rows, args.groups), args)
        print(RESULT_PREFIX + json.dumps(result))
        return
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    info = machine_info()
    runs = ", ".join(f"{r} {args.chains} chains × {d} draws" for r, d in args.run_draws.items())
    print("\n".join(info), f"runs: {runs} after {args.warmup} warmup, seed {args.seed}, data seed {args.data_seed}"
          + (" (--quick: smoke test, not a benchmark)" if args.quick else ""), sep="\n", flush=True)
    fits, notes = run_fits(args.only, sizes, args)
    gradients = []
    if "gradient" in args.only:
        gradients, line = run_gradients(sizes["gradient"], args)
        notes.append(line)
    print("\n----- Markdown for benchmarks/RESULTS.md -----\n")
    print(markdown_report(fits, gradients, notes, info, args))


if __name__ == "__main__":
    sys.exit(main())
