"""Benchmark four more families against NumPyro: ordinal, zero-inflated counts, lognormal, heteroscedastic.

Simulated data (NumPy, fixed seeds, the sizes of a small study), model ``(1 | g)``
random intercepts in each:

- ``ordinal``: ``rating ~ x + (1 | rater)``, family ``cumulative`` (logit), 5
  categories, 60 raters × 20 ratings;
- ``zinb``: ``y ~ x + (1 | site)``, family ``zero_inflated_negbinomial``, 50 sites × 20 rows;
- ``lognormal``: ``y ~ x + (1 | g)``, family ``lognormal``, 100 groups × 20 rows (ours
  takes the exact collapsed path);
- ``hetero``: ``y ~ x + (1 | g)`` with ``sigma ~ x`` (log link), family ``gaussian``,
  50 groups × 20 rows, explicit priors on both sides; ours needs ``ml.Formula`` and
  is skipped, with a message, while the library has none.

Sides, each in a fresh process (this script with ``--worker``) whose whole wall time
counts (imports, simulation, compilation, sampling): ours (``ml.fit`` defaults), and
NumPyro NUTS written by hand on the same posterior (priors of our prior table, or the
explicit ones), float64, chains sequential, in two versions: non-centred group effects
(``r = mu + sd z``, ``z ~ N(0, 1)``: what most users write) and centred ones (``r ~ N(mu,
sd)`` sampled directly: the stronger peer when the data pin the groups). Two settings:
the user defaults (4 chains × 1000 draws after 1000 warmup) and a long run (4 × 5000).
See benchmarks/README.md. ``--quick`` is a smoke test whose numbers mean nothing.
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from common import (DEFINITIONS, RATIO_HEADER, STANDARD_HEADER, add_run_options, cache_line, ess_per_second, load_line,
                    machine_info, markdown_table, ours_split, peer_split, ratio_cells, resolve_runs, run_worker_process,
                    seconds_to_ess, standard_cells, text_table)
from workers import CompileClock, check_priors, numpyro_prior

# Only NumPy is imported for every process: a peer worker imports JAX and NumPyro, ours
# imports multilevel, and neither pays for the other's imports.

RESULT_PREFIX = "RESULT "
AGREEMENT_MCSE = 4.0
SIDES = ("ours", "peer-noncentred", "peer-centred")
PEERS = SIDES[1:]
#: Gradients per timed loop, timed loops, and the step that chains each gradient to the last.
NUM_GRADIENTS, REPEATS, GRADIENT_STEP = 1000, 5, 1e-12
CUTPOINTS = (-2.0, -0.7, 0.5, 1.8)   # the ordinal model's true thresholds (5 categories)


@dataclass(frozen=True)
class Spec:
    """One benchmarked model: formula, family, grouping factor, sizes, truth and target."""

    formula: str
    family: str
    group: str
    groups: int
    per_group: int
    target: float
    parameters: tuple[str, ...]
    response: str = "y"
    dpar: str | None = None      # a distributional formula, e.g. "sigma ~ x"


SPECS = {
    "ordinal": Spec("rating ~ x + (1 | rater)", "cumulative", "rater", 60, 20, 3.0,
                    ("x", *(f"Intercept[{k}]" for k in range(1, 5)), "sd(Intercept|rater)"), response="rating"),
    "zinb": Spec("y ~ x + (1 | site)", "zero_inflated_negbinomial", "site", 50, 20, 3.0,
                 ("Intercept", "x", "shape", "zi", "sd(Intercept|site)")),
    "lognormal": Spec("y ~ x + (1 | g)", "lognormal", "g", 100, 20, 100.0,
                      ("Intercept", "x", "sigma", "sd(Intercept|g)")),
    "hetero": Spec("y ~ x + (1 | g)", "gaussian", "g", 50, 20, 3.0,
                   ("Intercept", "x", "sigma_Intercept", "sigma_x", "sd(Intercept|g)"), dpar="sigma ~ x"),
}
#: The heteroscedastic model's priors, given explicitly to both sides (our defaults for the
#: parameters of ``sigma ~ x`` are still being written): (class name, arguments).
HETERO_PRIORS = {"Intercept": ("Normal", {"mean": 0.0, "sd": 10.0}), "x": ("Normal", {"mean": 0.0, "sd": 5.0}),
                 "sigma_Intercept": ("Normal", {"mean": 0.0, "sd": 2.5}),
                 "sigma_x": ("Normal", {"mean": 0.0, "sd": 2.5}),
                 "sd(Intercept|g)": ("HalfStudentT", {"df": 3.0, "scale": 2.5})}
QUICK_SIZE = (20, 10)   # groups × rows per group with --quick


def simulate(model: str, groups: int, per_group: int, seed: int) -> dict[str, np.ndarray]:
    """Columns ``x``, the group codes and the response; equal groups, random intercepts."""
    rng = np.random.default_rng(seed)
    spec = SPECS[model]
    n = groups * per_group
    g = np.repeat(np.arange(groups), per_group)
    x = rng.normal(size=n)
    if model == "ordinal":     # latent logistic: category k when cutpoint k-1 < eta + e <= cutpoint k
        eta = 0.8 * x + rng.normal(0.0, 1.0, groups)[g]
        y = 1 + np.sum((eta + rng.logistic(size=n))[:, None] > np.asarray(CUTPOINTS), axis=1)
    elif model == "zinb":      # NB2 with mean exp(eta) and shape 2, zero with probability 0.25
        eta = 1.0 + 0.4 * x + rng.normal(0.0, 0.7, groups)[g]
        y = rng.poisson(rng.gamma(2.0, np.exp(eta) / 2.0))
        y = np.where(rng.random(n) < 0.25, 0, y)
    elif model == "lognormal":
        y = np.exp(1.0 + 0.3 * x + rng.normal(0.0, 0.5, groups)[g] + rng.normal(0.0, 0.6, n))
    else:                      # hetero: sigma = exp(0.4 x)
        y = 2.0 + 0.5 * x + rng.normal(0.0, 0.8, groups)[g] + np.exp(0.4 * x) * rng.normal(size=n)
    return {spec.response: y.astype(float), "x": x, spec.group: g}


def prior_spec(prior) -> tuple[str, dict[str, float]]:
    """One of the library's priors as (class name, arguments), which the peer worker reads."""
    return type(prior).__name__, {f.name: float(getattr(prior, f.name)) for f in dataclasses.fields(prior)}


