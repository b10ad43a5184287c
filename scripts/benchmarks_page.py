"""The docs' Benchmarks page: `docs/benchmarks.md` says what each script measures and how to
run it, and a marker `<!-- results NAME -->` in it becomes, when the site is built
(docs/hooks.py), the tables of `benchmarks/results/NAME.json` with the date, the machine and
the command they came from (the schema: `benchmarks/record.py`)."""

from __future__ import annotations

import json
import re

from benchmarks.record import FIELDS, RESULTS

MARKER = re.compile(r"^<!-- results (?P<name>[\w.-]+) -->$", re.MULTILINE)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1e4:
            return f"{value:,.0f}"
        return f"{value:,.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def load(name: str) -> dict:
    """A results file, checked against the schema."""
    path = RESULTS / f"{name}.json"
    document = json.loads(path.read_text())
    missing = set(FIELDS) - document.keys()
    if missing:
        raise ValueError(f"{path}: not in benchmarks/record.py's schema (no {', '.join(sorted(missing))})")
    return document


def results_markdown(name: str) -> str:
    """The tables of one results file, under the line that says when, where and how."""
    document = load(name)
    lines = [f"*Measured {document['measured']} on {document['machine']}, with "
             f"`{document['command']}` (`benchmarks/results/{name}.json`).*", ""]
    for table in document["tables"]:
        if len(document["tables"]) > 1:
            lines += [f"**{table['title']}**", ""]
        lines += ["| " + " | ".join(_cell(c) for c in table["columns"]) + " |",
                  "|" + "---|" * len(table["columns"])]
        lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in table["rows"]]
        lines.append("")
    return "\n".join(lines)


def render(markdown: str) -> str:
    """The page with every marker replaced by its results."""
    return MARKER.sub(lambda m: results_markdown(m.group("name")), markdown)


def markers(markdown: str) -> list[str]:
    return MARKER.findall(markdown)
