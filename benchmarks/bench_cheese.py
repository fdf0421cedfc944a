"""Benchmark the four cheese models: multilevel against the same models hand-written in NumPyro.

For each model of ``ml.datasets.CHEESE_MODELS`` every side fits the same
posterior twice in one process: ours (``ml.fit`` defaults) and NumPyro NUTS by
hand, non-centred (``r = diag(sd) L z``: what most users write) and centred (``r ~
N(0, Σ)`` sampled directly), at the package defaults (4 chains × 1000 draws) and a
long run (4 × 5000). The first call's wall time includes JIT compilation (and, as
process s, the script's imports: what a fresh process would take); the second,
identical call shows the cost once everything is compiled. Efficiency is the
minimum bulk ESS over the fixed effects, sigma, the group-level sds (and
correlations) divided by process s; the table has the standard columns of
``common.py``. The script prints one table per model as it goes, then all tables
again as Markdown for ``benchmarks/RESULTS.md``.

Run ``python benchmarks/bench_cheese.py`` (``make bench``) on a quiet machine;
``--quick`` is a short smoke test whose numbers mean nothing.
"""

from __future__ import annotations

import time

PROCESS_START = time.perf_counter()  # before the heavy imports, so that they count

import argparse  # noqa: E402  (the imports follow the process-start time on purpose)
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402
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
from common import (MEASURES, STANDARD_HEADER, TableMetrics, add_run_options, cache_line, load_line, machine_info,
                    markdown_table, ours_split, peer_split, resolve_runs, seconds_to_ess, standard_cells, text_table)
from multilevel.datasets import CHEESE_MODELS, cheese_priors, simulate_ratings
from workers import CompileClock

IMPORT_SECONDS = time.perf_counter() - PROCESS_START

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cheese.csv"
CHEESES = ("cheese_A", "cheese_B", "cheese_C", "cheese_D")
GROUP = "background"

#: Columns of the group term of each model (``Intercept`` is the column of ones).
GROUP_COLUMNS = {1: ("Intercept",), 2: CHEESES, 3: ("Intercept", *CHEESES), 4: ("Intercept", *CHEESES)}
#: Models with fixed cheese coefficients, and the one with correlated group effects.
FIXED_CHEESES = (1, 4)
CORRELATED = (4,)

#: Two parameters' posterior means disagree when they differ by more than this many combined MCSEs.
AGREEMENT_MCSE = 4.0


@dataclass(frozen=True)
class RunConfig:
    """Chains, warmup and kept draws per chain, and the seed of both sides."""

    chains: int
    warmup: int
    draws: int
    seed: int


@dataclass(frozen=True)
class CallResult(TableMetrics):
    """One fit: wall time, divergences, the summary of the benchmarked parameters and the split.

    ``table`` has one row per parameter (fixed effects, sigma, sds, correlations)
    and columns ``mean``, ``mcse_mean``, ``ess_bulk`` and ``r_hat``. ``split`` (see
    ``common.SPLIT``) counts the script's imports for a first call only.
    """

    seconds: float
    divergences: int
    table: pd.DataFrame
    split: dict
    config: RunConfig

    @property
    def measures(self) -> dict:
        """What ``common.standard_cells`` reads: the process is the imports (first call) + the call."""
        return {"process_seconds": self.split["imports"] + self.seconds, "min_ess": self.min_ess,
                "split": self.split, "warmup": self.config.warmup, "draws": self.config.draws}

    @property
    def ess_per_sec(self) -> float:
        return self.min_ess / self.measures["process_seconds"]


@dataclass(frozen=True)
class ModelResult:
    """Both calls of every side for one model and run; ``peers`` by side name."""

    number: int
    run: str
    ours_sampler: str
    ours: tuple[CallResult, CallResult]
    peers: dict[str, tuple[CallResult, CallResult]]


# -- data ---------------------------------------------------------------------------

def load_data(choice: str | None) -> tuple[pd.DataFrame, str]:
    """The cheese ratings and a line saying where they came from.

    ``choice`` is ``"real"``, ``"simulated"`` or None (real when the file exists).
    """
    if choice == "real" or (choice is None and REAL_DATA.exists()):
        if not REAL_DATA.exists():
            raise SystemExit(f"--data real: {REAL_DATA} not found; use --data simulated")
        data = pd.read_csv(REAL_DATA)
        for column in CHEESES:
            data[column] = (data["cheese"] == column[-1]).astype(float)
        return data, f"real: {REAL_DATA}"
    note = "simulated: simulate_ratings(seed=0)"
    if choice is None:
        note += f" ({REAL_DATA} not found)"
    return simulate_ratings(seed=0), note


