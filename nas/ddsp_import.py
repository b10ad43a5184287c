"""The one way nas imports ddsp: with a `crepe` module available first."""

from __future__ import annotations

import importlib
from types import ModuleType

from .crepe_compat import install as _install_crepe


def ddsp_module(name: str = "ddsp") -> ModuleType:
    """Import `ddsp` or one of its submodules (e.g. "ddsp.training.data")."""
    _install_crepe()
    return importlib.import_module(name)