def summarise(posterior: dict[str, np.ndarray]) -> dict:
    """Mean, MCSE, bulk ESS and R-hat (ArviZ) of (chain, draw) arrays by name; the minimum ESS and
    the parameter that has it, and the maximum R-hat."""
    import arviz as az

    diagnostics = az.summary(az.from_dict(posterior=posterior), kind="diagnostics", round_to="none")
    table = {name: {"mean": float(draws.mean()),
                    **{k: float(diagnostics.loc[name, k]) for k in ("mcse_mean", "ess_bulk", "r_hat")}}
             for name, draws in posterior.items()}
    return {"table": table, "min_ess": float(diagnostics["ess_bulk"].min()),
            "limiting": str(diagnostics["ess_bulk"].idxmin()), "max_rhat": float(diagnostics["r_hat"].max())}


# -- workers: each runs in its own process and prints one RESULT line -----------------

def ours_worker(args: argparse.Namespace) -> dict:
    """``ml.fit`` with its default sampler and priors (explicit ones for ``hetero``)."""
    import jax
    import pandas as pd

    import multilevel as ml

    imports = time.perf_counter() - PROCESS_START
    clock = CompileClock(jax)
    spec = SPECS[args.model]
    data = pd.DataFrame(simulate(args.model, args.groups, args.per_group, args.data_seed))
    formula = ml.Formula(spec.formula, spec.dpar) if spec.dpar else spec.formula
    priors = {name: getattr(ml, cls)(**kw) for name, (cls, kw) in HETERO_PRIORS.items()} if spec.dpar else None
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is reported in the table instead
        fit = ml.fit(formula, data, family=spec.family, priors=priors, chains=args.chains, draws=args.draws,
                     warmup=args.warmup, seed=args.seed, progress=False)
    end = time.perf_counter()
    info = fit.sampler_info
    stats = fit.idata.sample_stats
    steps = float(stats["n_steps"].mean()) if "n_steps" in stats else float("nan")
    centring = info.get("centering", {}).get(spec.group, "exact" if info["sampler"] in ("collapsed", "gibbs")
                                              else "?")
    return {"side": "ours", "sampler": info["sampler"], "centring": centring, "fit_seconds": end - start,
            "process_seconds": end - PROCESS_START, "compile_seconds": clock.seconds,
            "library_compile_seconds": info.get("compile_seconds"), "sampling_seconds": info["sampling_seconds"],
            "split": ours_split(imports, info["timings"]), "warmup": args.warmup, "draws": args.draws,
            "divergences": fit.num_divergent, "mean_steps": steps,
            "sampler_info": {k: v for k, v in info.items() if isinstance(v, (str, int, float, dict, type(None)))},
            "priors": dict(zip(fit.priors["parameter"], fit.priors["prior"])),
            **summarise({name: fit.idata.posterior[name].values for name in spec.parameters})}


