"""Markdown and HTML rendering of report sections (strings only, no files).

The HTML is one self-contained page: inline CSS, plots as ``data:image/png;base64`` and
no scripts, fonts or URLs, so it opens offline and on an air-gapped lab machine. Every
piece of text that came from the store goes through ``html.escape``.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field

import pandas as pd

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;color:#222;
max-width:1200px}
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:1px solid #ccc;padding-bottom:.2rem;
margin-top:2rem}table{border-collapse:collapse;font-size:.8rem;margin:.5rem 0}
th,td{border:1px solid #ccc;padding:.2rem .45rem;text-align:left}th{background:#f1f1f1}
td.num{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%;height:auto}
.note{color:#555;font-size:.85rem}
.tablewrap{max-width:100%;overflow-x:auto}
td,th{max-width:28rem;overflow-wrap:anywhere;vertical-align:top}
.badge{background:#fde8c8;color:#7a3e00;border:1px solid #e0a050;border-radius:3px;
padding:0 .25rem;white-space:nowrap}
"""
BADGE_PREFIX = "⚠ unstable"


@dataclass
class Section:
    """One report section: a heading, paragraphs, tables and plots (PNG bytes)."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    images: list[tuple[str, bytes]] = field(default_factory=list)


def fmt(value: object) -> str:
    """Format a cell for humans: floats to 4 significant digits, NaN/None as '—'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value.is_integer() and abs(value) >= 1e3:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    return str(value)


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*[]<>|"})


def md_escape(text: str) -> str:
    """Text from the store made inert in Markdown: no links, code, emphasis, HTML or cell
    breaks (intraword underscores, as in metric names, are left alone: GFM ignores them)."""
    out = str(text).replace("\r", " ").replace("\n", " ").translate(_MD_SPECIAL)
    if out.startswith("_"):
        out = "\\" + out
    return out.replace(" _", " \\_").replace("_ ", "\\_ ")


def markdown_table(df: pd.DataFrame, max_rows: int = 60) -> str:
    """A GitHub-flavoured Markdown table (text escaped), truncated with a note."""
    if df.empty:
        return "_(no rows)_\n"

    def cell(v: object) -> str:
        return md_escape(fmt(v))

    lines = ["| " + " | ".join(cell(c) for c in df.columns) + " |",
             "|" + "|".join("---" for _ in df.columns) + "|"]  # fmt: skip
    for row in df.head(max_rows).itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    if len(df) > max_rows:
        lines.append(f"\n_({len(df) - max_rows} more rows in the CSV/Parquet tables)_")
    return "\n".join(lines) + "\n"


def html_table(df: pd.DataFrame, max_rows: int = 200) -> str:
    """An escaped HTML table, numbers right-aligned."""
    if df.empty:
        return '<p class="note">(no rows)</p>'
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for row in df.head(max_rows).itertuples(index=False):
        tds = "".join(_td(v) for v in row)
        body.append(f"<tr>{tds}</tr>")
    more = (
        f'<p class="note">{len(df) - max_rows} more rows in the CSV/Parquet tables</p>'
        if len(df) > max_rows
        else ""
    )
    return (
        f'<div class="tablewrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>{more}"
    )


def _td(v: object) -> str:
    """One escaped cell; an unstable badge is styled so it cannot be missed."""
    text = html.escape(fmt(v))
    if isinstance(v, int | float) and not isinstance(v, bool):
        return f'<td class="num">{text}</td>'
    if isinstance(v, str) and v.startswith(BADGE_PREFIX):
        head, _, rest = text.partition(":")
        return f'<td><span class="badge">{head}</span>{":" + rest if rest else ""}</td>'
    return f"<td>{text}</td>"


def render_markdown(title: str, sections: list[Section]) -> str:
    """The Markdown summary: every section's text and tables (plots live in the HTML)."""
    out = [f"# {md_escape(title)}\n"]
    for s in sections:
        out.append(f"## {md_escape(s.title)}\n")
        out.extend(f"{md_escape(p)}\n" for p in s.paragraphs)
        for caption, df in s.tables:
            out.append(f"**{md_escape(caption)}**\n")
            out.append(markdown_table(df))
        if s.images:
            out.append(f"_{len(s.images)} plot(s) in report.html_\n")
    return "\n".join(out)


def render_html(title: str, sections: list[Section]) -> str:
    """The self-contained HTML page."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # No network: forbid every fetch except inline styles and data: images.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">",
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        parts.extend(f"<p>{html.escape(p)}</p>" for p in s.paragraphs)
        for caption, df in s.tables:
            parts.append(f"<h3>{html.escape(caption)}</h3>{html_table(df)}")
        for alt, png in s.images:
            b64 = base64.b64encode(png).decode("ascii")
            parts.append(f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'
                         f"<figcaption class=\"note\">{html.escape(alt)}</figcaption></figure>")  # fmt: skip
    parts.append("</body></html>")
    return "\n".join(parts)
