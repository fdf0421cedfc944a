"""Benchmark the addition terms ``se()`` and ``weights()`` against NumPyro (issue 13).

Two models:

- ``eight_schools``: ``est | se(se) ~ 1 + (1 | school)`` on ``../shared/data/eight_schools.csv``
  (skipped, with a message, when the file is absent), its ``est`` and ``se`` rounded to whole
  numbers, which are posteriordb's data (checked when ``../shared/data/posteriordb/`` is
  there), with posteriordb's priors for ``eight_schools_noncentered``: mu ~ Normal(0, 5),
  tau ~ half-Cauchy(0, 5);
- ``weighted``: ``y | weights(w) ~ x + (1 | g)``, simulated with NumPy (fixed seed): 100,000
  rows in 1,000 groups of unequal sizes (each row's group uniform), ``x ~ N(0, 1)``,
  ``y = 1 + 0.5 x + a_g + e``, ``a_g ~ N(0, 0.5)``, ``e ~ N(0, 1)``, real positive weights
  ``w ~ Gamma(2, scale 0.5)`` (mean 1); explicit priors on both sides.

Sides, each in a fresh process (this script with ``--worker``) whose whole wall time counts
(imports, data, compilation, sampling): ours (``ml.fit`` defaults, sampler "auto", which
should choose the exact collapsed sampler for both), and NumPyro NUTS written by hand on the
same posterior, float64, chains sequential, in two versions: non-centred group effects
(``theta = mu + tau z``, ``z ~ N(0, 1)``: posteriordb's model and what most users write) and
centred ones (``theta ~ N(mu, tau)``: the funnel of eight schools, the stronger peer when the
data pin the groups, as in the weighted model). The weighted peers add the weighted
log-likelihood ``sum_i w_i log N(y_i | eta_i, sigma)`` with ``numpyro.factor``.

Measured per side: the standard columns of ``common.py`` (process s, min bulk ESS (ArviZ)
over the fixed effects, sigma and the sd, min ESS/s, seconds to a min bulk ESS of 400, the
split of the process's time); divergences; whether the posterior means of ours and of each peer agree
within 4 combined Monte Carlo standard errors (eight schools: mu, tau and the eight thetas);
and, for eight schools, every side's means and sds against posteriordb's reference draws in
MCSE units. Two settings: the user defaults (4 chains × 1000 draws after 1000 warmup) and a
long run (4 × 5000). See benchmarks/README.md. ``--quick`` is a smoke test whose numbers mean
nothing.
"""

# ruff: noqa: E402  (the imports follow the process-start time on purpose)
from __future__ import annotations

import time

PROCESS_START = time.perf_counter()  # before the heavy imports, so that they count

import argparse
import csv
import json
import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from common import (DEFINITIONS, RATIO_HEADER, STANDARD_HEADER, TARGET_ESS, add_run_options, cache_line, ess_per_second,
                    load_line, machine_info, markdown_table, ours_split, peer_split, ratio_cells, resolve_runs,
                    run_worker_process, seconds_to_ess, standard_cells, text_table)
from workers import CompileClock, check_priors

# Only NumPy is imported for every process: a peer worker imports JAX and NumPyro, ours
# imports multilevel, and neither pays for the other's imports.

RESULT_PREFIX = "RESULT "
AGREEMENT_MCSE = 4.0
SIDES = ("ours", "peer-noncentred", "peer-centred")
PEERS = SIDES[1:]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EIGHT_SCHOOLS = SHARED_DATA / "eight_schools.csv"
POSTERIORDB = SHARED_DATA / "posteriordb"
SCHOOLS = 8


@dataclass(frozen=True)
class Spec:
    """One benchmarked model: formula, priors (class name, arguments) by our parameter names,
    the parameters whose min ESS is measured and those whose means are compared."""

    formula: str
    priors: dict
    measured: tuple[str, ...]
    compared: tuple[str, ...]
    rows: int
    groups: int