def peer_model(model: str, priors: dict, centred: bool):
    """The NumPyro model by hand, arguments ``(x, g, num_groups, y)``; the ordinal ``y`` is 0..K-1.

    ``priors``: (class name, arguments) by our parameter names. Group intercepts ``r_g``
    around ``mu`` (the Intercept; 0 for the ordinal model, whose thresholds replace it),
    centred (``r ~ N(mu, sd)``) or not (``r = mu + sd z``, ``z ~ N(0, 1)``)."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.distributions import constraints

    spec = SPECS[model]

    def prior(name: str):
        return numpyro_prior(*priors[name])

    sd_name = f"sd(Intercept|{spec.group})"

    def group_intercepts(location, num_groups):
        sd = numpyro.sample(sd_name, prior(sd_name))
        if centred:
            return numpyro.sample("r", dist.Normal(location, sd).expand([num_groups]).to_event(1))
        z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([num_groups]).to_event(1))
        return location + sd * z

    def run(x, g, num_groups, y):
        slope = numpyro.sample("x", prior("x"))
        if model == "ordinal":   # thresholds ordered, each with its prior; eta without intercept
            names = [f"Intercept[{k}]" for k in range(1, len(CUTPOINTS) + 1)]
            cut = numpyro.sample("cutpoints", dist.ImproperUniform(constraints.ordered_vector, (),
                                                                   (len(names),)))
            numpyro.factor("cutpoints_prior", sum(prior(n).log_prob(cut[k]) for k, n in enumerate(names)))
            eta = group_intercepts(0.0, num_groups)[g] + slope * x
            numpyro.sample("y", dist.OrderedLogistic(eta, cut), obs=y)
            return
        intercept = numpyro.sample("Intercept", prior("Intercept"))
        eta = group_intercepts(intercept, num_groups)[g] + slope * x
        if model == "zinb":
            shape = numpyro.sample("shape", prior("shape"))
            zi = numpyro.sample("zi", prior("zi"))
            numpyro.sample("y", dist.ZeroInflatedNegativeBinomial2(jnp.exp(eta), shape, gate=zi), obs=y)
        elif model == "lognormal":
            sigma = numpyro.sample("sigma", prior("sigma"))
            numpyro.sample("y", dist.LogNormal(eta, sigma), obs=y)
        else:
            s0 = numpyro.sample("sigma_Intercept", prior("sigma_Intercept"))
            s1 = numpyro.sample("sigma_x", prior("sigma_x"))
            numpyro.sample("y", dist.Normal(eta, jnp.exp(s0 + s1 * x)), obs=y)

    return run


def peer_arguments(model: str, data: dict[str, np.ndarray], num_groups: int) -> tuple:
    """``(x, g, num_groups, y)`` for :func:`peer_model`, as JAX arrays (call with float64 enabled)."""
    import jax.numpy as jnp

    spec = SPECS[model]
    y = data[spec.response]
    y = jnp.asarray(y - 1, dtype=jnp.int32) if model == "ordinal" else jnp.asarray(y)
    return jnp.asarray(data["x"]), jnp.asarray(data[spec.group], dtype=jnp.int32), num_groups, y


def peer_worker(args: argparse.Namespace) -> dict:
    """NumPyro NUTS on the model written by hand, float64, chains sequential."""
    import jax
    import numpyro
    from numpyro.infer import MCMC, NUTS

    imports = time.perf_counter() - PROCESS_START
    numpyro.enable_x64()
    clock = CompileClock(jax)
    spec = SPECS[args.model]
    centred = args.worker == "peer-centred"
    model = peer_model(args.model, json.loads(args.priors), centred)
    data = simulate(args.model, args.groups, args.per_group, args.data_seed)
    start = time.perf_counter()
    mcmc = MCMC(NUTS(model), num_warmup=args.warmup, num_samples=args.draws, num_chains=args.chains,
                chain_method="sequential", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(args.seed), *peer_arguments(args.model, data, args.groups),
             extra_fields=("diverging", "num_steps"))
    samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    end = time.perf_counter()
    extra = mcmc.get_extra_fields()
    posterior = {name: np.asarray(samples[name]) for name in spec.parameters if name in samples}
    if args.model == "ordinal":
        for k in range(len(CUTPOINTS)):
            posterior[f"Intercept[{k + 1}]"] = np.asarray(samples["cutpoints"][..., k])
    posterior = {name: posterior[name] for name in spec.parameters}
    return {"side": args.worker, "sampler": "numpyro NUTS", "centring": "centred" if centred else "non-centred",
            "fit_seconds": end - start, "process_seconds": end - PROCESS_START, "compile_seconds": clock.seconds,
            "sampling_seconds": end - start - clock.seconds,
            "split": peer_split(imports, clock.seconds, end - start), "warmup": args.warmup,
            "draws": args.draws, "divergences": int(np.asarray(extra["diverging"]).sum()),
            "mean_steps": float(np.asarray(extra["num_steps"]).mean()), **summarise(posterior)}


def time_gradient(value_and_grad, position) -> float:
    """µs per evaluation of a jitted ``value_and_grad``: ``NUM_GRADIENTS`` evaluations in one
    ``lax.fori_loop`` (no Python dispatch), best of ``REPEATS``; each starts from the last
    position moved by ``GRADIENT_STEP`` × its gradient, so that none is loop-invariant."""
    import jax

    def body(_, p):
        _, grad = value_and_grad(p)
        return jax.tree_util.tree_map(lambda a, b: a + GRADIENT_STEP * b, p, grad)

    loop = jax.jit(lambda p: jax.lax.fori_loop(0, NUM_GRADIENTS, body, p))
    jax.block_until_ready(loop(position))
    best = np.inf
    for _ in range(REPEATS):
        start = time.perf_counter()
        jax.block_until_ready(loop(position))
        best = min(best, time.perf_counter() - start)
    return 1e6 * best / NUM_GRADIENTS


def gradient_worker(args: argparse.Namespace) -> dict:
    """µs per gradient of our full log density (the function our NUTS runs: one compiled program
    for either centring) and of each peer's potential, at the benchmark's size, one thread."""
    import jax
    import pandas as pd
    from numpyro.infer.util import initialize_model

    import multilevel as ml

    spec = SPECS[args.model]
    data = simulate(args.model, args.groups, args.per_group, args.data_seed)
    result = {}
    with jax.enable_x64(True):
        if not spec.dpar or hasattr(ml, "Formula"):
            formula = ml.Formula(spec.formula, spec.dpar) if spec.dpar else spec.formula
            priors = {n: getattr(ml, c)(**kw) for n, (c, kw) in HETERO_PRIORS.items()} if spec.dpar else None
            built = ml.build_model(formula, pd.DataFrame(data), family=spec.family, priors=priors)
            logdensity, position = built.log_density()
            position = jax.tree_util.tree_map(jax.numpy.asarray, position)
            result["ours"] = time_gradient(jax.value_and_grad(logdensity), position)
        for side in PEERS:
            model = peer_model(args.model, json.loads(args.priors), side == "peer-centred")
            info = initialize_model(jax.random.PRNGKey(0), model,
                                    model_args=peer_arguments(args.model, data, args.groups))
            result[side] = time_gradient(jax.value_and_grad(info.potential_fn), info.param_info.z)
    return {"side": "gradient", "microseconds": result}


def run_worker(side: str, model: str, setting: dict, args: argparse.Namespace, priors: dict | None) -> dict:
    """Run one worker in a fresh Python process and return its result, or ``{"error": ...}``."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", side, "--model", model,
               "--groups", str(setting["groups"]), "--per-group", str(setting["per_group"]),
               "--chains", str(setting["chains"]), "--draws", str(setting["draws"]),
               "--warmup", str(setting["warmup"]), "--seed", str(args.seed), "--data-seed", str(args.data_seed)]
    if priors is not None:
        command += ["--priors", json.dumps(priors)]
    return run_worker_process(command, side, args.cache, RESULT_PREFIX)


