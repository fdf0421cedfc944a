"""Benchmark the Gaussian fast path on FACE-like tree growth: multilevel against NumPyro NUTS.

Data: ``ml.datasets.simulate_growth(seed)`` (696 trees, about 9 yearly records
each). Model: ``log(dnow) ~ diam*trt + (1 + diam || tree)``, a random intercept
and diameter slope per tree. Ours is ``ml.fit`` with its default sampler (the
collapsed one), once with JAGS-style vague priors (every coefficient
Normal(0, 1000), ``1/sigma² ~ Gamma(0.001, 0.001)``, ``1/sd² ~ Gamma(0.001,
0.001)``) and once with the library's default priors, at the package defaults
(4 chains × 1000 draws) and, with the vague priors, a long run (4 × 6000, the
issue's prototype). The peers are the full model written by hand in NumPyro with
the same vague priors (they sample the precisions and transform them to sds, which
gives the sds the same density as ``ml.GammaPrecision``), float64, non-centred
(``r = z / sqrt(tau)``, ``z ~ N(0, 1)``: what most users write) and centred (``r ~
N(0, 1 / sqrt(tau))`` sampled directly).

Efficiency is the minimum bulk ESS over the fixed effects, sigma and the tree
sds, divided by the wall time of a fresh process that runs only that fit: its
imports plus the fit itself, JIT compilation included. The imports are timed from
the first line: ``import multilevel`` first (ours), then the rest of the script
(the peer's: NumPyro, ArviZ). For each of our fits the script prints where that
time goes (``fit.sampler_info["timings"]``); the table has the standard columns of
``common.py`` with imports + fit as the process time. ``--data`` fits the real FACE
file. The script also prints each fit's own wall time and the wall time of the whole
script so far, the ratios ours/peer (the issue's target is at least 300 against the
non-centred peer), and whether the posteriors' means agree within 4 combined Monte
Carlo standard errors.

Run ``python benchmarks/bench_face.py`` on a quiet machine; ``--quick`` is a
short smoke test whose numbers mean nothing.
"""

# ruff: noqa: E402  (the imports follow the process-start time on purpose)
from __future__ import annotations

import time

PROCESS_START = time.perf_counter()  # before the heavy imports, so that they count

import multilevel as ml

#: Importing multilevel (with JAX and pandas), first: the imports of a process that only fits.
ML_IMPORT_SECONDS = time.perf_counter() - PROCESS_START

import argparse
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
from numpyro.infer import MCMC, NUTS

from common import (MEASURES, STANDARD_HEADER, TableMetrics, add_run_options, cache_line, load_line, machine_info,
                    markdown_table, ours_split, peer_split, resolve_runs, seconds_to_ess, standard_cells, text_table)
from workers import CompileClock

IMPORT_SECONDS = time.perf_counter() - PROCESS_START

FORMULA = "log(dnow) ~ diam*trt + (1 + diam || tree)"
GROUP = "tree"
#: Fixed-effect columns as ``ml.fit`` names them, and the tree-level columns.
FIXED_COLUMNS = ("Intercept", "diam", "trt", "diam:trt")
TREE_COLUMNS = ("Intercept", "diam")
#: The JAGS-style vague priors: sd of every coefficient, Gamma(shape, rate) of every precision.
VAGUE_SD = 1000.0
PRECISION_SHAPE = PRECISION_RATE = 0.001
#: Two posterior means disagree when they differ by more than this many combined MCSEs.
AGREEMENT_MCSE = 4.0
TARGET_RATIO = 300.0


@dataclass(frozen=True)
class ChainConfig:
    """Chains, warmup iterations and kept draws per chain of one side."""

    chains: int
    warmup: int
    draws: int

    def __str__(self) -> str:
        return f"{self.chains}×{self.draws} (+{self.warmup} warmup)"


@dataclass(frozen=True)
class RunResult(TableMetrics):
    """One fit: its timings, divergences and the summary of the benchmarked parameters.

    ``table`` has one row per parameter (fixed effects, sigma, sds) and columns
    ``mean``, ``mcse_mean``, ``ess_bulk`` and ``r_hat``. ``fit_seconds`` is the
    wall time of the fit (compilation included), ``process_seconds`` the time
    since the process started, at the end of the fit.
    """

    label: str
    sampler: str
    config: ChainConfig
    fit_seconds: float
    process_seconds: float
    divergences: int
    table: pd.DataFrame
    split: dict  # see common.SPLIT
    timings: dict | None = None  # ours: fit.sampler_info["timings"]

    @property
    def alone_seconds(self) -> float:
        """Wall time of a fresh process running only this fit: its imports (multilevel's for
        ours, all of the script's for the peer) plus the fit."""
        return (IMPORT_SECONDS if self.timings is None else ML_IMPORT_SECONDS) + self.fit_seconds

    @property
    def ess_per_sec(self) -> float:
        return self.min_ess / self.alone_seconds

    @property
    def measures(self) -> dict:
        """What ``common.standard_cells`` reads, the process being imports + fit."""
        return {"process_seconds": self.alone_seconds, "min_ess": self.min_ess, "split": self.split,
                "warmup": self.config.warmup, "draws": self.config.draws}


