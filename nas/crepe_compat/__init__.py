"""A `crepe`-compatible module backed by nas' CREPE, for ddsp to import.

ddsp imports `crepe` at import time, and the PyPI `crepe` package cannot be installed
on most machines today (its setup downloads weights). `install()` registers this
module as `crepe` only when the real package is absent; where `crepe` is installed,
ddsp gets the real one. The API follows crepe 0.0.16: `predict`, `get_activation`,
`to_local_average_cents`, `to_viterbi_cents`, and `core.build_and_load_model` /
`core.models` which `ddsp.spectral_ops` uses.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np

from ..pitch import SAMPLE_RATE as model_srate
from ..pitch import decode
from ..pitch.tracker import activations, frame_audio
from ..resample import resample
from . import core

__all__ = ["predict", "get_activation", "to_local_average_cents", "to_viterbi_cents", "core", "install"]


def to_local_average_cents(salience: np.ndarray, center: int | None = None) -> np.ndarray | float:
    if salience.ndim == 1:
        centers = None if center is None else np.array([center])
        return float(decode.local_average_cents(salience[None], centers)[0])
    return decode.local_average_cents(salience)


def to_viterbi_cents(salience: np.ndarray) -> np.ndarray:
    return decode.local_average_cents(salience, decode.viterbi_path(salience))


def get_activation(audio, sr, model_capacity="full", center=True, step_size=10, verbose=1, batch_size=32):
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    audio = resample(audio, sr, model_srate)
    hop = int(model_srate * step_size / 1000)
    return activations(frame_audio(audio, hop, center), model_capacity, batch_size)


def predict(audio, sr, model_capacity="full", viterbi=False, center=True, step_size=10, verbose=1, batch_size=32):
    """Returns (time, frequency, confidence, activation) as crepe.predict does."""
    activation = get_activation(audio, sr, model_capacity, center, step_size, verbose, batch_size)
    confidence = activation.max(axis=1)
    cents = to_viterbi_cents(activation) if viterbi else decode.local_average_cents(activation)
    frequency = decode.cents_to_hz(cents)
    frequency[np.isnan(frequency)] = 0
    time = np.arange(confidence.shape[0]) * step_size / 1000.0
    return time, frequency, confidence, activation


def install() -> bool:
    """Make `import crepe` work; True if this module stands in for the real package."""
    if "crepe" in sys.modules:
        return sys.modules["crepe"] is sys.modules[__name__]
    if importlib.util.find_spec("crepe") is not None:
        return False
    sys.modules["crepe"] = sys.modules[__name__]
    sys.modules["crepe.core"] = core
    return True
