"""What ``print(fit)`` and a notebook show: brms's ``print`` of a fit.

The header, then the population-level effects, the group-level sds and correlations
per grouping factor (with its number of levels), and the family parameters, each a
small table of the summary's rows; never the group effects themselves (there may
be tens of thousands of them), only their count and how to list them.
"""

from __future__ import annotations

import html
from typing import NamedTuple

import pandas as pd

from ..model.layout import Layout

#: The summary columns shown, as brms shows Estimate, Est.Error, the 95% interval, Rhat and ESS.
SHOWN = ["mean", "sd", "q2.5", "q97.5", "r_hat", "ess_bulk", "ess_tail"]


class Section(NamedTuple):
    """One titled table of the display (``title`` is ``"~tree (696 levels)"`` for a factor)."""

    title: str
    table: pd.DataFrame


class Report(NamedTuple):
    """The display of a fit: header lines, section headings with their tables, footer."""

    header: str
    sections: tuple[tuple[str, tuple[Section, ...]], ...]
    footer: str


def make_report(header: str, table: pd.DataFrame, layout: Layout) -> Report:
    """The display of a fit from its header and ``summary(group_effects=False)`` table (prob 0.95)."""
    shown = table[SHOWN]
    factors: dict[str, list] = {}
    for term in layout.groups:
        factors.setdefault(term.name, [len(term.levels), []])[1] += list(dict.fromkeys([*term.sd_names,
                                                                                        *term.cor_names]))
    parts = [("Population-level effects", (Section("", shown.loc[list(layout.fixed)]),))]
    if factors:
        parts.append(("Group-level effects", tuple(
            Section(f"~{name} ({count} levels)", shown.loc[rows]) for name, (count, rows) in factors.items())))
    smooth_sds = [name for name, _ in layout.smooths]
    if smooth_sds:
        parts.append(("Smooth terms", (Section("", shown.loc[smooth_sds]),)))
    aux = [name for name in layout.aux if name in shown.index and name not in smooth_sds]
    if aux:
        parts.append(("Family parameters", (Section("", shown.loc[aux]),)))
    num_effects = sum(term.q * len(term.levels) for term in layout.groups)
    footer = (f"{num_effects} group effects (each level's deviations) are not shown:\n"
              "fit.ranef() lists them, fit.coef() adds the population-level effects, "
              "fit.summary() has every row." if num_effects else "")
    return Report(header, tuple(parts), footer)


def as_text(report: Report) -> str:
    """The report as plain text, numbers to three decimals (ESS as whole numbers)."""
    lines = [report.header]
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        for heading, sections in report.sections:
            lines += ["", f"{heading}:"]
            for section in sections:
                if section.title:
                    lines.append(section.title)
                lines.append(_rounded(section.table).to_string())
    if report.footer:
        lines += ["", report.footer]
    return "\n".join(lines)


def as_html(report: Report) -> str:
    """The report as HTML: the header as a paragraph, each table as an HTML ``<table>``."""
    parts = ["<p>" + "<br>".join(html.escape(line) for line in report.header.splitlines()) + "</p>"]
    for heading, sections in report.sections:
        parts.append(f"<h4>{html.escape(heading)}</h4>")
        for section in sections:
            if section.title:
                parts.append(f"<p><b>{html.escape(section.title)}</b></p>")
            parts.append(_rounded(section.table).to_html())
    if report.footer:
        parts.append("<p>" + "<br>".join(html.escape(line) for line in report.footer.splitlines()) + "</p>")
    return "\n".join(parts)


def _rounded(table: pd.DataFrame) -> pd.DataFrame:
    out = table.round(3)
    for column in ("ess_bulk", "ess_tail"):
        out[column] = table[column].round().astype("Int64")
    return out