def vague_priors() -> dict:
    """The JAGS-style vague priors of the FACE analysis, as ``ml.fit`` takes them."""
    precision = ml.GammaPrecision(PRECISION_SHAPE, PRECISION_RATE)
    return {"Intercept": ml.Normal(0.0, VAGUE_SD), "b": ml.Normal(0.0, VAGUE_SD),
            "sigma": precision, "sd": precision}


# -- ours ---------------------------------------------------------------------------

def fit_ours(data: pd.DataFrame, priors: dict | None, label: str, config: ChainConfig, seed: int) -> RunResult:
    """Fit the model with ``ml.fit`` and its default sampler."""
    start = time.perf_counter()
    fit = ml.fit(FORMULA, data, priors=priors, chains=config.chains, draws=config.draws,
                 warmup=config.warmup, seed=seed, progress=False)
    end = time.perf_counter()
    table = fit.summary(group_effects=False)[["mean", "mcse_mean", "ess_bulk", "r_hat"]]
    timings = fit.sampler_info["timings"]
    return RunResult(label, fit.sampler_info["sampler"], config, end - start, end - PROCESS_START,
                     fit.num_divergent, table, ours_split(ML_IMPORT_SECONDS, timings), timings)


def split_line(result: RunResult) -> str:
    """Where the whole process of one of our fits goes: the import, then the fit's
    ``sampler_info["timings"]``."""
    parts = [("import multilevel", ML_IMPORT_SECONDS)] + [(k, v) for k, v in result.timings.items()
                                                          if k not in ("assembly", "total") and v is not None]
    shown = ", ".join(f"{name} {seconds:.2f}" for name, seconds in parts)
    return f"{result.label}: whole process {result.alone_seconds:.2f} s = {shown} s"



# -- peer: the full model by hand in NumPyro ------------------------------------------

def peer_model(X, diam, refs, num_trees, y, centred=False):
    """The FACE model with the vague priors written on the precisions.

    ``tau ~ Gamma(0.001, 0.001)`` is the precision ``1/sigma²`` and ``tau_tree``
    the precisions ``1/sd²`` of the tree intercepts and slopes; the tree effects are
    ``r_k = z_k / sqrt(tau_tree)`` with ``z_k ~ N(0, I)`` (non-centred) or
    ``r_k ~ N(0, diag(1 / tau_tree))`` sampled directly (centred).
    """
    b = numpyro.sample("b", dist.Normal(0.0, VAGUE_SD).expand([X.shape[1]]).to_event(1))
    tau = numpyro.sample("tau", dist.Gamma(PRECISION_SHAPE, PRECISION_RATE))
    tau_tree = numpyro.sample("tau_tree", dist.Gamma(PRECISION_SHAPE, PRECISION_RATE)
                              .expand([len(TREE_COLUMNS)]).to_event(1))
    if centred:
        effects = numpyro.sample("r", dist.Normal(0.0, 1.0 / jnp.sqrt(tau_tree))
                                 .expand([num_trees, len(TREE_COLUMNS)]).to_event(2))
    else:
        z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([num_trees, len(TREE_COLUMNS)]).to_event(2))
        effects = z / jnp.sqrt(tau_tree)
    mu = X @ b + effects[refs, 0] + effects[refs, 1] * diam
    numpyro.sample("y", dist.Normal(mu, 1.0 / jnp.sqrt(tau)), obs=y)


def peer_arguments(data: pd.DataFrame) -> tuple:
    """The model's arguments, built from the data frame independently of ``ml``."""
    diam = data["diam"].to_numpy(dtype=np.float64)
    trt = data["trt"].to_numpy(dtype=np.float64)
    X = np.column_stack([np.ones(len(data)), diam, trt, diam * trt])
    codes, levels = pd.factorize(data[GROUP], sort=True)
    return (jnp.asarray(X), jnp.asarray(diam), jnp.asarray(codes, dtype=jnp.int32), len(levels),
            jnp.asarray(np.log(data["dnow"].to_numpy(dtype=np.float64))))