# -- ours ---------------------------------------------------------------------------

def fit_ours(data: pd.DataFrame, number: int, config: RunConfig, first: bool) -> tuple[CallResult, str]:
    """Fit model ``number`` with ``ml.fit`` and its default sampler; return the result and sampler name."""
    formula = CHEESE_MODELS[number][1]
    start = time.perf_counter()
    fit = ml.fit(formula, data, priors=cheese_priors(data, number), chains=config.chains,
                 draws=config.draws, warmup=config.warmup, seed=config.seed, progress=False)
    seconds = time.perf_counter() - start
    table = fit.summary(group_effects=False)[["mean", "mcse_mean", "ess_bulk", "r_hat"]]
    split = ours_split(IMPORT_SECONDS if first else 0.0, fit.sampler_info["timings"])
    return CallResult(seconds, fit.num_divergent, table, split, config), fit.sampler_info["sampler"]


# -- peer: the same models by hand in NumPyro -------------------------------------------

def peer_model(number: int, ybar: float, s_y: float, centred: bool = False):
    """The NumPyro model of cheese model ``number``, with the priors of ``cheese_priors``.

    Group effects are deviations added to the linear predictor, non-centred:
    ``r_j = diag(sd) L z_j`` with ``z_j ~ N(0, I)`` per level ``j`` (``L = I``
    for independent effects); or centred: ``r_j ~ N(0, diag(sd) L Lᵀ diag(sd))``
    sampled directly.
    """
    fixed_cheeses = number in FIXED_CHEESES
    correlated = number in CORRELATED
    q = len(GROUP_COLUMNS[number])

    def model(x, z, refs, num_levels, y):
        mu = numpyro.sample("Intercept", dist.Normal(ybar, 2.5 * s_y))
        if fixed_cheeses:
            b = numpyro.sample("b", dist.Normal(0.0, 2.0).expand([x.shape[1]]).to_event(1))
            mu = mu + x @ b
        sigma = numpyro.sample("sigma", dist.Exponential(1.0 / s_y))
        sd = numpyro.sample("sd", dist.HalfCauchy(2.0).expand([q]).to_event(1))
        chol = numpyro.sample("L", dist.LKJCholesky(q, 2.0)) if correlated else None
        if centred and correlated:
            effects = numpyro.sample("r", dist.MultivariateNormal(jnp.zeros(q), scale_tril=sd[:, None] * chol)
                                     .expand([num_levels]).to_event(1))
        elif centred:
            effects = numpyro.sample("r", dist.Normal(0.0, sd).expand([num_levels, q]).to_event(2))
        else:
            std_effects = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([num_levels, q]).to_event(2))
            effects = std_effects @ (sd[:, None] * chol).T if correlated else std_effects * sd
        mu = mu + jnp.sum(z * effects[refs], axis=1)
        numpyro.sample("y", dist.Normal(mu, sigma), obs=y)

    return model


def peer_arguments(data: pd.DataFrame, number: int) -> tuple:
    """The model's arguments: cheese indicators, group design, level index, number of levels, y."""
    x = jnp.asarray(data[list(CHEESES)].to_numpy(dtype=np.float64))
    columns = [np.ones(len(data)) if c == "Intercept" else data[c].to_numpy(dtype=np.float64)
               for c in GROUP_COLUMNS[number]]
    codes, levels = pd.factorize(data[GROUP], sort=True)
    return (x, jnp.asarray(np.column_stack(columns)), jnp.asarray(codes, dtype=jnp.int32), len(levels),
            jnp.asarray(data["y"].to_numpy(dtype=np.float64)))


def peer_posterior(samples: dict, number: int) -> dict[str, np.ndarray]:
    """The benchmarked parameters of the NumPyro draws, named as in ``fit.summary()``."""
    columns = GROUP_COLUMNS[number]
    posterior = {"Intercept": samples["Intercept"]}
    if number in FIXED_CHEESES:
        posterior.update({c: samples["b"][..., k] for k, c in enumerate(CHEESES)})
    posterior["sigma"] = samples["sigma"]
    posterior.update({f"sd({c}|{GROUP})": samples["sd"][..., k] for k, c in enumerate(columns)})
    if number in CORRELATED:
        chol = samples["L"]
        corr = chol @ np.swapaxes(chol, -1, -2)
        for j in range(len(columns)):
            for i in range(j):
                posterior[f"cor({columns[i]},{columns[j]}|{GROUP})"] = corr[..., i, j]
    return {name: np.asarray(values) for name, values in posterior.items()}


