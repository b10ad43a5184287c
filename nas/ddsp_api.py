"""Every part of ddsp that nas uses, by ddsp's own module names: `ddsp_api.losses()` is
`ddsp.losses`. Each is imported on first use, with a `crepe` module made available first
(`nas.crepe_compat`): ddsp imports crepe at import time, and nas must import without
TensorFlow where no model is needed (the flows, a cached re-run)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType


def _module(name: str) -> ModuleType:
    from .crepe_compat import install  # imports TensorFlow: only when ddsp is wanted

    install()
    lazy_imports_in_their_thread()
    if name.startswith("ddsp.training.") and "ddsp.training" not in sys.modules:
        _bare_package("ddsp.training")
    return importlib.import_module(name)


def lazy_imports_in_their_thread() -> None:
    """tensorflow_datasets, which ddsp's data module imports, imports its dataset builders in
    etils' `epy.lazy_imports()`, which swaps `builtins.__import__` for the whole process: an
    import that another thread runs then gets a lazy stand-in that fails when used. Prefect's
    log worker imports a setting on each call, and died so in a `nas run` (whose exit then
    hung). From here on the swap holds in the thread that opened the context alone."""
    import builtins
    import contextlib
    import threading

    from etils import epy

    opened = epy.lazy_imports
    if getattr(opened, "in_their_thread", False):
        return

    @contextlib.contextmanager
    def in_their_thread(*args, **kwargs):
        thread, real = threading.get_ident(), builtins.__import__
        with opened(*args, **kwargs):
            lazy = builtins.__import__

            def dispatch(*call, **named):
                return (lazy if threading.get_ident() == thread else real)(*call, **named)

            builtins.__import__ = dispatch
            try:
                yield
            finally:
                builtins.__import__ = lazy  # etils puts back what it found on the way out

    in_their_thread.in_their_thread = True
    epy.lazy_imports = in_their_thread


def _bare_package(name: str) -> None:
    """The package registered without running its __init__, so that its submodules import
    one by one: ddsp.training's imports all of them, its evaluators among them (mir_eval and
    scipy.stats: about 1 s of CPU in every process that trains, evaluates or exports)."""
    package = importlib.util.module_from_spec(importlib.util.find_spec(name))  # __path__ set, not executed
    sys.modules[name] = package
    parent, _, child = name.rpartition(".")
    setattr(importlib.import_module(parent), child, package)


def ddsp() -> ModuleType:
    """The package: its version, `processors` (ProcessorGroup, Add) and `synths`."""
    return _module("ddsp")


def core() -> ModuleType:  # frequency_filter
    return _module("ddsp.core")


def effects() -> ModuleType:  # Reverb
    return _module("ddsp.effects")


def losses() -> ModuleType:  # SpectralLoss
    return _module("ddsp.losses")


def spectral_ops() -> ModuleType:  # compute_loudness, compute_power
    return _module("ddsp.spectral_ops")


def synths() -> ModuleType:  # Harmonic, FilteredNoise
    return _module("ddsp.synths")


def data() -> ModuleType:  # TFRecordProvider: the reader of our records
    return _module("ddsp.training.data")


def decoders() -> ModuleType:  # RnnFcDecoder
    return _module("ddsp.training.decoders")


def models() -> ModuleType:  # Autoencoder (the reference model)
    return _module("ddsp.training.models")


def nn() -> ModuleType:  # DictLayer, Normalize, split_to_dict, ensure_4d
    return _module("ddsp.training.nn")


def postprocessing() -> ModuleType:  # the dataset statistics: detect_notes, fit_quantile_transform, hz_to_midi
    return _module("ddsp.training.postprocessing")


def preprocessing() -> ModuleType:  # F0LoudnessPreprocessor, DB_RANGE, F0_RANGE
    return _module("ddsp.training.preprocessing")


def trainers() -> ModuleType:  # Trainer (the reference training loop)
    return _module("ddsp.training.trainers")


def prepare_tfrecord_lib() -> ModuleType:  # ddsp's own dataset preparation (the benchmark's reference)
    return _module("ddsp.training.data_preparation.prepare_tfrecord_lib")
