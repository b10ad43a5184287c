"""Render a bundled demo dataset: solo melodies generated here, played by one of
FluidR3_GM's instruments through fluidsynth, with the exact ground-truth f0 of every 10 ms frame.

    python scripts/render_demo.py --out data/demo-violin --seconds 32 --files 6
    python scripts/render_demo.py --instrument flute --out data/demo-flute --seconds 30 --files 6 --seed 2027

Needs Debian's `fluidsynth` and `fluid-soundfont-gm`; the main job does not (the
rendered FLAC files are committed). Melodies are legato phrases in a major or minor
scale with per-phrase dynamics (CC11 swells) and delayed vibrato via pitch bend.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
# General MIDI program (0-based) and the MIDI notes a melody may use.
INSTRUMENTS = {"violin": (40, 55, 88),  # Violin, G3 .. E6
               "flute": (73, 60, 93)}  # Flute, C4 .. A6
TICKS_PER_SECOND = 960  # 480 ticks per beat at the default tempo of 120 bpm
BEND_RANGE_SEMITONES = 2.0
CONTROL_RATE = 100.0  # pitch-bend / expression updates per second
TRUTH_RATE = 100.0  # ground-truth frames per second
SCALES = {"major": [0, 2, 4, 5, 7, 9, 11], "minor": [0, 2, 3, 5, 7, 8, 10]}


@dataclass
class Note:
    pitch: int
    start: float
    end: float
    velocity: int
    vibrato_cents: float
    vibrato_hz: float
    vibrato_delay: float


def compose(rng: np.random.Generator, seconds: float, low: int = 55,
            high: int = 88) -> tuple[list[Note], list[tuple[float, float, float]]]:
    """Legato phrases within MIDI notes low..high; returns notes and phrase dynamics
    (start, end, peak expression)."""
    tonic = int(rng.choice([55, 57, 58, 60, 62, 64, 65, 67]))
    scale = SCALES[str(rng.choice(list(SCALES)))]
    degrees = [tonic - 12 + 12 * octave + step for octave in range(4) for step in scale]
    playable = [p for p in degrees + [d + 12 for d in degrees[-7:]] if low <= p <= high]
    notes: list[Note] = []
    phrases = []
    t = 0.3
    index = len(playable) // 3
    while t < seconds - 2.0:
        phrase_start = t
        for _ in range(int(rng.integers(4, 11))):
            index = int(np.clip(index + rng.choice([-2, -1, -1, 1, 1, 2, 3, -3]), 0, len(playable) - 1))
            duration = float(rng.choice([0.25, 0.375, 0.5, 0.75, 1.0, 1.5]))
            if t + duration > seconds - 0.5:
                break
            notes.append(Note(
                pitch=playable[index], start=t, end=t + duration,
                velocity=int(rng.integers(70, 115)),
                vibrato_cents=float(rng.uniform(10, 30)) if duration >= 0.5 else 0.0,
                vibrato_hz=float(rng.uniform(5.0, 6.5)),
                vibrato_delay=float(rng.uniform(0.12, 0.25)),
            ))
            t += duration
        phrases.append((phrase_start, t, float(rng.uniform(70, 127))))
        t += float(rng.uniform(0.3, 1.0))  # rest between phrases
    return notes, phrases


def bend_cents(note: Note, times: np.ndarray) -> np.ndarray:
    local = times - note.start
    ramp = np.clip((local - note.vibrato_delay) / 0.2, 0.0, 1.0)
    return note.vibrato_cents * ramp * np.sin(2 * np.pi * note.vibrato_hz * np.maximum(local - note.vibrato_delay, 0))


def _vlq(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def midi_events(notes: list[Note], phrases, program: int = 40) -> list[tuple[float, int, bytes]]:
    """(time, order, message) on channel 0; order puts note-offs before note-ons."""
    events = [(0.0, 0, bytes([0xC0, program]))]
    # RPN 0: pitch-bend range, so bends map to cents exactly as the truth assumes.
    for cc, value in ((101, 0), (100, 0), (6, int(BEND_RANGE_SEMITONES)), (38, 0)):
        events.append((0.0, 0, bytes([0xB0, cc, value])))
    events.append((0.0, 0, bytes([0xB0, 7, 110])))
    for start, end, peak in phrases:
        for t in np.arange(start - 0.05, end + 0.3, 1 / CONTROL_RATE):
            phase = np.clip((t - start) / max(end - start, 1e-3), 0, 1)
            expression = 50 + (peak - 50) * np.sin(np.pi * phase) ** 0.7
            events.append((max(float(t), 0.0), 1, bytes([0xB0, 11, int(np.clip(expression, 0, 127))])))
    for note in notes:
        events.append((note.start, 3, bytes([0x90, note.pitch, note.velocity])))
        events.append((note.end, 0, bytes([0x80, note.pitch, 0])))
        times = np.arange(note.start, note.end, 1 / CONTROL_RATE)
        for t, cents in zip(times, bend_cents(note, times)):
            value = int(round(8192 + cents / (BEND_RANGE_SEMITONES * 100) * 8192))
            value = int(np.clip(value, 0, 16383))
            events.append((float(t), 2, bytes([0xE0, value & 0x7F, value >> 7])))
    return sorted(events, key=lambda e: (e[0], e[1]))


def write_midi(path: Path, events) -> None:
    track = bytearray()
    last_tick = 0
    for t, _, message in events:
        tick = int(round(t * TICKS_PER_SECOND))
        track += _vlq(tick - last_tick) + message
        last_tick = tick
    track += _vlq(0) + b"\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480)
    path.write_bytes(header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track))


def ground_truth(notes: list[Note], seconds: float) -> np.ndarray:
    """Rows of (time, f0_hz, seconds_to_nearest_note_boundary); f0 0 where silent.

    Times are quantised to MIDI ticks exactly as in the file."""
    times = np.arange(0, seconds, 1 / TRUTH_RATE)
    f0 = np.zeros_like(times)
    boundary = np.full_like(times, np.inf)
    for note in notes:
        start = round(note.start * TICKS_PER_SECOND) / TICKS_PER_SECOND
        end = round(note.end * TICKS_PER_SECOND) / TICKS_PER_SECOND
        inside = (times >= start) & (times < end)
        # Bends are sent every 10 ms and held: the truth holds the last sent value.
        held = note.start + np.floor((times[inside] - note.start) * CONTROL_RATE + 1e-9) / CONTROL_RATE
        cents = bend_cents(note, held)
        cents = np.round(cents / (BEND_RANGE_SEMITONES * 100) * 8192) / 8192 * BEND_RANGE_SEMITONES * 100
        f0[inside] = 440.0 * 2 ** ((note.pitch - 69 + cents / 100) / 12)
        boundary = np.minimum(boundary, np.minimum(np.abs(times - start), np.abs(times - end)))
    return np.stack([times, f0, boundary], axis=1)


def render(midi: Path, wav: Path, sample_rate: int) -> None:
    subprocess.run(
        ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.6", "-r", str(sample_rate),
         "-F", str(wav), str(SOUNDFONT), str(midi)],
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instrument", choices=list(INSTRUMENTS), default="violin")
    parser.add_argument("--out", type=Path, default=Path("data/demo-violin"))
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=32.0)
    parser.add_argument("--sample-rate", type=int, default=32000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    if shutil.which("fluidsynth") is None or not SOUNDFONT.exists():
        raise SystemExit("needs Debian's fluidsynth and fluid-soundfont-gm (apt-get install fluidsynth fluid-soundfont-gm)")
    for sub in ("audio", "midi", "f0"):
        (args.out / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    program, low, high = INSTRUMENTS[args.instrument]
    for i in range(args.files):
        name = f"{args.instrument}-{i:02d}"
        notes, phrases = compose(rng, args.seconds, low, high)
        midi = args.out / "midi" / f"{name}.mid"
        write_midi(midi, midi_events(notes, phrases, program))
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "render.wav"
            render(midi, wav, args.sample_rate)
            audio, rate = sf.read(wav, dtype="float32")
        audio = audio.mean(axis=1) if audio.ndim == 2 else audio
        audio = audio[: int(args.seconds * rate)]
        sf.write(args.out / "audio" / f"{name}.flac", audio, rate, subtype="PCM_16")
        truth = ground_truth(notes, len(audio) / rate)
        with open(args.out / "f0" / f"{name}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["time_s", "f0_hz", "boundary_distance_s"])
            writer.writerows([f"{t:.4f}", f"{hz:.4f}", f"{min(d, 99):.4f}"] for t, hz, d in truth)
        print(f"{name}: {len(notes)} notes, {len(audio) / rate:.1f} s")


if __name__ == "__main__":
    main()
