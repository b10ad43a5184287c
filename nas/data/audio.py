"""Audio ingestion: decode any file soundfile reads, check it, downmix and resample.

Every source file gets a `SourceFile` record: its hash, what it is, and whether it is
usable (status "ok") or why not (status "skipped" with a reason naming the problem).
Odd but usable audio is kept and flagged (e.g. clipping).
"""

from __future__ import annotations

import io
import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from ..constants import SAMPLE_RATE
from ..locations import is_remote, sha256_file
from ..resample import resample

SILENCE_PEAK = 10 ** (-80 / 20)  # below -80 dBFS everywhere counts as silent
CLIP_LEVEL = 0.999
CLIP_SHARE = 1e-3  # flag clipping when more than 0.1% of samples sit at full scale
AUDIO_BLOCK = 1 << 20  # bytes per ranged read of a bucket's object (s3fs's default is 50 MB)


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


def read_mono(path: Path, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, int, int]:
    """(mono float32 samples [start, stop), rate, channels); raises AudioError with the reason."""
    try:
        with sound_file(path) as f:
            rate, channels = f.samplerate, f.channels
            f.seek(min(start, f.frames))
            audio = f.read(frames=-1 if stop is None else max(0, stop - f.tell()), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise AudioError(f"cannot decode: {error}") from None
    return audio.mean(axis=1), rate, channels


@contextmanager
def sound_file(path: Path) -> Iterator[sf.SoundFile]:
    """libsndfile on a local file, or on an object in a bucket read through fsspec in ranges."""
    if not is_remote(path):
        with sf.SoundFile(str(path)) as f:
            yield f
        return
    with path.open("rb", block_size=AUDIO_BLOCK) as raw:
        source = _Reads(raw)
        try:
            with sf.SoundFile(source) as f:
                yield f
        finally:
            if source.error is not None:  # the network's error, not "cannot decode" or a short read
                raise source.error


class _Reads:
    """A file object for libsndfile that keeps the first error of a read or seek: libsndfile's
    callbacks swallow it, and would report a dropped connection as undecodable audio, or
    return fewer samples than the file holds."""

    def __init__(self, raw):
        self.raw, self.error = raw, None

    def _kept(self, method, *args):
        try:
            return method(*args)
        except Exception as error:
            self.error = self.error or error
            raise

    def read(self, size=-1):
        return self._kept(self.raw.read, size)

    def seek(self, offset, whence=0):
        return self._kept(self.raw.seek, offset, whence)

    def tell(self):
        return self._kept(self.raw.tell)


def read_segment(path: Path, start_s: float, secs: float, target: int, margin_s: float = 0.05) -> np.ndarray:
    """`secs` of `path` from `start_s`, resampled to `target`, reading only that part.

    The resampler sees `margin_s` (or more) of context on each side, from a start time
    that lies on both sample grids, so a segment equals the same stretch of the whole
    file resampled at once up to the filter tails far outside it: long files stream."""
    try:
        with sound_file(path) as f:
            rate = f.samplerate
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"cannot decode: {error}") from None
    grid = math.gcd(rate, target)  # times k / grid are whole samples at both rates
    context_start = max(0, math.floor((start_s - margin_s) * grid)) / grid
    first = round(context_start * rate)
    last = math.ceil((start_s + secs + margin_s) * rate)  # past the end: soundfile reads what there is
    mono, _, _ = read_mono(path, first, last)
    audio = resample(mono, rate, target)
    offset = round((start_s - context_start) * target)
    return audio[offset: offset + round(secs * target)].copy()


def write_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    """32-bit float WAV, written under a temporary name and renamed when complete. Encoded in
    memory and written by Python, so a full disk is an OSError that says so (libsndfile's own
    writes report only "System error")."""
    from ..atomic import atomic_path
    from ..locations import location

    encoded = io.BytesIO()
    sf.write(encoded, audio, rate, format="WAV", subtype="FLOAT")
    with atomic_path(location(path)) as tmp:
        tmp.write_bytes(encoded.getvalue())


class SampleStats:
    """Running summary of mono samples, block by block (a long file is never held whole)."""

    def __init__(self):
        self.n = self.nonfinite = self.clipped = 0
        self.peak = self.total = self.squares = 0.0

    def add(self, block: np.ndarray) -> None:
        finite = np.isfinite(block)
        self.n += len(block)
        self.nonfinite += int(len(block) - finite.sum())
        block = block[finite].astype(np.float64)
        if len(block):
            magnitude = np.abs(block)
            self.peak = max(self.peak, float(magnitude.max()))
            # stuck at full scale; float audio beyond it is not clipped
            self.clipped += int(np.sum((magnitude >= CLIP_LEVEL) & (magnitude <= 1.0)))
            self.total += float(block.sum())
            self.squares += float(np.square(block).sum())


def inspect_source(path: Path, min_seconds: float, block_s: float = 30.0) -> SourceFile:
    """Hash, decode and check one file, streaming it. Never raises for bad audio: it is recorded."""
    source = SourceFile(path=str(path))
    if is_remote(path):
        from ..store.cache import audio_copy

        try:
            copy, _ = audio_copy(path)
        except FileNotFoundError:  # listed, then deleted before or while it was read
            return _skip(source, "gone from the bucket since it was listed")
        inspected = inspect_source(copy, min_seconds, block_s)  # a reason names the bucket's file, not the copy
        return replace(inspected, path=str(path), reason=inspected.reason.replace(str(copy), str(path)))
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
    stats = SampleStats()
    try:
        with sound_file(path) as f:
            source.original_rate, source.channels = f.samplerate, f.channels
            for block in f.blocks(blocksize=max(1, int(block_s * f.samplerate)), dtype="float32", always_2d=True):
                stats.add(block.mean(axis=1))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        return _skip(source, f"cannot decode: {error}")
    source.duration_s = stats.n / source.original_rate
    try:
        source.flags = check_samples(stats, source.original_rate, min_seconds)
    except AudioError as error:
        return _skip(source, str(error))
    return source


def check_samples(stats: SampleStats, rate: int, min_seconds: float) -> list[str]:
    """Raise AudioError for unusable audio; return flags for odd but usable audio."""
    if stats.n == 0:
        raise AudioError("no audio samples")
    if stats.nonfinite:
        share = stats.nonfinite / stats.n
        raise AudioError("all samples are NaN/inf" if share == 1 else f"{share:.1%} of samples are NaN/inf")
    if stats.peak < SILENCE_PEAK:
        raise AudioError(f"silent (peak {20 * np.log10(max(stats.peak, 1e-12)):.0f} dBFS)")
    mean = stats.total / stats.n
    ac_rms = np.sqrt(max(stats.squares / stats.n - mean**2, 0.0))
    if ac_rms < SILENCE_PEAK:
        raise AudioError(f"constant (DC {mean:+.3f} only, no sound)")
    if stats.n / rate < min_seconds:
        raise AudioError(f"shorter than one example ({stats.n / rate:.2f} s < {min_seconds:g} s)")
    flags = []
    if stats.peak > 1.0:
        flags.append(f"peak above full scale ({stats.peak:.2f})")
    if stats.clipped / stats.n > CLIP_SHARE:
        flags.append("clipping")
    if abs(mean) > 0.1 * np.sqrt(stats.squares / stats.n):
        flags.append("DC offset")
    if rate < SAMPLE_RATE:
        flags.append(f"low sample rate ({rate} Hz: nothing above {rate // 2} Hz)")
    return flags


def _skip(source: SourceFile, reason: str) -> SourceFile:
    source.status, source.reason = "skipped", reason
    return source