SPECS = {
    "eight_schools": Spec("est | se(se) ~ 1 + (1 | school)",
                          {"Intercept": ("Normal", {"mean": 0.0, "sd": 5.0}),
                           "sd(Intercept|school)": ("HalfCauchy", {"scale": 5.0})},
                          ("mu", "tau"), ("mu", "tau", *(f"theta[{j}]" for j in range(1, SCHOOLS + 1))),
                          SCHOOLS, SCHOOLS),
    "weighted": Spec("y | weights(w) ~ x + (1 | g)",
                     {"Intercept": ("Normal", {"mean": 0.0, "sd": 10.0}), "x": ("Normal", {"mean": 0.0, "sd": 5.0}),
                      "sigma": ("HalfStudentT", {"df": 3.0, "scale": 2.5}),
                      "sd(Intercept|g)": ("HalfStudentT", {"df": 3.0, "scale": 2.5})},
                     ("Intercept", "x", "sigma", "sd(Intercept|g)"), ("Intercept", "x", "sigma", "sd(Intercept|g)"),
                     100_000, 1_000),
}
QUICK_SIZE = (5_000, 50)   # rows × groups of the weighted model with --quick


def eight_schools() -> dict[str, np.ndarray]:
    """The file's schools, ``est`` and ``se``, rounded to whole numbers (posteriordb's data)."""
    with EIGHT_SCHOOLS.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {"school": np.array([r["school"] for r in rows]), "est": np.round([float(r["est"]) for r in rows]),
            "se": np.round([float(r["se"]) for r in rows])}


def simulate_weighted(rows: int, groups: int, seed: int) -> dict[str, np.ndarray]:
    """Columns ``y``, ``x``, group codes ``g`` (each row's group uniform) and weights ``w``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    g = rng.integers(groups, size=rows)
    w = rng.gamma(2.0, 0.5, rows)
    y = 1.0 + 0.5 * x + rng.normal(0.0, 0.5, groups)[g] + rng.normal(size=rows)
    return {"y": y, "x": x, "g": g, "w": w}


def reference_draws() -> dict[str, np.ndarray]:
    """posteriordb's reference draws of eight_schools_noncentered, (chain, draw) by name."""
    with zipfile.ZipFile(POSTERIORDB / "eight_schools-eight_schools_noncentered.draws.json.zip") as archive:
        chains = json.loads(archive.read(archive.namelist()[0]))
    return {name: np.array([chain[name] for chain in chains]) for name in chains[0]}


def summarise(posterior: dict[str, np.ndarray], measured: tuple[str, ...]) -> dict:
    """Mean, sd, their MCSEs, bulk ESS and R-hat (ArviZ) of (chain, draw) arrays by name; the
    minimum bulk ESS over ``measured``, the parameter that has it, and their maximum R-hat."""
    import arviz as az

    diagnostics = az.summary(az.from_dict(posterior=posterior), kind="diagnostics", round_to="none")
    table = {name: {"mean": float(draws.mean()), "sd": float(draws.std(ddof=1)),
                    **{k: float(diagnostics.loc[name, k]) for k in ("mcse_mean", "mcse_sd", "ess_bulk", "r_hat")}}
             for name, draws in posterior.items()}
    measured_diagnostics = diagnostics.loc[list(measured)]
    return {"table": table, "min_ess": float(measured_diagnostics["ess_bulk"].min()),
            "limiting": str(measured_diagnostics["ess_bulk"].idxmin()),
            "max_rhat": float(measured_diagnostics["r_hat"].max())}


# -- workers: each runs in its own process and prints one RESULT line -----------------