def prior_table(model: str, setting: dict, args: argparse.Namespace) -> dict:
    """The priors both sides use: our defaults for the data (``ml.build_model``, no sampling), or the
    explicit ones of the heteroscedastic model."""
    import pandas as pd

    import multilevel as ml

    spec = SPECS[model]
    if spec.dpar:
        return dict(HETERO_PRIORS)
    data = pd.DataFrame(simulate(model, setting["groups"], setting["per_group"], args.data_seed))
    built = ml.build_model(spec.formula, data, family=spec.family)
    return {p.name: prior_spec(p.prior) for p in built.priors.all()}


# -- report ---------------------------------------------------------------------------

HEADER = ["model", "run", "side", "sampler", "centring", *STANDARD_HEADER, "divergent", "mean leapfrog steps",
          "limiting parameter", "max R-hat", *RATIO_HEADER]


GRADIENT_HEADER = ["model", "ours µs", "peer-noncentred µs", "peer-centred µs", "ours / peer-centred"]


def gradient_row(model: str, result: dict) -> list[str]:
    if "error" in result:
        return [model, "failed: " + result["error"][:80], "—", "—", "—"]
    us = result["microseconds"]
    cells = [f"{us[s]:.1f}" if s in us else "—" for s in ("ours", *PEERS)]
    ratio = f"{us['ours'] / us['peer-centred']:.2f}" if "ours" in us else "—"
    return [model, *cells, ratio]


