"""What every benchmark script prints and computes the same way: machine information, tables,
the run settings, and the standard measures of a fit (min bulk ESS per second of the whole
process, the seconds to a min bulk ESS of 400, and where the process's time went).

Light on purpose (the standard library only at module level): a worker process imports it
before its own side's stack, so that it pays for nothing it does not use.

Definitions (see benchmarks/README.md, "What every benchmark reports"):

- **process s** ``P``: wall time of the worker process from its first line (imports, data,
  compilation, warmup, sampling, assembling the result) to the end of the fit;
- **min ESS/s** = min bulk ESS / ``P``;
- **s to ESS 400** = ``F + S × 400 / E``, where ``E`` is the min bulk ESS, ``S`` the seconds that
  grow with the number of kept draws (the post-warmup sampling and, for the collapsed sampler,
  its exact draws) and ``F = P - S`` the fixed costs (imports, data, compilation, warmup,
  assembly). It assumes the ESS grows in proportion to the kept draws after warmup (below 400,
  an extrapolation; above, what a shorter run would have needed). When a side does not time
  its warmup apart (NUTS and mwg in multilevel, NumPyro), ``S`` is its warmup-and-sampling
  time times ``draws / (warmup + draws)``, every iteration taken to cost the same (an
  estimate, marked ``~`` in the tables).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import tempfile

TARGET_ESS = 400.0
#: The package's defaults (chains, kept draws per chain, warmup) and the long run's kept draws.
DEFAULT_CHAINS, DEFAULT_DRAWS, DEFAULT_WARMUP, LONG_DRAWS = 4, 1000, 1000, 5000
QUICK_CHAINS, QUICK_DRAWS, QUICK_WARMUP = 2, 200, 200
#: Where the time of a process went, in this order (seconds; None: not measured apart).
SPLIT = ("imports", "compile", "warmup", "sampling", "draws", "assembly")
STANDARD_HEADER = ["process s", "min bulk ESS", "min ESS/s", f"s to ESS {TARGET_ESS:g}",
                   *(f"{part} s" for part in SPLIT), "other s"]


class TableMetrics:
    """``min_ess`` and ``max_rhat`` of a result whose ``table`` has ArviZ's ``ess_bulk``, ``r_hat``."""

    @property
    def min_ess(self) -> float:
        return float(self.table["ess_bulk"].min())

    @property
    def max_rhat(self) -> float:
        return float(self.table["r_hat"].max())


# -- the split of a process's time ------------------------------------------------------

def ours_split(import_seconds: float, timings: dict) -> dict:
    """The split of one of our fits from ``fit.sampler_info["timings"]``; ``warmup`` None when the
    sampler does not time it apart (its time is then in ``sampling``)."""
    return {"imports": import_seconds, "compile": timings["compile"], "warmup": timings["warmup"],
            "sampling": timings["sampling"], "draws": timings["draws"], "assembly": timings["assembly"]}


def peer_split(import_seconds: float, compile_seconds: float, run_seconds: float) -> dict:
    """The split of a NumPyro fit: its imports, the compilation inside its run (measured by
    ``workers.CompileClock``) and the rest of the run (warmup and sampling together, ``warmup``
    None). ``run_seconds`` ends when the samples are ready (``block_until_ready`` on
    ``get_samples``): ``mcmc.run`` returns before the last chain's computation ends."""
    return {"imports": import_seconds, "compile": compile_seconds, "warmup": None,
            "sampling": run_seconds - compile_seconds, "draws": 0.0, "assembly": 0.0}


def scaled_seconds(result: dict) -> tuple[float, bool]:
    """``S``: the seconds of ``result`` that grow with the number of kept draws, and whether it is
    an estimate (warmup not timed apart: the chains' time shared by iterations).

    ``result`` has ``split`` (see :data:`SPLIT`), ``warmup`` and ``draws`` (iterations per chain).
    """
    split = result["split"]
    chains, estimated = split["sampling"], split["warmup"] is None
    if estimated:
        chains *= result["draws"] / (result["warmup"] + result["draws"])
    return chains + (split["draws"] or 0.0), estimated


def ess_per_second(result: dict) -> float:
    """Min bulk ESS per second of the whole process."""
    return result["min_ess"] / result["process_seconds"]


def seconds_to_ess(result: dict, target: float = TARGET_ESS) -> float:
    """``F + S × target / E`` (see the module's docstring)."""
    scaled, _ = scaled_seconds(result)
    return result["process_seconds"] - scaled + scaled * target / max(result["min_ess"], 1e-9)


def standard_cells(result: dict) -> list[str]:
    """The cells of :data:`STANDARD_HEADER` for one result (a dict with ``process_seconds``,
    ``min_ess``, ``split``, ``warmup`` and ``draws``)."""
    split = result["split"]
    _, estimated = scaled_seconds(result)
    known = sum(v for v in split.values() if v is not None)
    parts = [("—" if split[p] is None else f"{split[p]:.2f}") for p in SPLIT]
    if estimated:
        parts[SPLIT.index("sampling")] += " (with warmup)"
    return [f"{result['process_seconds']:.1f}", f"{result['min_ess']:.0f}", f"{ess_per_second(result):.2f}",
            ("~" if estimated else "") + f"{seconds_to_ess(result):.1f}", *parts,
            f"{result['process_seconds'] - known:.2f}"]