def ours_worker(args: argparse.Namespace) -> dict:
    """``ml.fit`` with its default sampler and the model's explicit priors."""
    import jax
    import pandas as pd

    import multilevel as ml

    imports = time.perf_counter() - PROCESS_START
    clock = CompileClock(jax)
    spec = SPECS[args.model]
    data = eight_schools() if args.model == "eight_schools" else simulate_weighted(args.rows, args.groups,
                                                                                    args.data_seed)
    priors = {name: getattr(ml, cls)(**kw) for name, (cls, kw) in spec.priors.items()}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is reported in the table instead
        fit = ml.fit(spec.formula, pd.DataFrame(data), priors=priors, chains=args.chains, draws=args.draws,
                     warmup=args.warmup, seed=args.seed, progress=False)
    end = time.perf_counter()
    info = fit.sampler_info
    stats, posterior = fit.idata.sample_stats, fit.idata.posterior
    if args.model == "eight_schools":
        mu = posterior["Intercept"].values
        draws = {"mu": mu, "tau": posterior["sd(Intercept|school)"].values,
                 **{f"theta[{j + 1}]": mu + posterior["Intercept|school"].sel(school=school).values
                    for j, school in enumerate(data["school"])}}
    else:
        draws = {name: posterior[name].values for name in spec.compared}
    steps = float(stats["n_steps"].mean()) if "n_steps" in stats else float("nan")
    group = "school" if args.model == "eight_schools" else "g"
    centring = info.get("centering", {}).get(group, "exact" if info["sampler"] in ("collapsed", "gibbs") else "?")
    return {"side": "ours", "sampler": info["sampler"], "reason": info["reason"], "centring": centring,
            "fit_seconds": end - start, "process_seconds": end - PROCESS_START, "compile_seconds": clock.seconds,
            "sampling_seconds": info["sampling_seconds"], "split": ours_split(imports, info["timings"]),
            "divergences": fit.num_divergent, "mean_steps": steps, "priors": dict(zip(fit.priors["parameter"], fit.priors["prior"])),
            **summarise(draws, spec.measured)}


def peer_model(model: str, centred: bool):
    """The NumPyro model by hand: eight schools with arguments ``(se, y)``, the weighted model
    with ``(x, g, w, num_groups, y)``; group effects centred (``theta ~ N(mu, tau)``) or not
    (``theta = mu + tau z``, ``z ~ N(0, 1)``)."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    priors = SPECS[model].priors

    def prior(name: str):
        cls, kw = priors[name]
        if cls == "Normal":
            return dist.Normal(kw["mean"], kw["sd"])
        if cls == "HalfCauchy":
            return dist.HalfCauchy(kw["scale"])
        if cls == "HalfStudentT":
            return dist.FoldedDistribution(dist.StudentT(kw["df"], 0.0, kw["scale"]))
        raise ValueError(f"no NumPyro translation of the prior {cls}{kw}")

    def group_effects(name: str, location, sd, num_groups: int):
        if centred:
            return numpyro.sample(name, dist.Normal(location, sd).expand([num_groups]).to_event(1))
        z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([num_groups]).to_event(1))
        return numpyro.deterministic(name, location + sd * z)

    def schools(se, y):
        mu = numpyro.sample("mu", prior("Intercept"))
        tau = numpyro.sample("tau", prior("sd(Intercept|school)"))
        theta = group_effects("theta", mu, tau, len(y))
        numpyro.sample("y", dist.Normal(theta, se), obs=y)

    def weighted(x, g, w, num_groups, y):
        intercept = numpyro.sample("Intercept", prior("Intercept"))
        slope = numpyro.sample("x", prior("x"))
        sigma = numpyro.sample("sigma", prior("sigma"))
        sd = numpyro.sample("sd(Intercept|g)", prior("sd(Intercept|g)"))
        eta = group_effects("r", intercept, sd, num_groups)[g] + slope * x
        numpyro.factor("y", jnp.sum(w * dist.Normal(eta, sigma).log_prob(y)))

    return schools if model == "eight_schools" else weighted


def peer_worker(args: argparse.Namespace) -> dict:
    """NumPyro NUTS on the model written by hand, float64, chains sequential."""
    import jax
    import jax.numpy as jnp
    import numpyro
    from numpyro.infer import MCMC, NUTS

    imports = time.perf_counter() - PROCESS_START
    numpyro.enable_x64()
    clock = CompileClock(jax)
    spec = SPECS[args.model]
    centred = args.worker == "peer-centred"
    if args.model == "eight_schools":
        data = eight_schools()
        arguments = (jnp.asarray(data["se"]), jnp.asarray(data["est"]))
    else:
        data = simulate_weighted(args.rows, args.groups, args.data_seed)
        arguments = (jnp.asarray(data["x"]), jnp.asarray(data["g"], dtype=jnp.int32), jnp.asarray(data["w"]),
                     args.groups, jnp.asarray(data["y"]))
    start = time.perf_counter()
    mcmc = MCMC(NUTS(peer_model(args.model, centred)), num_warmup=args.warmup, num_samples=args.draws,
                num_chains=args.chains, chain_method="sequential", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(args.seed), *arguments, extra_fields=("diverging", "num_steps"))
    samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    end = time.perf_counter()
    extra = mcmc.get_extra_fields()
    if args.model == "eight_schools":
        theta = np.asarray(samples["theta"])
        draws = {"mu": np.asarray(samples["mu"]), "tau": np.asarray(samples["tau"]),
                 **{f"theta[{j + 1}]": theta[..., j] for j in range(theta.shape[-1])}}
    else:
        draws = {name: np.asarray(samples[name]) for name in spec.compared}
    return {"side": args.worker, "sampler": "numpyro NUTS", "centring": "centred" if centred else "non-centred",
            "fit_seconds": end - start, "process_seconds": end - PROCESS_START, "compile_seconds": clock.seconds,
            "sampling_seconds": end - start - clock.seconds,
            "split": peer_split(imports, clock.seconds, end - start),
            "divergences": int(np.asarray(extra["diverging"]).sum()),
            "mean_steps": float(np.asarray(extra["num_steps"]).mean()), **summarise(draws, spec.measured)}


def run_worker(side: str, model: str, setting: dict, args: argparse.Namespace) -> dict:
    """Run one worker in a fresh Python process and return its result, or ``{"error": ...}``."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", side, "--model", model,
               "--rows", str(setting["rows"]), "--groups", str(setting["groups"]),
               "--chains", str(setting["chains"]), "--draws", str(setting["draws"]),
               "--warmup", str(setting["warmup"]), "--seed", str(args.seed), "--data-seed", str(args.data_seed)]
    result = run_worker_process(command, side, args.cache, RESULT_PREFIX)
    return result if "error" in result else {**result, **{k: setting[k] for k in ("chains", "draws", "warmup")}}