def row(model: str, run: str, result: dict, ours: dict | None) -> list[str]:
    if "error" in result:
        return [model, run, result["side"], "failed: " + result["error"][:80], *["—"] * (len(HEADER) - 4)]
    return [model, run, result["side"], result["sampler"], result["centring"], *standard_cells(result),
            str(result["divergences"]), f"{result['mean_steps']:.1f}", result["limiting"],
            f"{result['max_rhat']:.3f}", *ratio_cells(ours, result)]


def max_z(ours: dict, peer: dict) -> tuple[float, list[str]]:
    """Largest |difference of posterior means| in combined MCSE, and the parameters beyond the limit."""
    z = {n: (r["mean"] - peer["table"][n]["mean"]) / np.hypot(r["mcse_mean"], peer["table"][n]["mcse_mean"])
         for n, r in ours["table"].items()}
    far = [f"{n} (ours {ours['table'][n]['mean']:.3f}, {peer['side']} {peer['table'][n]['mean']:.3f}, "
           f"z = {v:.1f})" for n, v in z.items() if abs(v) > AGREEMENT_MCSE]
    return max(map(abs, z.values())), far


def notes(model: str, run: str, results: dict[str, dict]) -> list[str]:
    """The ratio to the better peer against the target, on process and on sampling time; agreement."""
    ours, spec = results.get("ours"), SPECS[model]
    peers = [results[p] for p in PEERS if p in results and "error" not in results[p]]
    lines = []
    if ours is None or "error" in ours or not peers:
        return lines
    best = max(peers, key=ess_per_second)
    ratio = ess_per_second(ours) / ess_per_second(best)
    verdict = "met" if ratio >= spec.target else f"NOT met: {spec.target / ratio:.1f}× short"
    sampling = (ours["min_ess"] / ours["sampling_seconds"]) / (best["min_ess"] / best["sampling_seconds"])
    lines.append(f"{model}, {run}: ours / better peer ({best['side']}) min ESS/s {ratio:.2f} "
                 f"(target >= {spec.target:g}: {verdict}); seconds to ESS 400 (peer / ours) "
                 f"{seconds_to_ess(best) / seconds_to_ess(ours):.2f}; on sampling seconds alone {sampling:.2f}; "
                 f"ours spent {ours['compile_seconds']:.1f} of its {ours['process_seconds']:.1f} process s "
                 f"compiling, the peer {best['compile_seconds']:.1f} of {best['process_seconds']:.1f}")
    for peer in peers:
        z, far = max_z(ours, peer)
        lines.append(f"{model}, {run}: posterior means of ours and {peer['side']} within {AGREEMENT_MCSE:g} MCSE: "
                     + ("agree" if not far else "differ: " + ", ".join(far)) + f" (max |z| = {z:.1f})")
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"smoke test: {QUICK_SIZE[0]} groups × "
                        f"{QUICK_SIZE[1]} rows, 2 chains × 200 draws after 200 warmup, no long run "
                        "(numbers mean nothing)")
    parser.add_argument("--models", nargs="+", choices=list(SPECS), default=list(SPECS))
    parser.add_argument("--only", nargs="+", choices=[*SIDES, "peer", "gradient"], default=[*SIDES, "gradient"],
                        help="which sides to run (default all; peer = both peers; gradient = the cost of one "
                        "gradient on each side)")
    add_run_options(parser)
    parser.add_argument("--seed", type=int, default=1, help="seed of the samplers (default 1)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the simulated data (default 0)")
    parser.add_argument("--worker", choices=[*SIDES, "gradient"], help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=list(SPECS), help=argparse.SUPPRESS)
    parser.add_argument("--groups", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--per-group", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--priors", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    resolve_runs(args)
    if "peer" in args.only:
        args.only = [s for s in [*SIDES, "gradient"] if s in args.only or s in PEERS]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker = {"ours": ours_worker, "gradient": gradient_worker}.get(args.worker, peer_worker)
        print(RESULT_PREFIX + json.dumps(worker(args), default=str))
        return
    import multilevel as ml
    info = machine_info()
    runs = {"default": args.draws, "long": args.long_draws}
    run_names = {r: f"{args.chains}×{runs[r]}" for r in args.runs}
    sizes = {m: QUICK_SIZE if args.quick else (SPECS[m].groups, SPECS[m].per_group) for m in args.models}
    setting_line = (f"runs: {', '.join(f'{r} {args.chains} chains × {runs[r]} draws' for r in args.runs)}, "
                    f"after {args.warmup} warmup; seed {args.seed}, data seed {args.data_seed}")
    print("\n".join(info), setting_line + (" (--quick: smoke test, not a benchmark)" if args.quick else ""),
          sep="\n", flush=True)
    all_rows, all_notes, gradient_rows = [], [], []
    for model in args.models:
        spec = SPECS[model]
        groups, per_group = sizes[model]
        sides = [s for s in args.only if s in SIDES]
        if spec.dpar and "ours" in sides and not hasattr(ml, "Formula"):
            message = (f"{model}: ours skipped: this multilevel has no ml.Formula (distributional formulas "
                       f"such as {spec.dpar!r} are not in the library yet); the peers run alone")
            print("\n" + message, flush=True)
            all_notes.append(message)
            sides.remove("ours")
        for run in args.runs:
            setting = dict(groups=groups, per_group=per_group, chains=args.chains, draws=runs[run], warmup=args.warmup)
            priors = prior_table(model, setting, args)
            results, model_notes = {}, []
            for side in sides:
                print(f"\n{model}, {run_names[run]}: {side} ...", flush=True)
                results[side] = run_worker(side, model, setting, args, priors)
            ours = results.get("ours")
            if ours and "error" not in ours:
                model_notes += check_priors(model, ours, priors)
                model_notes.append(f"{model}, {run_names[run]}: ours: sampler {ours['sampler']} "
                                   f"({ours['sampler_info'].get('reason')}); centring: "
                                   f"{ours['sampler_info'].get('centering_reason', {}).get(spec.group, '—')}")
            ours = ours if ours and "error" not in ours else None
            rows = [row(model, run_names[run], r, ours) for r in results.values()]
            model_notes += notes(model, run_names[run], results)
            print(text_table(HEADER, rows), *model_notes, sep="\n", flush=True)
            all_rows += rows
            all_notes += model_notes
        if "gradient" in args.only:
            print(f"\n{model}: µs per gradient ...", flush=True)
            setting = dict(groups=groups, per_group=per_group, chains=1, draws=1, warmup=1)
            result = run_worker("gradient", model, setting, args, prior_table(model, setting, args))
            gradient_rows.append(gradient_row(model, result))
            print(text_table(GRADIENT_HEADER, gradient_rows[-1:]), flush=True)
    print("\n----- Markdown for benchmarks/RESULTS.md -----\n")
    size_text = "; ".join(f"{m} `{SPECS[m].formula}`" + (f" with `{SPECS[m].dpar}`" if SPECS[m].dpar else "")
                          + f" ({SPECS[m].family}), {sizes[m][0]} groups × {sizes[m][1]} rows" for m in args.models)
    print("\n".join(["## More families: ordinal, zero-inflated, lognormal, heteroscedastic, multilevel vs NumPyro",
                     "", *[f"- {line}" for line in info], f"- {load_line()}", f"- {cache_line(args.cache)}",
                     f"- {setting_line}",
                     f"- models: {size_text}",
                     f"- every row is a fresh process; {DEFINITIONS}; min bulk ESS over the fixed effects, family "
                     "parameters and sd; peers: NumPyro NUTS written by hand on the same posterior, float64, "
                     "chains sequential; ours: chains in parallel threads", "",
                     markdown_table(HEADER, all_rows), "", *[f"- {n}" for n in all_notes]]))
    if gradient_rows:
        print("\n".join(["", f"µs per gradient of the log density at the benchmark's size, one evaluation "
                         f"after another ({NUM_GRADIENTS} in a jitted loop, best of {REPEATS}): ours, the "
                         "function our NUTS runs (either centring; the lognormal model's exact sampler runs another, of "
                         "sigma and the sds only); the peers, NumPyro's potential", "",
                         markdown_table(GRADIENT_HEADER, gradient_rows)]))


if __name__ == "__main__":
    sys.exit(main())
