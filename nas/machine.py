"""This machine's own folder, `NAS_CACHE_DIR` (default `~/.cache/nas`): a bucket's data
staged for reading (`nas.store.cache`) and XLA's compiled training steps.

XLA keeps each step it compiles under `<cache>/xla/<machine>/`, keyed by the function's
name, its shapes, its HLO and the device, and checked in full when loaded: the same
training started again in a fresh process (a command run again after a failure, a resumed
run, a sweep's or a test's repeated point), or the same settings on another dataset (the
step reads its statistics, `decoders.hold_input_stats_in_variables`), loads its step
instead of compiling it (a cnn-tiny step: 4 s of CPU). A second training in one process
compiles its own: its layers and the step's branches are numbered on. So would a resumed
run whose restore came first (`Trainer.trace_step` traces the step before it). Light to
import: `nas` asks for the cache as it is imported, before TensorFlow starts its devices
(when XLA reads its flags)."""

from __future__ import annotations

import hashlib
import os
import platform
from glob import glob
from importlib import metadata
from pathlib import Path

XLA_CACHE_FLAG = "--tf_xla_persistent_cache_directory"
OURS = "NAS_XLA_CACHE_FLAG"  # the flag nas put in TF_XLA_FLAGS


def cache_dir() -> Path:
    return Path(os.environ.get("NAS_CACHE_DIR") or Path.home() / ".cache" / "nas").expanduser().resolve()


def compiled_steps_dir(machine: str = "") -> Path:
    """XLA's compiled steps for `machine` (what they are built for); all of them without."""
    return cache_dir() / "xla" / machine


def persist_compiled_steps() -> None:
    """Points XLA at this machine's compiled steps through TF_XLA_FLAGS. The processes a
    command starts inherit the flag, and `OURS` names it, so that one whose NAS_CACHE_DIR is
    another (a machine of its own in the tests) points at its own. A cache the user set
    stands, and one that cannot be written is not asked for: XLA fails a compile it cannot save."""
    flags = os.environ.get("TF_XLA_FLAGS", "")
    inherited = os.environ.pop(OURS, "")
    if inherited:
        flags = " ".join(f for f in flags.split() if f != inherited)
    if XLA_CACHE_FLAG in flags:
        return
    folder = compiled_steps_dir(_machine())
    existing = next(p for p in (folder, *folder.parents) if p.exists())  # XLA makes the rest
    if not os.access(existing, os.W_OK):
        return
    flag = f"{XLA_CACHE_FLAG}={folder}"
    os.environ.update(TF_XLA_FLAGS=f"{flags} {flag}".strip(), **{OURS: flag})


def _machine() -> str:
    """What a compiled step is built for and XLA's key leaves out, for a cache on a home folder
    that several machines share: TensorFlow's version, the CPU's instruction sets, the GPUs."""
    try:
        tensorflow = metadata.version("tensorflow")
    except metadata.PackageNotFoundError:
        tensorflow = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next((line for line in cpuinfo if line.startswith(("flags", "Features"))), "")
    except OSError:
        cpu = platform.processor()
    gpus = sorted(Path(p).read_text() for p in glob("/proc/driver/nvidia/gpus/*/information"))
    described = "\n".join([tensorflow, platform.machine(), cpu, *gpus])
    return hashlib.sha256(described.encode()).hexdigest()[:16]
