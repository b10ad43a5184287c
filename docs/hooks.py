"""MkDocs hook: the reference pages, generated from the code at build time (scripts/reference.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.structure.files import File

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def on_files(files, config):
    from scripts.reference import PAGES

    for uri, page in PAGES.items():
        files.append(File.generated(config, uri, content=page()))
    return files
