"""The CPU synthesis engine: (f0, level) at the control rate -> audio, without TensorFlow.

The level is what the model was trained on (`Engine.level`): A-weighted loudness, or power.

Built from an export folder (`nas.export`): `model.json` and `engine.npz` (decoder
weights + reverb impulse response). The decoder runs in NumPy by default, or as the
exported ONNX model in ONNX Runtime (float or int8) for comparing exports.
"""

from __future__ import annotations

import ctypes
import functools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.config.presets import ModelConfig
from nas.constants import DB_RANGE, F0_RANGE
from nas.store.artifacts import RunSummary
from nas.store.names import MODEL_FILE, WEIGHTS_FILE

from . import decoder as decoders
from .synth import NOISE_BIAS, Reverb, exp_sigmoid, filtered_noise, harmonic_audio, harmonic_controls, noise_spectra

NOISE_SECONDS = 30  # the noise sequence's length, after which it repeats


def _reuse_freed_memory() -> None:
    """Keep glibc from returning every freed audio-sized buffer (> 128 KiB) to the kernel:
    otherwise each call page-faults its buffers in afresh (measured: +0.5 ms per 4 s)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 256 << 20)
    libc.mallopt(m_trim_threshold, 512 << 20)


def noise_sequence(seed: int, sample_rate: int, hop: int) -> np.ndarray:
    """The white noise the filtered-noise synth shapes: uniform in [-1, 1), float32,
    NOISE_SECONDS long (whole hops), from PCG64(seed). Every engine reads it in order from
    the first control frame, so the same input makes the same sound however it is played."""
    length = NOISE_SECONDS * sample_rate // hop * hop
    return np.random.default_rng(seed).uniform(-1.0, 1.0, length).astype(np.float32)


def hz_to_midi(f0_hz: np.ndarray) -> np.ndarray:
    """ddsp.core.hz_to_midi: 0 Hz (and below) maps to MIDI 0."""
    f0 = np.asarray(f0_hz, dtype=np.float32)
    midi = 12.0 * (np.log2(np.maximum(f0, 1e-5)) - np.log2(440.0)) + 69.0
    return np.where(f0 <= 0.0, 0.0, midi)


def scale_inputs(f0_hz: np.ndarray, level_db: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ddsp's preprocessors' scaling: the level (loudness or power, dB) to [0, 1], f0 to
    MIDI / 127."""
    f0_scaled = hz_to_midi(f0_hz) / F0_RANGE
    level_scaled = np.asarray(level_db, dtype=np.float32) / DB_RANGE + 1.0
    return level_scaled.astype(np.float32), f0_scaled.astype(np.float32)


def input_roles(names: list[str]) -> tuple[str, str]:
    """(level, f0) of an exported decoder's two input names: f0 by its name, the level (the
    model's loudness or power) the other."""
    f0 = next(name for name in names if "f0_scaled" in name)
    (level,) = (name for name in names if name != f0)
    return level, f0


class OnnxDecoder:
    """An exported decoder (`decoder.onnx`, `decoder.int8.onnx`) in ONNX Runtime, one thread."""

    def __init__(self, path: Path, threads: int = 1):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.names = input_roles([i.name for i in self.session.get_inputs()])

    def __call__(self, level_scaled: np.ndarray, f0_scaled: np.ndarray) -> np.ndarray:
        feed = {name: x[None, :, None] for name, x in zip(self.names, (level_scaled, f0_scaled))}
        return self.session.run(None, feed)[0][0]


@dataclass(frozen=True)
class RawControls:
    """The decoder's outputs [frames, n] in ddsp's control groups, before their nonlinearities."""

    amps: np.ndarray
    harmonic_distribution: np.ndarray
    noise_magnitudes: np.ndarray


@dataclass(frozen=True)
class Synthesis:
    harmonic: np.ndarray  # the dry harmonic signal
    noise: np.ndarray  # the dry filtered noise
    audio: np.ndarray  # their sum through the reverb


@dataclass
class SynthTimings:
    """Seconds each stage of `Engine.synthesize` took, summed over the calls it is given to."""

    harmonic: float = 0.0
    noise: float = 0.0
    reverb: float = 0.0