def peer_posterior(samples: dict) -> dict[str, np.ndarray]:
    """The benchmarked parameters of the NumPyro draws, named as in ``fit.summary()``."""
    posterior = {name: samples["b"][..., k] for k, name in enumerate(FIXED_COLUMNS)}
    posterior["sigma"] = samples["tau"] ** -0.5
    posterior.update({f"sd({c}|{GROUP})": samples["tau_tree"][..., k] ** -0.5
                      for k, c in enumerate(TREE_COLUMNS)})
    return {name: np.asarray(values) for name, values in posterior.items()}


def fit_peer(data: pd.DataFrame, config: ChainConfig, seed: int, centred: bool, clock: CompileClock) -> RunResult:
    """Run NumPyro NUTS on the full model in float64, chains one after another."""
    with jax.enable_x64(True):
        compiled = clock.seconds
        start = time.perf_counter()
        mcmc = MCMC(NUTS(peer_model), num_warmup=config.warmup, num_samples=config.draws,
                    num_chains=config.chains, chain_method="sequential", progress_bar=False)
        mcmc.run(jax.random.PRNGKey(seed), *peer_arguments(data), centred=centred)
        samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
        end = time.perf_counter()
        divergences = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    posterior = peer_posterior(samples)
    diagnostics = az.summary(az.from_dict(posterior=posterior), kind="diagnostics", round_to="none")
    table = pd.DataFrame({"mean": {k: v.mean() for k, v in posterior.items()}})
    table = table.join(diagnostics[["mcse_mean", "ess_bulk", "r_hat"]])
    label = f"peer{'-centred' if centred else ''}, vague priors"
    return RunResult(label, "numpyro NUTS", config, end - start, end - PROCESS_START, divergences, table,
                     peer_split(IMPORT_SECONDS, clock.seconds - compiled, end - start))


# -- report ---------------------------------------------------------------------------

HEADER = ["run", "sampler", "chains×draws", *STANDARD_HEADER, "fit s", "script s", "divergent", "max R-hat"]


def result_row(result: RunResult) -> list[str]:
    return [result.label, result.sampler, str(result.config), *standard_cells(result.measures),
            f"{result.fit_seconds:.1f}", f"{result.process_seconds:.1f}", str(result.divergences),
            f"{result.max_rhat:.3f}"]


def ratio_line(ours: RunResult, peer: RunResult) -> str:
    """Ours/peer of min ESS/s, with the imports counted (headline) and without."""
    ratio = ours.ess_per_sec / peer.ess_per_sec
    fit_only = (ours.min_ess / ours.fit_seconds) / (peer.min_ess / peer.fit_seconds)
    verdict = "met" if ratio >= TARGET_RATIO else "not met"
    to_ess = seconds_to_ess(peer.measures) / seconds_to_ess(ours.measures)
    return (f"{ours.label}, {ours.config} vs {peer.label}: ratio ours/peer of min ESS/s {ratio:.1f} (target >= "
            f"{TARGET_RATIO:g} against the non-centred peer: {verdict}); fit wall only, imports excluded: "
            f"{fit_only:.1f}; seconds to ESS 400, peer / ours: {to_ess:.1f}")


def agreement_line(ours: RunResult, peer: RunResult) -> str:
    """The largest |z| of the difference of posterior means, and the parameters beyond AGREEMENT_MCSE."""
    names = [n for n in ours.table.index if n in peer.table.index]
    a, b = ours.table.loc[names], peer.table.loc[names]
    z = (a["mean"] - b["mean"]) / np.hypot(a["mcse_mean"], b["mcse_mean"])
    far = z[z.abs() > AGREEMENT_MCSE]
    head = f"{ours.label} vs {peer.label}: max |z| = {z.abs().max():.1f} over {len(names)} parameters"
    if far.empty:
        return f"{head}; posterior means agree within {AGREEMENT_MCSE:g} MCSE"
    listed = ", ".join(f"{n} (ours {a.loc[n, 'mean']:.4g}, peer {b.loc[n, 'mean']:.4g}, z = {v:.1f})"
                       for n, v in far.items())
    return f"{head}; differ by more than {AGREEMENT_MCSE:g} MCSE: {listed}"






def comparison_lines(ours: list[RunResult], peers: list[RunResult]) -> list[str]:
    """Ratio lines for every fit of ours against every peer, and the agreement of the first (vague priors:
    the peers' posterior) with each peer."""
    if not ours:
        return []
    return ([ratio_line(o, p) for p in peers for o in ours] + [agreement_line(ours[0], p) for p in peers])