# -- report ---------------------------------------------------------------------------

HEADER = ["model", "run", "side", "sampler", "centring", *STANDARD_HEADER, "divergent", "mean leapfrog steps",
          "limiting parameter", "max R-hat", *RATIO_HEADER]
REFERENCE_HEADER = ["side", "parameter", "mean", "posteriordb mean", "z (mean)", "sd", "posteriordb sd", "z (sd)"]


def row(model: str, run: str, result: dict, ours: dict | None) -> list[str]:
    if "error" in result:
        return [model, run, result["side"], "failed: " + result["error"][:80], *["—"] * (len(HEADER) - 4)]
    return [model, run, result["side"], result["sampler"], result["centring"], *standard_cells(result),
            str(result["divergences"]), f"{result['mean_steps']:.1f}", result["limiting"],
            f"{result['max_rhat']:.3f}", *ratio_cells(ours, result)]


def z_scores(a: dict, b: dict, value: str) -> dict[str, float]:
    """|difference| of ``value`` (``mean`` or ``sd``) between two tables in combined MCSE, by name."""
    return {n: abs(r[value] - b[n][value]) / np.hypot(r[f"mcse_{value}"], b[n][f"mcse_{value}"]) for n, r in a.items()}


def agreement(what: str, a: dict, b: dict, values: tuple[str, ...]) -> str:
    """Whether the ``values`` of tables ``a`` and ``b`` agree within ``AGREEMENT_MCSE``, in one line."""
    far, largest = [], {}
    for value in values:
        z = z_scores(a, b, value)
        largest[value] = max(z.values())
        far += [f"{value} of {n} ({a[n][value]:.3f} against {b[n][value]:.3f}, z = {v:.1f})"
                for n, v in z.items() if v > AGREEMENT_MCSE]
    return (f"{what} within {AGREEMENT_MCSE:g} MCSE: " + ("agree" if not far else "differ: " + ", ".join(far))
            + " (" + ", ".join(f"max |z| of the {v}s {largest[v]:.1f}" for v in values) + ")")


