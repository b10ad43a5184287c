"""A corpus of bad and odd input files, and what `nas prepare` must make of each.

    .venv/bin/python tests/corpus.py OUT_DIR      # writes OUT_DIR/audio/ and prints the table

Every file is made from the bundled demo violin (real audio) or from bytes written here.
`OUTCOMES` is the documented result of each: "ok" (processed; resampled and downmixed as
needed; possibly flagged) or "skipped" with a reason; `flag` is a flag the manifest must
carry. The README's "Bad and odd input" table is this table.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo-violin" / "audio"
LONG_SECS = 600.0


@dataclass(frozen=True)
class Outcome:
    status: str  # ok | skipped
    text: str = ""  # a part of the reason (skipped) or of a flag (ok)
    rate: int = 0  # original rate the manifest must report
    channels: int = 0


OUTCOMES = {
    "zero-bytes.wav": Outcome("skipped", "empty file"),
    "truncated-header.wav": Outcome("skipped", "cannot decode"),
    "text-renamed.wav": Outcome("skipped", "cannot decode"),
    "random-bytes.flac": Outcome("skipped", "cannot decode"),
    "silence.wav": Outcome("skipped", "silent"),
    "nan-inf.wav": Outcome("skipped", "NaN/inf"),
    "dc-only.wav": Outcome("skipped", "constant"),
    "blip-0.1s.wav": Outcome("skipped", "shorter than one example"),
    "shorter-than-example-3s.flac": Outcome("skipped", "shorter than one example"),
    "dangling-link.wav": Outcome("skipped", "broken symbolic link"),
    "folder.wav": Outcome("skipped", "is a directory"),
    "same-as-pcm-24bit.wav": Outcome("skipped", "same content as pcm-24bit.wav"),
    "clipped.wav": Outcome("ok", "clipping"),
    "float-beyond-full-scale.wav": Outcome("ok", "peak above full scale"),
    "dc-offset.wav": Outcome("ok", "DC offset"),
    "rate-8k.wav": Outcome("ok", "low sample rate", rate=8000, channels=1),
    "chord-three-violins.wav": Outcome("ok", "not monophonic"),
    "white-noise.wav": Outcome("ok", "not monophonic"),
    "pcm-8bit.wav": Outcome("ok", rate=32000, channels=1),
    "pcm-24bit.wav": Outcome("ok", rate=32000, channels=1),
    "rate-96k.wav": Outcome("ok", rate=96000, channels=1),
    "six-channels.wav": Outcome("ok", rate=32000, channels=6),
    "flac-named.wav": Outcome("ok", rate=32000, channels=1),
    "mp3-layer3.mp3": Outcome("ok", rate=32000, channels=1),
    "aiff-16bit.aiff": Outcome("ok", rate=32000, channels=1),
    "ünïcode name with spaces ♪.flac": Outcome("ok", rate=32000, channels=1),
    f"long-{LONG_SECS / 60:.0f}min.flac": Outcome("ok", rate=16000, channels=1),
}


def _violin(name: str, seconds: float) -> tuple[np.ndarray, int]:
    audio, rate = sf.read(DEMO / f"{name}.flac", dtype="float32")
    return audio[: round(seconds * rate)], rate


def make_corpus(folder: Path) -> Path:
    """Write every file of OUTCOMES into `folder/audio/`; returns that folder."""
    audio_dir = folder / "audio"
    audio_dir.mkdir(parents=True)
    a, rate = _violin("violin-00", 6)
    rng = np.random.default_rng(0)

    def write(name: str, audio: np.ndarray, sr: int = rate, **kw) -> Path:
        sf.write(audio_dir / name, audio, sr, **kw)
        return audio_dir / name

    (audio_dir / "zero-bytes.wav").write_bytes(b"")
    header = write("pcm-16.tmp.wav", a, format="WAV").read_bytes()
    (audio_dir / "pcm-16.tmp.wav").unlink()
    (audio_dir / "truncated-header.wav").write_bytes(header[:30])
    (audio_dir / "text-renamed.wav").write_text("Dear reader, this is a text file renamed to .wav.\n" * 20)
    (audio_dir / "random-bytes.flac").write_bytes(rng.bytes(64 * 1024))
    write("silence.wav", np.zeros_like(a))
    spoiled = a.copy()
    spoiled[1000:1100], spoiled[5000] = np.nan, np.inf
    write("nan-inf.wav", spoiled, subtype="FLOAT")
    write("dc-only.wav", np.full_like(a, 0.5), subtype="FLOAT")
    write("blip-0.1s.wav", a[2 * rate: 2 * rate + rate // 10])
    write("shorter-than-example-3s.flac", a[: 3 * rate])
    os.symlink(audio_dir / "no-such-target.wav", audio_dir / "dangling-link.wav")
    (audio_dir / "folder.wav").mkdir()

    write("clipped.wav", np.clip(20 * a, -1, 1))
    write("float-beyond-full-scale.wav", 3 * a / np.abs(a).max(), subtype="FLOAT")
    write("dc-offset.wav", 0.5 * a + 0.3, subtype="FLOAT")
    write("rate-8k.wav", soxr.resample(a, rate, 8000), 8000)
    b, _ = _violin("violin-01", 6)
    c, _ = _violin("violin-02", 6)
    write("chord-three-violins.wav", (a + b + c) / 3)
    write("white-noise.wav", 0.2 * rng.standard_normal(len(a)).astype(np.float32))

    write("pcm-8bit.wav", 0.9 * a / np.abs(a).max(), subtype="PCM_U8")
    write("pcm-24bit.wav", a, subtype="PCM_24")
    (audio_dir / "same-as-pcm-24bit.wav").write_bytes((audio_dir / "pcm-24bit.wav").read_bytes())
    write("rate-96k.wav", soxr.resample(a, rate, 96000), 96000)
    write("six-channels.wav", np.stack([a * g for g in (1, 0.8, 0.6, 0.4, 0.2, 0.1)], axis=1))
    write("flac-named.wav", a, format="FLAC")
    write("mp3-layer3.mp3", a, format="MP3")
    write("aiff-16bit.aiff", a, format="AIFF", subtype="PCM_16")
    write("ünïcode name with spaces ♪.flac", b)

    pieces = [soxr.resample(sf.read(p, dtype="float32")[0], 32000, 16000) for p in sorted(DEMO.glob("*.flac"))]
    long = np.concatenate(pieces)
    long = np.tile(long, int(np.ceil(LONG_SECS * 16000 / len(long))))[: round(LONG_SECS * 16000)]
    write(f"long-{LONG_SECS / 60:.0f}min.flac", long, 16000)
    assert sorted(p.name for p in audio_dir.iterdir()) == sorted(OUTCOMES)
    return audio_dir


if __name__ == "__main__":
    out = make_corpus(Path(sys.argv[1]))
    for name, outcome in OUTCOMES.items():
        print(f"{outcome.status:8s} {name:34s} {outcome.text}")
    print(f"written to {out}")