def run_peer(mcmc: MCMC, args: tuple, number: int, config: RunConfig, first: bool,
             clock: CompileClock) -> CallResult:
    """Run the NumPyro MCMC once (reusing its compiled functions after the first run)."""
    compiled = clock.seconds
    start = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(config.seed), *args)
    samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    seconds = time.perf_counter() - start
    posterior = peer_posterior(samples, number)
    diagnostics = az.summary(az.from_dict(posterior=posterior), kind="diagnostics", round_to="none")
    table = pd.DataFrame({"mean": {k: v.mean() for k, v in posterior.items()}})
    table = table.join(diagnostics[["mcse_mean", "ess_bulk", "r_hat"]])
    divergences = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    split = peer_split(IMPORT_SECONDS if first else 0.0, clock.seconds - compiled, seconds)
    return CallResult(seconds, divergences, table, split, config)


def fit_peer_twice(data: pd.DataFrame, number: int, config: RunConfig, centred: bool,
                   clock: CompileClock) -> tuple[CallResult, CallResult]:
    """Build the NumPyro MCMC for model ``number`` and run it twice, in float64."""
    ybar, s_y = float(data["y"].mean()), float(data["y"].std())
    with jax.enable_x64(True):
        args = peer_arguments(data, number)
        mcmc = MCMC(NUTS(peer_model(number, ybar, s_y, centred)), num_warmup=config.warmup,
                    num_samples=config.draws, num_chains=config.chains, chain_method="sequential",
                    progress_bar=False)
        return tuple(run_peer(mcmc, args, number, config, first, clock) for first in (True, False))


# -- one model, both sides ------------------------------------------------------------

PEERS = ("peer", "peer-centred")


def bench_model(data: pd.DataFrame, number: int, run: str, config: RunConfig, clock: CompileClock) -> ModelResult:
    """Fit model ``number`` twice with multilevel and twice with each NumPyro peer."""
    with warnings.catch_warnings():
        # Convergence and rank warnings are reported in the table instead.
        warnings.simplefilter("ignore")
        first, sampler = fit_ours(data, number, config, first=True)
        second, _ = fit_ours(data, number, config, first=False)
        peers = {side: fit_peer_twice(data, number, config, side == "peer-centred", clock) for side in PEERS}
    return ModelResult(number, run, sampler, (first, second), peers)


def result_rows(result: ModelResult) -> list[list[str]]:
    """The rows of one model's table: each side's first and second call."""
    rows = []
    sides = (("ours", result.ours_sampler, result.ours),
             *((side, "numpyro NUTS", calls) for side, calls in result.peers.items()))
    for side, sampler, calls in sides:
        for label, call in zip(("first", "second"), calls):
            rows.append([result.run, side, sampler, label, *standard_cells(call.measures), f"{call.seconds:.1f}",
                         str(call.divergences), f"{call.max_rhat:.3f}"])
    return rows


HEADER = ["run", "side", "sampler", "call", *STANDARD_HEADER, "wall s", "divergent", "max R-hat"]


def ratio_line(result: ModelResult) -> str:
    """The ratios ours/peer of min bulk ESS per second and peer/ours of seconds to ESS 400, first and
    second call, for each peer."""
    parts = []
    for side, calls in result.peers.items():
        ess = [o.ess_per_sec / p.ess_per_sec for o, p in zip(result.ours, calls)]
        to_ess = [seconds_to_ess(p.measures) / seconds_to_ess(o.measures) for o, p in zip(result.ours, calls)]
        parts.append(f"ours/{side} min ESS/s: first call {ess[0]:.2f}, second {ess[1]:.2f}; {side}/ours seconds "
                     f"to ESS 400: first {to_ess[0]:.2f}, second {to_ess[1]:.2f}")
    return f"{result.run}: " + "; ".join(parts)


def agreement_line(result: ModelResult) -> str:
    """Posterior means of ours and each peer (first calls) that differ by more than AGREEMENT_MCSE MCSEs."""
    return f"{result.run}: " + "; ".join(side + ": " + agreement(result.ours[0].table, calls[0].table)
                                         for side, calls in result.peers.items())


