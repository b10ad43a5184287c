"""The one way nas imports ddsp: with a `crepe` module available first."""

from __future__ import annotations

import importlib
from types import ModuleType


def ddsp_module(name: str = "ddsp") -> ModuleType:
    """Import `ddsp` or one of its submodules (e.g. "ddsp.training.data")."""
    from .crepe_compat import install  # imports TensorFlow: only when ddsp is wanted

    install()
    return importlib.import_module(name)