def notes(model: str, run: str, results: dict[str, dict]) -> list[str]:
    """Ours / the better peer on process, time to ESS 400 and sampling seconds; divergences; agreement."""
    ours = results.get("ours")
    peers = [results[p] for p in PEERS if p in results and "error" not in results[p]]
    lines = [f"{model}, {run}: {r['side']}: divergent transitions after warmup: {r['divergences']} of "
             f"{r['chains'] * r['draws']} draws" for r in results.values() if "error" not in r and r["divergences"]]
    if ours is None or "error" in ours or not peers:
        return lines
    best = max(peers, key=ess_per_second)
    sampling = (ours["min_ess"] / ours["sampling_seconds"]) / (best["min_ess"] / best["sampling_seconds"])
    lines.append(f"{model}, {run}: ours / better peer ({best['side']}): min ESS/s "
                 f"{ess_per_second(ours) / ess_per_second(best):.2f}, seconds to ESS {TARGET_ESS:g} (peer / ours) "
                 f"{seconds_to_ess(best) / seconds_to_ess(ours):.2f}, min ESS/s on sampling seconds alone "
                 f"{sampling:.2f}; ours spent {ours['compile_seconds']:.1f} of its {ours['process_seconds']:.1f} "
                 f"process s compiling, the peer {best['compile_seconds']:.1f} of {best['process_seconds']:.1f}")
    for peer in peers:
        lines.append(f"{model}, {run}: " + agreement(f"posterior means of ours and {peer['side']}", ours["table"],
                                                     peer["table"], ("mean",)))
    return lines


def posteriordb_check(results: dict[str, dict], run: str) -> tuple[list[str], list[list[str]]]:
    """Every side's means and sds of mu, tau and the thetas against posteriordb's reference draws
    (10 chains × 1000, Stan NUTS), in combined MCSE: one line per side, and ours's table."""
    reference = summarise(reference_draws(), SPECS["eight_schools"].measured)["table"]
    lines, rows = [], []
    for result in results.values():
        if "error" in result:
            continue
        table = result["table"]
        lines.append(f"eight_schools, {run}: " + agreement(f"{result['side']} and posteriordb's reference, "
                                                           "means and sds,", table, reference, ("mean", "sd")))
        if result["side"] == "ours":
            z_mean, z_sd = z_scores(table, reference, "mean"), z_scores(table, reference, "sd")
            rows += [["ours", n, f"{table[n]['mean']:.3f}", f"{reference[n]['mean']:.3f}", f"{z_mean[n]:.1f}",
                      f"{table[n]['sd']:.3f}", f"{reference[n]['sd']:.3f}", f"{z_sd[n]:.1f}"] for n in table]
    return lines, rows