def markdown_report(ours: list[RunResult], peers: list[RunResult], info: list[str], data_note: str,
                    cache: str) -> str:
    """The table and comparisons as Markdown for benchmarks/RESULTS.md."""
    results = ours + peers
    lines = ["## FACE-like tree growth: multilevel vs NumPyro", ""]
    lines += [f"- {line}" for line in [*info, load_line(), cache_line(cache)]]
    lines += [f"- data: {data_note}; model `{FORMULA}`",
              "- vague priors: every coefficient Normal(0, 1000), 1/sigma² and 1/sd² ~ Gamma(0.001, 0.001); "
              "the peers (NumPyro NUTS, full model, non-centred and centred, float64, chains sequential) use them too",
              f"- imports: multilevel {ML_IMPORT_SECONDS:.1f} s (first), the whole script {IMPORT_SECONDS:.1f} s; "
              "all fits run in one process, one after another (later fits may reuse programs compiled by earlier "
              "ones); process s = imports + fit wall, where the imports are multilevel's for ours and the "
              f"script's for the peers; {MEASURES}; min bulk ESS over fixed effects, sigma and sds; script s = "
              "wall time since the script started, at the end of the fit", "",
              markdown_table(HEADER, [result_row(r) for r in results]), ""]
    lines += [f"- {line}" for line in comparison_lines(ours, peers)]
    lines += [f"- time split, {split_line(o)}" for o in ours]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 2 chains, 200 warmup, 200 draws on both sides (numbers mean nothing)")
    parser.add_argument("--only", choices=("ours", "peer"), default=None, help="run our fits only or the peers only")
    add_run_options(parser, long_draws=6000)
    parser.add_argument("--peer-chains", type=int, help="NumPyro chains (default 2)")
    parser.add_argument("--peer-draws", type=int, help="NumPyro kept draws per chain (default 2000)")
    parser.add_argument("--peer-warmup", type=int, help="NumPyro warmup iterations per chain (default 1000)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of simulate_growth (default 0)")
    parser.add_argument("--data", help="the real FACE file (dataTreeFACE.csv, tree id in tindex) instead of "
                                       "simulate_growth")
    parser.add_argument("--seed", type=int, default=1, help="seed of both samplers (default 1)")
    return parser.parse_args(argv)


def chain_configs(args: argparse.Namespace) -> tuple[dict[str, ChainConfig], ChainConfig]:
    """Ours by run (the package defaults and the long run, or --quick's) and the peers' chain settings
    (as their users run them), overridden by the options."""
    runs = resolve_runs(args)
    peer = (2, 200, 200) if args.quick else (2, 1000, 2000)
    pick = lambda given, default: default if given is None else given  # noqa: E731
    return ({run: ChainConfig(args.chains, args.warmup, draws) for run, draws in runs.items()},
            ChainConfig(pick(args.peer_chains, peer[0]), pick(args.peer_warmup, peer[1]),
                        pick(args.peer_draws, peer[2])))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    ours_configs, peer_config = chain_configs(args)
    cold = tempfile.TemporaryDirectory(prefix="multilevel-bench-cache-") if args.cache == "cold" else None
    if cold:   # read at the first fit: every fit of this process compiles what no earlier run left
        os.environ["MULTILEVEL_CACHE_DIR"] = cold.name
    if args.data:
        data = pd.read_csv(args.data).rename(columns={"tindex": GROUP})
        source = args.data
    else:
        data, source = ml.datasets.simulate_growth(args.data_seed), f"simulate_growth(seed={args.data_seed})"
    data_note = f"{source}: {len(data)} rows, {data[GROUP].nunique()} trees"
    clock = CompileClock(jax)
    info = machine_info()
    print("\n".join(info), f"data: {data_note}", f"imports: {IMPORT_SECONDS:.1f} s",
          f"ours {', '.join(f'{r} {c}' for r, c in ours_configs.items())}, peers {peer_config}, seed {args.seed}"
          + (" (--quick: smoke test, not a benchmark)" if args.quick else ""), sep="\n", flush=True)
    ours, peers = [], []
    with warnings.catch_warnings():
        # Convergence warnings are reported in the table instead.
        warnings.simplefilter("ignore")
        if args.only != "peer":
            for run, config in ours_configs.items():
                fits = ((vague_priors(), "ours, vague priors"), (None, "ours, default priors"))
                for priors, label in fits if run == "default" else fits[:1]:
                    ours.append(fit_ours(data, priors, label, config, args.seed))
                    print(text_table(HEADER, [result_row(ours[-1])]), split_line(ours[-1]), sep="\n", flush=True)
        if args.only != "ours":
            for centred in (False, True):
                peers.append(fit_peer(data, peer_config, args.seed, centred, clock))
                print(text_table(HEADER, [result_row(peers[-1])]), flush=True)
    rows = [result_row(r) for r in ours + peers]
    print(f"\n{text_table(HEADER, rows)}", *comparison_lines(ours, peers), sep="\n")
    print("\n----- Markdown for benchmarks/RESULTS.md -----\n")
    print(markdown_report(ours, peers, info, data_note, args.cache))


if __name__ == "__main__":
    sys.exit(main())
