"""Small table writers (Markdown, LaTeX, CSV) and number formatting.

Written here rather than through ``DataFrame.to_markdown``/``to_latex`` so that the
output is byte-stable for golden files and needs neither tabulate nor jinja2.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Sequence

import pandas as pd

PM = "±"
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "[": "{[}", "]": "{]}",  # a cell starting with "[" after "\\" would read as its optional argument
}


@dataclass(frozen=True)
class Section:
    """A titled table of a document, with an optional note printed under the title."""

    title: str
    table: pd.DataFrame
    note: str = ""


def pct(value: float, digits: int = 1) -> str:
    """A proportion as a percentage string; "—" when undefined."""
    return "—" if value is None or not math.isfinite(value) else f"{100 * value:.{digits}f}"


def pct_pm(mean: float, se: float, digits: int = 1) -> str:
    """``mean ± se`` in percent; the ``± se`` part is dropped when the SE is undefined."""
    if mean is None or not math.isfinite(mean):
        return "—"
    return pct(mean, digits) if se is None or not math.isfinite(se) else f"{pct(mean, digits)} {PM} {pct(se, digits)}"


def interval(low: float, high: float, digits: int = 1) -> str:
    return "—" if not math.isfinite(low) else f"[{pct(low, digits)}, {pct(high, digits)}]"


def number_pm(mean: float, se: float, digits: int = 3) -> str:
    if not math.isfinite(mean):
        return "—"
    return f"{mean:.{digits}f}" if not math.isfinite(se) else f"{mean:.{digits}f} {PM} {se:.{digits}f}"


def markdown_table(table: pd.DataFrame) -> str:
    """GitHub-flavoured pipe table (``|`` in cells escaped); numbers right-aligned."""
    if table.empty:
        return "_(none)_\n"
    header = [str(c) for c in table.columns]
    body = [[_md_cell(v) for v in row] for row in table.itertuples(index=False)]
    align = ["---:" if pd.api.types.is_numeric_dtype(table[c]) else ":---" for c in table.columns]
    lines = [_md_row(header), _md_row(align)] + [_md_row(r) for r in body]
    return "\n".join(lines) + "\n"


def _md_cell(value: object) -> str:
    return str(value).replace("|", r"\|").replace("\n", " ")


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def latex_escape(text: object) -> str:
    escaped = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    return escaped.replace(PM, r"$\pm$").replace("—", "---").replace("†", r"$^\dagger$")


def latex_table(table: pd.DataFrame, caption: str = "") -> str:
    """A ``tabular`` (booktabs rules) wrapped in a ``table`` float with a caption."""
    spec = "".join("r" if pd.api.types.is_numeric_dtype(table[c]) else "l" for c in table.columns) or "l"
    lines = [r"\begin{table}[ht]", r"\centering", r"\small", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(latex_escape(c) for c in table.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(v) for v in row) + r" \\" for row in table.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(rf"\caption{{{latex_escape(caption)}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def render_markdown(title: str, sections: Sequence[Section], preamble: str = "") -> str:
    parts = [f"# {title}\n"]
    if preamble:
        parts.append(preamble.rstrip() + "\n")
    for section in sections:
        parts.append(f"## {section.title}\n")
        if section.note:
            parts.append(section.note.rstrip() + "\n")
        parts.append(markdown_table(section.table))
    return "\n".join(parts)


def render_latex(title: str, sections: Sequence[Section], preamble: str = "") -> str:
    """LaTeX fragments (needs ``booktabs``); notes become comments."""
    parts = [f"% {title}", "% requires \\usepackage{booktabs}"]
    if preamble:
        parts += [f"% {line}" for line in preamble.strip().splitlines()]
    for section in sections:
        parts.append("")
        parts += [f"% {line}" for line in section.note.strip().splitlines()] if section.note else []
        parts.append(latex_table(section.table, section.title).rstrip())
    return "\n".join(parts) + "\n"


def render_csv(table: pd.DataFrame, header_lines: Sequence[str] = ()) -> str:
    """CSV of ``table`` preceded by ``# ...`` comment lines (skip them when reading)."""
    buffer = io.StringIO()
    for line in header_lines:
        buffer.write(f"# {line}\n")
    table.to_csv(buffer, index=False, lineterminator="\n", float_format="%.6g")
    return buffer.getvalue()
