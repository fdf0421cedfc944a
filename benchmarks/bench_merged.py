"""Benchmark identical rows sampled as one weighted row (issue 14, item 2: exact aggregation).

Simulated survey-like data: 50,000 binary responses of people in 500 groups, with a
three-level factor ``f`` and a binary ``flag`` (12 covariate patterns per group, so at
most 12,000 distinct rows); ``eta = -0.2 + 0.4 flag + (0, 0.5, -0.5)[f] + a_g``,
``a_g ~ N(0, 0.6²)``. Model ``y ~ flag + f + (1 | g)``, bernoulli, default priors, NUTS
(``ml.fit`` defaults: 4 chains × 1000 draws after 1000 warmup; ``--draws``/``--warmup``
for a long run). Two sides, each a fresh process (this script with ``--worker``): ours as
shipped (the rows merged) and ours with merging turned off (every row in the gradient).
Both sample the same posterior; the table gives the whole-process wall and CPU time,
min bulk ESS, min ESS/s, the time to a min bulk ESS of 400 (wall × 400 / ESS) and the
fit's split, then the ratio merged/unmerged of min ESS/s.
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
import pandas as pd

import multilevel as ml
from common import machine_info, markdown_table, text_table
from multilevel.model import merged_rows

FORMULA = "y ~ flag + f + (1 | g)"
PARAMETERS = ("Intercept", "flag", "f[b]", "f[c]", "sd(Intercept|g)")
RESULT_PREFIX = "RESULT "
SIDES = ("merged", "unmerged")


def simulate(rows: int, groups: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g, f, flag = rng.integers(0, groups, rows), rng.integers(0, 3, rows), rng.integers(0, 2, rows)
    eta = -0.2 + 0.4 * flag + np.array([0.0, 0.5, -0.5])[f] + 0.6 * rng.normal(size=groups)[g]
    return pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "flag": flag,
                         "f": np.array(list("abc"))[f], "g": g})


def worker(args: argparse.Namespace) -> dict:
    if args.worker == "unmerged":
        merged_rows.MERGE_BELOW = 0.0   # no design merges: every row in the gradient
    data = simulate(args.rows, args.groups, args.data_seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ml.fit(FORMULA, data, family="bernoulli", chains=args.chains, draws=args.draws, warmup=args.warmup,
                     seed=args.seed, progress=False)
    table = fit.summary(group_effects=False)
    wall = time.perf_counter() - PROCESS_START
    cpu = sum(os.times()[:2])
    return {"wall": wall, "cpu": cpu, "ess": float(table.loc[list(PARAMETERS), "ess_bulk"].min()),
            "rhat": float(table.loc[list(PARAMETERS), "r_hat"].max()),
            "means": table.loc[list(PARAMETERS), "mean"].tolist(), "mcse": table.loc[list(PARAMETERS), "mcse_mean"].tolist(),
            "timings": fit.sampler_info["timings"], "merged": fit.sampler_info.get("merged_rows", "not merged"),
            "sampler": fit.sampler_info["sampler"]}


def run_side(side: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--worker", side, "--rows", str(args.rows), "--groups", str(args.groups),
               "--chains", str(args.chains), "--draws", str(args.draws), "--warmup", str(args.warmup),
               "--seed", str(args.seed), "--data-seed", str(args.data_seed)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith(RESULT_PREFIX))[len(RESULT_PREFIX):])


def row(side: str, r: dict) -> list[str]:
    t = r["timings"]
    return [side, r["sampler"], r["merged"], f"{r['wall']:.1f}", f"{r['cpu']:.1f}", f"{r['ess']:.0f}",
            f"{r['rhat']:.3f}", f"{r['ess'] / r['wall']:.1f}", f"{r['wall'] * 400 / r['ess']:.1f}",
            f"{t['compile']:.1f}", f"{(t['warmup'] or 0):.1f}", f"{t['sampling']:.1f}", f"{t['assembly']:.1f}"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke test: 5,000 rows, 2 x 200 (numbers mean nothing)")
    args = parser.parse_args(argv)
    if args.worker:
        print(RESULT_PREFIX + json.dumps(worker(args)))
        return
    if args.quick:
        args.rows, args.groups, args.chains, args.draws, args.warmup = 5_000, 50, 2, 200, 200
    info = machine_info()
    print("\n".join(info))
    results = {side: run_side(side, args) for side in SIDES}
    header = ["side", "sampler", "rows", "process s", "CPU s", "min bulk ESS", "max R-hat", "min ESS/s",
              "s to ESS 400", "compile", "warmup", "sampling", "assembly"]
    rows = [row(side, r) for side, r in results.items()]
    a, b = results["merged"], results["unmerged"]
    z = np.max(np.abs((np.array(a["means"]) - b["means"]) / np.hypot(a["mcse"], b["mcse"])))
    lines = [f"- ratio merged/unmerged of min ESS/s (whole process): {(a['ess'] / a['wall']) / (b['ess'] / b['wall']):.2f}; "
             f"of CPU s: {b['cpu'] / a['cpu']:.2f}",
             f"- posterior means within 4 MCSE: {'agree' if z < 4 else 'DISAGREE'} (max |z| = {z:.1f})"]
    print(text_table(header, rows))
    print("\n".join(lines))
    print("\n" + "\n".join(f"- {line}" for line in info))
    print(f"- model `{FORMULA}`, bernoulli, {args.rows:,} rows x {args.groups} groups; "
          f"{args.chains} chains x {args.draws} draws after {args.warmup} warmup, seed {args.seed}\n")
    print(markdown_table(header, rows))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
