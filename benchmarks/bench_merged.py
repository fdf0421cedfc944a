"""Benchmark identical rows sampled as one weighted row (issue 14, item 2: exact aggregation).

Simulated survey-like data: 50,000 binary responses of people in 500 groups, with a
three-level factor ``f`` and a binary ``flag`` (12 covariate patterns per group, so at
most 12,000 distinct rows); ``eta = -0.2 + 0.4 flag + (0, 0.5, -0.5)[f] + a_g``,
``a_g ~ N(0, 0.6²)``. Model ``y ~ flag + f + (1 | g)``, bernoulli, default priors, NUTS
(``--runs default long``: ``ml.fit``'s defaults, 4 chains × 1000 draws after 1000 warmup,
and 4 × 5000). Two sides, each a fresh process (this script with ``--worker``): ours as
shipped (the rows merged) and ours with merging turned off (every row in the gradient).
Both sample the same posterior; the table gives the standard columns of
``common.py`` (process s, min bulk ESS, min ESS/s, seconds to ESS 400, the split) and the
process's CPU seconds, then the ratio merged/unmerged of min ESS/s.
"""

# ruff: noqa: E402  (the imports follow the process-start time on purpose)
from __future__ import annotations

import time

PROCESS_START = time.perf_counter()  # before the heavy imports, so that they count

import argparse
import json
import os
import subprocess
import sys
import warnings

import numpy as np

from common import (RATIO_HEADER, STANDARD_HEADER, add_run_options, cache_environment, cache_line, machine_info,
                    markdown_table, ours_split, ratio_cells, resolve_runs, standard_cells, text_table)

FORMULA = "y ~ flag + f + (1 | g)"
PARAMETERS = ["Intercept", "flag", "f[b]", "f[c]", "sd(Intercept|g)"]
RESULT_PREFIX = "RESULT "
SIDES = ("merged", "unmerged")


def simulate(rows: int, groups: int, seed: int):
    import pandas as pd
    rng = np.random.default_rng(seed)
    g, f, flag = rng.integers(0, groups, rows), rng.integers(0, 3, rows), rng.integers(0, 2, rows)
    eta = -0.2 + 0.4 * flag + np.array([0.0, 0.5, -0.5])[f] + 0.6 * rng.normal(size=groups)[g]
    return pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "flag": flag,
                         "f": np.array(list("abc"))[f], "g": g})


def worker(args: argparse.Namespace) -> dict:
    import multilevel as ml
    from multilevel.model import merged_rows
    imports = time.perf_counter() - PROCESS_START
    if args.worker == "unmerged":
        merged_rows.MERGE_BELOW = 0.0   # no design merges: every row in the gradient
    data = simulate(args.rows, args.groups, args.data_seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ml.fit(FORMULA, data, family="bernoulli", chains=args.chains, draws=args.draws, warmup=args.warmup,
                     seed=args.seed, progress=False)
    table = fit.summary(group_effects=False).loc[PARAMETERS]
    return {"process_seconds": time.perf_counter() - PROCESS_START, "cpu": sum(os.times()[:2]),
            "min_ess": float(table["ess_bulk"].min()), "rhat": float(table["r_hat"].max()),
            "means": table["mean"].tolist(), "mcse": table["mcse_mean"].tolist(),
            "split": ours_split(imports, fit.sampler_info["timings"]), "warmup": args.warmup, "draws": args.draws,
            "merged": fit.sampler_info.get("merged_rows", "not merged"), "sampler": fit.sampler_info["sampler"]}


def run_side(side: str, draws: int, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--worker", side, "--rows", str(args.rows), "--groups", str(args.groups),
               "--chains", str(args.chains), "--draws", str(draws), "--warmup", str(args.warmup),
               "--seed", str(args.seed), "--data-seed", str(args.data_seed)]
    with cache_environment(args.cache) as env:
        out = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith(RESULT_PREFIX))[len(RESULT_PREFIX):])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke test: 5,000 rows, 2 x 200 (numbers mean nothing)")
    add_run_options(parser)
    args = parser.parse_args(argv)
    if args.worker:
        print(RESULT_PREFIX + json.dumps(worker(args)))
        return
    runs = resolve_runs(args)
    if args.quick:
        args.rows, args.groups = 5_000, 50
    info = machine_info() + [cache_line(args.cache)]
    print("\n".join(info))
    header = ["run", "side", "rows sampled", *STANDARD_HEADER, "CPU s", "max R-hat", *RATIO_HEADER]
    rows, lines = [], []
    for run, draws in runs.items():
        results = {side: run_side(side, draws, args) for side in SIDES}
        merged, unmerged = results["merged"], results["unmerged"]
        for side, r in results.items():
            rows.append([run, side, r["merged"], *standard_cells(r), f"{r['cpu']:.1f}", f"{r['rhat']:.3f}",
                         *ratio_cells(merged, r)])
        z = np.max(np.abs((np.array(merged["means"]) - unmerged["means"]) / np.hypot(merged["mcse"],
                                                                                   unmerged["mcse"])))
        lines.append(f"- {run}: posterior means within 4 MCSE: {'agree' if z < 4 else 'DISAGREE'} (max |z| = {z:.1f})")
        print(text_table(header, rows))
    print("\n".join(lines))
    print("\n" + "\n".join(f"- {line}" for line in info))
    print(f"- model `{FORMULA}`, bernoulli, {args.rows:,} rows x {args.groups} groups; {args.chains} chains, "
          f"{args.warmup} warmup, seed {args.seed}\n")
    print(markdown_table(header, rows))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
