"""One schema for every results file in `benchmarks/results/`, which the docs' Benchmarks
page reads when the site is built (`scripts/benchmarks_page.py`):

    {"schema": 1, "benchmark": "neutone.py", "command": "python benchmarks/neutone.py ...",
     "measured": "2026-12-05", "machine": "<cpu>, 2 of 2 cores, ...",
     "tables": [{"title": ..., "columns": [...], "rows": [[...], ...]}], "data": {...}}

`data` is what the script measured, in its own shape; `tables` are drawn from it: a list of
records is a table, a mapping of records is a table with the key as its first column, the
scalars and mappings of scalars left over are one table of figures, and the repeats behind a
median are left out.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SCHEMA = 1
FIELDS = ("schema", "benchmark", "command", "measured", "machine", "tables", "data")


def machine() -> str:
    """The CPU, the cores this process may use, the memory, the system and Python."""
    cpu = platform.processor() or platform.machine()
    info = Path("/proc/cpuinfo")
    if info.exists():
        cpu = next((line.split(":", 1)[1].strip() for line in info.read_text().splitlines()
                    if line.startswith("model name")), cpu)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}, {len(os.sched_getaffinity(0))} of {os.cpu_count()} cores, {memory:.0f} GB, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def _cell(value):
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if _flat_list(value):  # e.g. the repeats a median came from
        return ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(", ", ": "))[:80]
    return value


def _flat(record: dict) -> dict:
    """A record's mappings of scalars as columns of their own: {"steady": {"rpa": 1}} -> {"steady.rpa": 1}."""
    flat = {}
    for name, value in record.items():
        if isinstance(value, dict) and not any(isinstance(v, (dict, list)) for v in value.values()):
            flat.update({f"{name}.{key}": v for key, v in value.items()})
        else:
            flat[name] = value
    return flat


def _records(title: str, records: list[dict], key: str | None = None, keys: list | None = None) -> dict:
    records = [_flat(r) for r in records]
    columns = list(dict.fromkeys(c for r in records for c in r if not isinstance(r[c], (dict, list))
                                 or _flat_list(r[c])))
    rows = [[*([k] if key else []), *(_cell(r.get(c)) for c in columns)] for k, r in zip(keys or records, records)]
    return {"title": title, "columns": [*([key] if key else []), *columns], "rows": rows}


def _nested(record: dict) -> bool:
    """Whether a record holds records of its own (then it is tables, not a row)."""
    return any(isinstance(v, dict) and any(isinstance(w, dict) for w in v.values()) for v in record.values())


def _flat_list(value) -> bool:
    return isinstance(value, list) and len(value) <= 8 and all(isinstance(v, (int, float, str)) for v in value)


def tables_of(data: dict, title: str = "") -> list[dict]:
    """The tables `data` holds, found by its shape (see the module's docstring)."""
    tables, figures = [], []
    medians = any(name.startswith("median") for name in data)
    for name, value in data.items():
        if name in ("date", "measured") and not title:  # the envelope's
            continue
        if medians and name in ("runs", "rounds", "seconds"):  # the repeats behind the medians stay in `data`
            continue
        label = f"{title} / {name}" if title else name
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables.append(_records(label, value))
        elif isinstance(value, dict) and value and all(isinstance(v, dict) and not _nested(v) for v in value.values()):
            tables.append(_records(label, list(value.values()), "case", list(value)))
        elif isinstance(value, dict) and any(isinstance(v, dict) for v in value.values()):
            tables.extend(tables_of(value, label))
        elif isinstance(value, dict):  # a few named figures: rows of the figures table
            figures.extend([f"{name}: {key}", _cell(v)] for key, v in value.items())
        else:
            figures.append([name, _cell(value)])
    if figures:
        tables.insert(0, {"title": title or "figures", "columns": ["figure", "value"], "rows": figures})
    return tables


def save(name: str, data: dict) -> Path:
    """Write `results/<name>.json` in the schema: this run's command, date and machine."""
    script = Path(sys.argv[0])
    document = {
        "schema": SCHEMA,
        "benchmark": script.name,
        "command": " ".join(["python", f"benchmarks/{script.name}", *sys.argv[1:]]),
        "measured": date.today().isoformat(),
        "machine": machine(),
        "tables": tables_of(data),
        "data": data,
    }
    out = RESULTS / f"{name}.json"
    partial = out.with_suffix(".json.partial")
    partial.write_text(json.dumps(document, indent=1) + "\n")
    partial.replace(out)
    return out


def load_data(name: str) -> dict:
    """What an earlier run measured (`data` of `results/<name>.json`), or {} if there is none."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text())["data"] if path.exists() else {}