def agreement(ours: pd.DataFrame, peer: pd.DataFrame) -> str:
    """Whether the posterior means of two tables agree within AGREEMENT_MCSE MCSEs."""
    names = [n for n in ours.index if n in peer.index]
    z = (ours.loc[names, "mean"] - peer.loc[names, "mean"]) / np.hypot(
        ours.loc[names, "mcse_mean"], peer.loc[names, "mcse_mean"])
    far = z[z.abs() > AGREEMENT_MCSE]
    if far.empty:
        return f"posterior means agree within {AGREEMENT_MCSE:g} MCSE (max |z| = {z.abs().max():.1f})"
    listed = ", ".join(f"{n} (ours {ours.loc[n, 'mean']:.2f}, peer {peer.loc[n, 'mean']:.2f}, z = {v:.1f})"
                       for n, v in far.items())
    return f"posterior means differ by more than {AGREEMENT_MCSE:g} MCSE: {listed}"






def model_heading(number: int) -> str:
    title, formula = CHEESE_MODELS[number]
    return f"Model {number}: {title} — `{formula}`"


# -- report ---------------------------------------------------------------------------



def runs_text(configs: dict[str, RunConfig]) -> str:
    """The runs' chains, draws and warmup, in one line."""
    return "runs: " + ", ".join(f"{run} {c.chains} chains × {c.draws} draws after {c.warmup} warmup"
                                for run, c in configs.items())


def markdown_report(results: list[ModelResult], configs: dict[str, RunConfig], info: list[str],
                    data_note: str, cache: str) -> str:
    """All models' tables as Markdown for benchmarks/RESULTS.md."""
    lines = ["## Cheese models: multilevel vs NumPyro", ""]
    lines += [f"- {line}" for line in [*info, load_line(), cache_line(cache)]]
    lines += [f"- data: {data_note}",
              f"- {runs_text(configs)}, seed {next(iter(configs.values())).seed}; float64 on every side; NumPyro "
              "chains run sequentially; peers: non-centred (peer) and centred (peer-centred)",
              "- all fits in one process; process s = the script's imports (first calls only) + the call's wall "
              f"time (a first call includes compilation); {MEASURES}; min bulk ESS and max R-hat over fixed "
              "effects, sigma, sds (and correlations)", ""]
    for result in results:
        lines += [f"### {model_heading(result.number)}, {result.run}", "",
                  markdown_table(HEADER, result_rows(result)), "", f"- {ratio_line(result)}",
                  f"- {agreement_line(result)}", ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 2 chains, 200 warmup, 200 draws, default run only (numbers mean nothing)")
    parser.add_argument("--data", choices=("real", "simulated"), default=None,
                        help=f"real ({REAL_DATA}) or simulated ratings; default real if the file exists")
    parser.add_argument("--models", type=int, nargs="+", choices=sorted(CHEESE_MODELS),
                        default=sorted(CHEESE_MODELS), help="which cheese models to run (default all)")
    add_run_options(parser)
    parser.add_argument("--seed", type=int, default=1, help="seed of every side (default 1)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configs = {run: RunConfig(chains=args.chains, warmup=args.warmup, draws=draws, seed=args.seed)
               for run, draws in resolve_runs(args).items()}
    data, data_note = load_data(args.data)
    cold = tempfile.TemporaryDirectory(prefix="multilevel-bench-cache-") if args.cache == "cold" else None
    if cold:   # read at the first fit: every fit of this process compiles what no earlier run left
        os.environ["MULTILEVEL_CACHE_DIR"] = cold.name
    clock = CompileClock(jax)
    info = machine_info()
    print("\n".join(info), f"data: {data_note}", f"{runs_text(configs)}, seed {args.seed}"
          + (" (--quick: smoke test, not a benchmark)" if args.quick else ""), sep="\n", flush=True)
    results = []
    for number in args.models:
        for run, config in configs.items():
            result = bench_model(data, number, f"{config.chains}×{config.draws}", config, clock)
            results.append(result)
            print(f"\n{model_heading(number)}\n{text_table(HEADER, result_rows(result))}\n{ratio_line(result)}\n"
                  f"{agreement_line(result)}", flush=True)
    print("\n----- Markdown for benchmarks/RESULTS.md -----\n")
    print(markdown_report(results, configs, info, data_note, args.cache))


if __name__ == "__main__":
    sys.exit(main())
