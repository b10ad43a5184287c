"""MkDocs hooks: the reference pages, generated from the code at build time (scripts/reference.py),
and the Benchmarks page's tables, from benchmarks/results/ (scripts/benchmarks_page.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.structure.files import File

# MkDocs puts back its sys.path once this module is loaded: what comes from the repository is
# imported now, not inside the hooks.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripts.benchmarks_page import render  # noqa: E402
from scripts.reference import PAGES  # noqa: E402


def on_files(files, config):
    for uri, page in PAGES.items():
        files.append(File.generated(config, uri, content=page()))
    return files


def on_page_markdown(markdown, page, config, files):
    """The Benchmarks page's figures, drawn from benchmarks/results/ (scripts/benchmarks_page.py)."""
    return render(markdown) if page.file.src_uri == "benchmarks.md" else markdown