def data_check() -> str:
    """Whether the rounded file is posteriordb's eight-schools data."""
    with zipfile.ZipFile(POSTERIORDB / "eight_schools.json.zip") as archive:
        reference = json.loads(archive.read(archive.namelist()[0]))
    data = eight_schools()
    same = np.array_equal(data["est"], reference["y"]) and np.array_equal(data["se"], reference["sigma"])
    return ("eight_schools: the file's est and se rounded are posteriordb's y and sigma" if same else
            "eight_schools: THE ROUNDED FILE IS NOT posteriordb's data: the reference check compares "
            "different posteriors")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"smoke test: weighted model {QUICK_SIZE[0]} rows × "
                        f"{QUICK_SIZE[1]} groups, 2 chains × 200 draws after 200 warmup, no long run "
                        "(numbers mean nothing)")
    parser.add_argument("--models", nargs="+", choices=list(SPECS), default=list(SPECS))
    parser.add_argument("--only", nargs="+", choices=[*SIDES, "peer"], default=list(SIDES),
                        help="which sides to run (default all; peer = both peers)")
    add_run_options(parser)
    parser.add_argument("--seed", type=int, default=1, help="seed of the samplers (default 1)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the simulated data (default 0)")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=list(SPECS), help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--groups", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    resolve_runs(args)
    if "peer" in args.only:
        args.only = [s for s in SIDES if s in args.only or s in PEERS]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker = ours_worker if args.worker == "ours" else peer_worker
        print(RESULT_PREFIX + json.dumps(worker(args), default=str))
        return
    info = machine_info()
    runs = {"default": args.draws, "long": args.long_draws}
    run_names = {r: f"{args.chains}×{runs[r]}" for r in args.runs}
    sizes = {m: QUICK_SIZE if args.quick and m == "weighted" else (SPECS[m].rows, SPECS[m].groups)
             for m in args.models}
    setting_line = (f"runs: {', '.join(f'{r} {args.chains} chains × {runs[r]} draws' for r in args.runs)}, "
                    f"after {args.warmup} warmup; seed {args.seed}, data seed {args.data_seed}")
    print("\n".join(info), setting_line + (" (--quick: smoke test, not a benchmark)" if args.quick else ""),
          sep="\n", flush=True)
    models = list(args.models)
    all_rows, all_notes, reference_rows = [], [], []
    if "eight_schools" in models and not EIGHT_SCHOOLS.exists():
        message = f"eight_schools: skipped: {EIGHT_SCHOOLS} is absent (the real data set beside the repository)"
        print("\n" + message, flush=True)
        all_notes.append(message)
        models.remove("eight_schools")
    with_reference = "eight_schools" in models and POSTERIORDB.is_dir()
    if "eight_schools" in models:
        message = data_check() if with_reference else f"eight_schools: no reference check: {POSTERIORDB} is absent"
        print("\n" + message, flush=True)
        all_notes.append(message)
    for model in models:
        rows, groups = sizes[model]
        for run in args.runs:
            setting = dict(rows=rows, groups=groups, chains=args.chains, draws=runs[run], warmup=args.warmup)
            results, model_notes = {}, []
            for side in args.only:
                print(f"\n{model}, {run_names[run]}: {side} ...", flush=True)
                results[side] = run_worker(side, model, setting, args)
            ours = results.get("ours")
            ours = ours if ours and "error" not in ours else None
            if ours:
                model_notes += check_priors(model, ours, SPECS[model].priors)
                expected = "" if ours["sampler"] == "collapsed" else " (NOT the exact collapsed sampler)"
                model_notes.append(f"{model}, {run_names[run]}: ours: sampler {ours['sampler']}{expected} "
                                   f"({ours['reason']})")
            table_rows = [row(model, run_names[run], r, ours) for r in results.values()]
            model_notes += notes(model, run_names[run], results)
            if model == "eight_schools" and with_reference:
                lines, rows_reference = posteriordb_check(results, run_names[run])
                model_notes += lines
                reference_rows += [[run_names[run], *r] for r in rows_reference]
            print(text_table(HEADER, table_rows), *model_notes, sep="\n", flush=True)
            all_rows += table_rows
            all_notes += model_notes
    if reference_rows:
        print("\neight_schools: ours against posteriordb's reference draws\n"
              + text_table(["run", *REFERENCE_HEADER], reference_rows), flush=True)
    print("\n----- Markdown for benchmarks/RESULTS.md -----\n")
    size_text = "; ".join(f"{m} `{SPECS[m].formula}`" + (f", {sizes[m][0]:,} rows × {sizes[m][1]:,} groups"
                                                          if m == "weighted" else "") for m in models)
    print("\n".join(["## Addition terms: eight schools `se()` and a weighted Gaussian model, multilevel vs NumPyro",
                     "", *[f"- {line}" for line in info], f"- {load_line()}", f"- {cache_line(args.cache)}",
                     f"- {setting_line}",
                     f"- models: {size_text}",
                     f"- every row is a fresh process; {DEFINITIONS}; min bulk ESS over the fixed effects, sigma "
                     "and the sd (eight schools: mu and tau); peers: NumPyro NUTS written by hand on the same "
                     "posterior, float64, chains sequential; ours: chains in parallel threads", "",
                     markdown_table(HEADER, all_rows), "", *[f"- {n}" for n in all_notes]]))
    if reference_rows:
        print("\n".join(["", "Eight schools, ours against posteriordb's reference draws (10 chains × 1000, Stan "
                         "NUTS), |difference| in combined MCSE:", "",
                         markdown_table(["run", *REFERENCE_HEADER], reference_rows)]))


if __name__ == "__main__":
    sys.exit(main())
