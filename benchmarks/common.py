"""What every benchmark script prints the same way: machine information and tables."""

from __future__ import annotations

import datetime
import os
import platform

import arviz as az
import jax
import numpyro

import multilevel as ml


class TableMetrics:
    """``min_ess`` and ``max_rhat`` of a result whose ``table`` has ArviZ's ``ess_bulk``, ``r_hat``."""

    @property
    def min_ess(self) -> float:
        return float(self.table["ess_bulk"].min())

    @property
    def max_rhat(self) -> float:
        return float(self.table["r_hat"].max())


def machine_info() -> list[str]:
    """Date, platform, CPUs, load and library versions."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"date: {datetime.datetime.now().astimezone().isoformat(timespec='minutes')}",
        f"platform: {platform.platform()} ({platform.machine()})",
        f"CPUs: {os.cpu_count()}; load average at start: {load}",
        f"python {platform.python_version()}, jax {jax.__version__}, numpyro {numpyro.__version__}, "
        f"arviz {az.__version__}, multilevel {ml.__version__}",
    ]


def text_table(header: list[str], rows: list[list[str]]) -> str:
    """Rows as a fixed-width text table under ``header``."""
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in [header, *rows])


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """Rows as a Markdown table under ``header``; a ``|`` in a cell (``sd(x|g)``) is escaped."""
    return "\n".join("| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |"
                     for line in [header, ["---"] * len(header), *rows])
