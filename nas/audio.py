"""Audio ingestion: decode any file soundfile reads, check it, downmix and resample.

Every source file gets a `SourceFile` record: its hash, what it is, and whether it is
usable (status "ok") or why not (status "skipped" with a reason naming the problem).
Odd but usable audio is kept and flagged (e.g. clipping).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SILENCE_PEAK = 10 ** (-80 / 20)  # below -80 dBFS everywhere counts as silent
CLIP_LEVEL = 0.999
CLIP_SHARE = 1e-3  # flag clipping when more than 0.1% of samples sit at full scale


class AudioError(ValueError):
    """A source file that cannot be used; the message says why."""


@dataclass
class SourceFile:
    path: str
    sha256: str = ""
    bytes: int = 0
    duration_s: float = 0.0
    original_rate: int = 0
    channels: int = 0
    status: str = "ok"
    reason: str = ""
    flags: list[str] = field(default_factory=list)

    def row(self) -> dict:
        row = asdict(self)
        row["flags"] = ",".join(self.flags)
        return row


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def read_mono(path: Path) -> tuple[np.ndarray, int, int]:
    """(mono float32 samples, rate, channels); raises AudioError with the reason."""
    try:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise AudioError(f"cannot decode: {error}") from None
    return audio.mean(axis=1), rate, audio.shape[1]


def write_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    """32-bit float WAV, written under a temporary name and renamed when complete."""
    from .atomic import atomic_path

    with atomic_path(Path(path)) as tmp:
        sf.write(tmp, audio, rate, format="WAV", subtype="FLOAT")


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """soxr's very-high-quality resampler (linear phase, passband to 0.95 * Nyquist)."""
    if rate == target:
        return audio.astype(np.float32, copy=False)
    return soxr.resample(audio, rate, target, quality="VHQ").astype(np.float32)


def inspect_source(path: Path, min_seconds: float) -> SourceFile:
    """Hash, decode and check one file. Never raises for bad audio: it is recorded."""
    source = SourceFile(path=str(path))
    if path.is_symlink() and not path.exists():
        return _skip(source, "broken symbolic link")
    if path.is_dir():
        return _skip(source, "is a directory, not an audio file")
    if not path.exists():
        return _skip(source, "file not found")
    source.bytes = path.stat().st_size
    if source.bytes == 0:
        return _skip(source, "empty file (0 bytes)")
    source.sha256 = sha256_file(path)
    try:
        audio, rate, channels = read_mono(path)
    except AudioError as error:
        return _skip(source, str(error))
    source.original_rate, source.channels = rate, channels
    source.duration_s = len(audio) / rate
    try:
        source.flags = check_samples(audio, source.duration_s, min_seconds)
    except AudioError as error:
        return _skip(source, str(error))
    return source


def check_samples(audio: np.ndarray, duration_s: float, min_seconds: float) -> list[str]:
    """Raise AudioError for unusable audio; return flags for odd but usable audio."""
    if len(audio) == 0:
        raise AudioError("no audio samples")
    finite = np.isfinite(audio)
    if not finite.all():
        share = 1 - finite.mean()
        raise AudioError("all samples are NaN/inf" if share == 1 else f"{share:.1%} of samples are NaN/inf")
    peak = float(np.abs(audio).max())
    if peak < SILENCE_PEAK:
        raise AudioError(f"silent (peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS)")
    if duration_s < min_seconds:
        raise AudioError(f"shorter than one example ({duration_s:.2f} s < {min_seconds:g} s)")
    flags = []
    if peak > 1.0:
        flags.append(f"peak above full scale ({peak:.2f})")
    if np.mean(np.abs(audio) >= CLIP_LEVEL) > CLIP_SHARE:
        flags.append("clipping")
    if abs(float(audio.mean())) > 0.1 * float(np.sqrt(np.mean(audio**2))):
        flags.append("DC offset")
    return flags


def _skip(source: SourceFile, reason: str) -> SourceFile:
    source.status, source.reason = "skipped", reason
    return source