def ratio_cells(ours: dict | None, result: dict) -> list[str]:
    """Ours / this side on min ESS/s, and this / ours on the seconds to ESS 400 ("—" for ours)."""
    if ours is None or result is ours:
        return ["—", "—"]
    return [f"{ess_per_second(ours) / ess_per_second(result):.2f}",
            f"{seconds_to_ess(result) / seconds_to_ess(ours):.2f}"]


RATIO_HEADER = ["ESS/s: ours / this", f"s to ESS {TARGET_ESS:g}: this / ours"]


# -- run settings --------------------------------------------------------------------------

def add_run_options(parser, long_draws: int = LONG_DRAWS) -> None:
    """``--runs default long``, ``--chains``, ``--draws``, ``--warmup`` and ``--long-draws``."""
    parser.add_argument("--runs", nargs="+", choices=("default", "long"), default=None,
                        help="the package defaults and/or the long run (default both; --quick: default only)")
    parser.add_argument("--chains", type=int, help=f"chains (default {DEFAULT_CHAINS})")
    parser.add_argument("--draws", type=int, help=f"kept draws per chain of the default run (default {DEFAULT_DRAWS})")
    parser.add_argument("--long-draws", type=int, default=long_draws,
                        help=f"kept draws per chain of the long run (default {long_draws})")
    parser.add_argument("--warmup", type=int, help=f"warmup iterations per chain (default {DEFAULT_WARMUP})")
    parser.add_argument("--cache", choices=("cold", "user"), default="cold",
                        help="multilevel's persistent compilation cache: cold (default: an empty one for every "
                        "process, what a first fit sees) or user (yours, $MULTILEVEL_CACHE_DIR or "
                        "~/.cache/multilevel/jax, as earlier runs left it)")


def resolve_runs(args) -> dict[str, int]:
    """Fill ``chains``, ``draws`` and ``warmup`` (the defaults, or --quick's) and ``runs``; the kept
    draws per chain of each chosen run, by run name."""
    for name, full, quick in (("chains", DEFAULT_CHAINS, QUICK_CHAINS), ("draws", DEFAULT_DRAWS, QUICK_DRAWS),
                              ("warmup", DEFAULT_WARMUP, QUICK_WARMUP)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.runs is None:
        args.runs = ["default"] if args.quick else ["default", "long"]
    draws = {"default": args.draws, "long": args.long_draws}
    return {run: draws[run] for run in args.runs}


@contextlib.contextmanager
def cache_environment(cache: str):
    """The environment of one worker process: with ``cache="cold"``, ``MULTILEVEL_CACHE_DIR`` an
    empty directory of its own (removed afterwards), so that no earlier run's compiled programs
    are read; with ``"user"``, the environment as it is."""
    if cache == "user":
        yield dict(os.environ)
        return
    with tempfile.TemporaryDirectory(prefix="multilevel-bench-cache-") as directory:
        yield {**os.environ, "MULTILEVEL_CACHE_DIR": directory}


def run_worker_process(command: list[str], side: str, cache: str, prefix: str = "RESULT ") -> dict:
    """Run one worker ``command`` in a fresh process (in :func:`cache_environment`) and return the
    JSON of its last stdout line after ``prefix``, or ``{"side": side, "error": ...}`` (the last
    line of its stderr) when it fails."""
    import json
    import subprocess

    with cache_environment(cache) as env:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return {"side": side, "error": lines[-1] if lines else f"exit status {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1].removeprefix(prefix))


def cache_line(cache: str) -> str:
    """What ``--cache`` meant for the run, for the report."""
    return ("compilation cache: cold (an empty MULTILEVEL_CACHE_DIR per process)" if cache == "cold" else
            "compilation cache: the user's, as earlier runs left it (warm or cold)")


# -- printing ----------------------------------------------------------------------------

def machine_info() -> list[str]:
    """Date, platform, CPUs, load and library versions."""
    import arviz as az
    import jax
    import numpyro

    import multilevel as ml

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"date: {datetime.datetime.now().astimezone().isoformat(timespec='minutes')}",
        f"platform: {platform.platform()} ({platform.machine()})",
        f"CPUs: {os.cpu_count()}; load average at start: {load}",
        f"python {platform.python_version()}, jax {jax.__version__}, numpyro {numpyro.__version__}, "
        f"arviz {az.__version__}, multilevel {ml.__version__}",
    ]


def load_line() -> str:
    """The load average now, for the end of a run."""
    return "load average at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def text_table(header: list[str], rows: list[list[str]]) -> str:
    """Rows as a fixed-width text table under ``header``."""
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in [header, *rows])


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """Rows as a Markdown table under ``header``; a ``|`` in a cell (``sd(x|g)``) is escaped."""
    return "\n".join("| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |"
                     for line in [header, ["---"] * len(header), *rows])


#: The standard columns but process s, in one line for the Markdown notes (``DEFINITIONS`` with it).
MEASURES = ("min ESS/s = min bulk ESS (ArviZ) / process s; s to ESS 400 = "
            "F + S × 400 / min ESS, S = the seconds that grow with the kept draws (post-warmup sampling, "
            "exact draws), F = process s - S (ESS taken to grow in proportion to the draws after warmup; "
            "~ = S estimated as the chains' time × draws / (warmup + draws), warmup not timed apart); "
            "split: imports, compile (JAX tracing and compilation), warmup, sampling, draws (exact draws "
            "after the chains), assembly (ours: the Fit), other = the rest "
            "(data, model building, starting values)")
DEFINITIONS = ("process s = wall time of the worker process from its first line (imports, data, compilation, "
               "warmup, sampling, assembly); " + MEASURES)