class Engine:
    """config: the decoder's and the synthesis' settings (model.json's `model`); seed: the
    noise sequence's (the model's training seed, 0 for models that did not record it)."""

    def __init__(self, config: ModelConfig, sample_rate: int, weights: dict, decoder=None, seed: int = 0):
        self.config = config
        self.sample_rate = sample_rate
        self.control_rate = config.control_rate
        if self.sample_rate % self.control_rate:
            raise ValueError(f"control rate {self.control_rate} does not divide {self.sample_rate} Hz")
        self.hop = self.sample_rate // self.control_rate
        self.n_harmonics = config.n_harmonics
        self.level = config.level  # which feature `decode` and `render` take as the level
        self.decoder = decoder or decoders.build(config, weights)
        self.reverb = Reverb(weights["reverb.ir"])
        self.seed = seed
        self._noise_table = None
        _reuse_freed_memory()

    @classmethod
    def load(cls, export_dir: Path, decoder="numpy", seed: int | None = None) -> "Engine":
        """decoder: "numpy", the name of an ONNX file in the export folder, or a function
        (ld_scaled, f0_scaled) -> raw outputs (another runtime's: nas.export.runtimes)."""
        export_dir = Path(export_dir)
        summary = RunSummary.load(export_dir / MODEL_FILE)
        with np.load(export_dir / WEIGHTS_FILE) as archive:
            weights = {k: archive[k] for k in archive.files}
        chosen = decoder if callable(decoder) else None if decoder == "numpy" else OnnxDecoder(export_dir / decoder)
        return cls(summary.model, summary.sample_rate, weights, chosen, summary.seed if seed is None else seed)

    @functools.cached_property
    def noise(self) -> np.ndarray:
        return noise_sequence(self.seed, self.sample_rate, self.hop)

    def _noise_spectra(self, frames: int, n_bands: int) -> np.ndarray:
        """Spectra of the noise sequence's first `frames` hops (repeating), made once."""
        if self._noise_table is None:
            self._noise_table = noise_spectra(self.noise, n_bands, self.hop)
        table = self._noise_table
        if frames <= len(table):
            return table[:frames]
        return np.take(table, np.arange(frames) % len(table), axis=0)

    def decode(self, f0_hz: np.ndarray, level_db: np.ndarray) -> RawControls:
        """Raw decoder outputs split into ddsp's control groups."""
        return self.decode_scaled(*scale_inputs(f0_hz, level_db))

    def decode_scaled(self, level_scaled: np.ndarray, f0_scaled: np.ndarray) -> RawControls:
        """`decode` of inputs already scaled (as the dataset's preprocessor scales them)."""
        raw = self.decoder(level_scaled, f0_scaled)
        k = self.n_harmonics
        return RawControls(raw[:, :1], raw[:, 1:1 + k], raw[:, 1 + k:])

    def synthesize(self, raw: RawControls, f0_hz: np.ndarray, noise: np.ndarray | None = None,
                   timings: SynthTimings | None = None) -> Synthesis:
        f0_hz = np.asarray(f0_hz, dtype=np.float32)
        clock = time.perf_counter()
        amps = harmonic_controls(raw.amps, raw.harmonic_distribution, f0_hz, self.sample_rate)
        harmonic = harmonic_audio(amps, f0_hz, self.hop, self.sample_rate)
        after_harmonic = time.perf_counter()
        magnitudes = exp_sigmoid(raw.noise_magnitudes + NOISE_BIAS)
        if noise is None:
            spectra = self._noise_spectra(len(f0_hz), magnitudes.shape[1])
            noise_audio = filtered_noise(magnitudes, self.hop, spectra=spectra)
        else:
            noise_audio = filtered_noise(magnitudes, self.hop, noise=noise)
        after_noise = time.perf_counter()
        audio = self.reverb(harmonic + noise_audio)
        if timings is not None:
            timings.harmonic += after_harmonic - clock
            timings.noise += after_noise - after_harmonic
            timings.reverb += time.perf_counter() - after_noise
        return Synthesis(harmonic, noise_audio, audio.astype(np.float32, copy=False))

    def render(self, f0_hz: np.ndarray, level_db: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        """f0 (Hz) and the level (dB: `self.level`) at the control rate -> mono audio at the
        sample rate."""
        if len(f0_hz) != len(level_db):
            raise ValueError(f"{len(f0_hz)} f0 frames but {len(level_db)} {self.level} frames")
        return self.synthesize(self.decode(f0_hz, level_db), f0_hz, noise).audio
