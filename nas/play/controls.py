"""Control curves (f0 in Hz, the model's level in dB at its control rate: loudness, or power
for a model trained on power) from a MIDI file or from feature frames, for `nas render`.

MIDI is played as a monophonic instrument plays it: the most recent held note sounds
(legato: a new note while another is held changes pitch without a new attack), with its
channel's pitch bend and optional vibrato. Loudness follows velocity into the dataset's
own range of note loudness (its statistics), with a linear attack and release in
amplitude; between notes it falls to the dataset's typical silence and the pitch holds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.constants import LEVELS
from nas.store.artifacts import DatasetStatistics

log = logging.getLogger(__name__)
DRUM_CHANNEL = 9  # General MIDI's channel 10: percussion, not pitches
QUIET_QUANTILE, LOUD_QUANTILE = 0.10, 0.95  # of the dataset's note loudness: velocity 1 and 127


class ControlsError(ValueError):
    """A file that gives no controls; the message names the file and the reason."""


@dataclass(frozen=True)
class Playing:
    """How MIDI notes are played."""
    attack_s: float = 0.05
    release_s: float = 0.25
    vibrato_cents: float = 0.0
    vibrato_hz: float = 5.5
    vibrato_delay_s: float = 0.25  # vibrato fades in over this from the note's start
    bend_semitones: float = 2.0  # the General MIDI default pitch-bend range


@dataclass(frozen=True)
class Note:
    start: float
    end: float
    pitch: int
    velocity: int
    channel: int


def level_range(statistics: DatasetStatistics, level: str = "loudness") -> tuple[float, float, float]:
    """(silence, quiet note, loud note) in dB from a dataset's statistics: loudness from the
    quantiles of note loudness; power, which has no quantiles, from the mean extremes of
    note power, the range DDSP-VST maps MIDI velocity to."""
    if level == "power":
        return statistics.power.mean_min, statistics.power_note.mean_min, statistics.power_note.mean_max
    table = statistics.loudness_quantiles
    quiet, loud = np.interp([QUIET_QUANTILE, LOUD_QUANTILE], table.references, table.quantiles)
    return statistics.loudness.mean_min, float(quiet), float(loud)


def read_midi(path: Path) -> tuple[list[Note], list[tuple[float, int, float]]]:
    """Notes and pitch bends (time, channel, semitones / bend range) of a standard MIDI file."""
    import mido

    try:
        song = mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as error:
        raise ControlsError(f"{path}: not a readable MIDI file ({str(error) or type(error).__name__})") from None
    notes, bends, held, now = [], [], {}, 0.0
    for message in song:  # merged tracks, times in seconds through the tempo map
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            held.setdefault((message.channel, message.note), []).append((now, message.velocity))
        elif message.type in ("note_off", "note_on"):
            started = held.get((message.channel, message.note))
            if started:
                start, velocity = started.pop(0)
                notes.append(Note(start, now, message.note, velocity, message.channel))
        elif message.type == "pitchwheel":
            bends.append((now, message.channel, message.pitch / 8192))
    for (channel, pitch), starts in held.items():  # never released: they end with the file
        notes.extend(Note(start, now, pitch, velocity, channel) for start, velocity in starts)
    if not notes:
        raise ControlsError(f"{path}: no notes")
    pitched = [n for n in notes if n.channel != DRUM_CHANNEL]
    if not pitched:
        raise ControlsError(f"{path}: only drums (channel 10), no pitched notes to play")
    sounding = [n for n in pitched if n.end > n.start]
    if not sounding:
        raise ControlsError(f"{path}: every note ends where it starts (0 s long): nothing to play")
    return sorted(sounding, key=lambda n: (n.start, n.pitch)), bends


@dataclass(frozen=True)
class Controls:
    """What a model plays from, at its control rate: f0 (Hz) and its level (dB of loudness or
    power, as the model was trained), float32."""

    f0_hz: np.ndarray
    level_db: np.ndarray


def midi_controls(path: Path, control_rate: int, statistics: DatasetStatistics, playing: Playing = Playing(),
                  level: str = "loudness") -> Controls:
    """f0 and the level (`loudness` or `power`) of each control frame."""
    notes, bends = read_midi(path)
    low, high = round(statistics.pitch_note.min), round(statistics.pitch_note.max)
    outside = [n.pitch for n in notes if not low <= n.pitch <= high]
    if outside:
        log.warning("%s: %d of its %d notes lie outside the notes the model learnt (MIDI %d to %d): %s", path,
                    len(outside), len(notes), low, high, ", ".join(str(p) for p in sorted(set(outside))[:8]))
    silence, quiet, loud = level_range(statistics, level)
    frames = int(np.ceil((max(n.end for n in notes) + playing.release_s + 0.1) * control_rate))
    times = np.arange(frames) / control_rate
    # the sounding note of each frame: the latest started of those held
    sounding = np.full(frames, -1)
    for index, note in enumerate(notes):
        sounding[(times >= note.start) & (times < note.end)] = index
    held = sounding >= 0
    # between notes (and before the first) the pitch of the nearest note before (or after)
    last = np.maximum.accumulate(np.where(held, np.arange(frames), -1))
    first = int(np.argmax(held))
    source = np.where(last >= 0, sounding[np.maximum(last, 0)], sounding[first])
    pitch = np.array([notes[i].pitch for i in source], dtype=np.float64)
    channel = np.array([notes[i].channel for i in source])
    for channel_id in np.unique(channel):
        events = [(t, b) for t, c, b in bends if c == channel_id]
        if events:
            at = np.searchsorted([t for t, _ in events], times, side="right") - 1
            amount = np.where(at >= 0, np.array([b for _, b in events])[np.maximum(at, 0)], 0.0)
            pitch += np.where(channel == channel_id, amount * playing.bend_semitones, 0.0)
    if playing.vibrato_cents:
        since = times - np.array([notes[i].start for i in source])
        fade = np.clip(since / playing.vibrato_delay_s, 0.0, 1.0)
        pitch += fade * playing.vibrato_cents / 100 * np.sin(2 * np.pi * playing.vibrato_hz * since)
    f0_hz = 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)
    # loudness: amplitude slews toward each frame's target at the attack or release rate
    target_db = np.where(held, quiet + (loud - quiet) * np.array([notes[i].velocity for i in source]) / 127,
                         silence)
    target = 10.0 ** (target_db / 20.0)
    span = 10.0 ** (loud / 20.0) - 10.0 ** (silence / 20.0)
    up, down = span / (playing.attack_s * control_rate), span / (playing.release_s * control_rate)
    amplitude = np.empty(frames)
    now = 10.0 ** (silence / 20.0)
    for i in range(frames):
        now = min(now + up, target[i]) if target[i] > now else max(now - down, target[i])
        amplitude[i] = now
    return Controls(f0_hz.astype(np.float32), (20 * np.log10(amplitude)).astype(np.float32))


def feature_controls(path: Path, control_rate: int, source: str | None = None,
                     level: str = "loudness") -> Controls:
    """f0 and level frames (`loudness_db` or `power_db`) from an `.npz` (`f0_hz`, the level,
    optional `frame_rate`, else the control rate) or a dataset's `features.parquet` (the rows
    of one source file: `source`, or the first), interpolated to the control rate."""
    path = Path(path)
    key = LEVELS[level][0]
    try:
        if path.suffix == ".npz":
            with np.load(path) as archive:
                f0, levels = archive["f0_hz"].ravel(), archive[key].ravel()
                rate = float(archive["frame_rate"]) if "frame_rate" in archive.files else float(control_rate)
            if not rate > 0:
                raise ControlsError(f"{path}: frame_rate {rate:g}: frames a second must be above 0")
            times = np.arange(len(f0)) / rate
        elif path.suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path, columns=["path", "time_s", "f0_hz", key]).to_pandas()
            chosen = source or table["path"].iloc[0]
            rows = table[table["path"] == chosen].sort_values("time_s")
            if rows.empty:
                raise ControlsError(f"{path}: no rows of {chosen!r}; its files: {', '.join(table['path'].unique())}")
            f0, levels, times = rows["f0_hz"].to_numpy(), rows[key].to_numpy(), rows["time_s"].to_numpy()
            times = times - times[0]
        else:
            raise ControlsError(f"{path}: features must be .npz or a dataset's features.parquet")
    except (OSError, KeyError, ValueError) as error:
        if isinstance(error, ControlsError):
            raise
        raise ControlsError(f"{path}: no f0 and {level} frames ({error})") from None
    if len(f0) != len(levels) or len(f0) < 2:
        raise ControlsError(f"{path}: {len(f0)} f0 and {len(levels)} {level} frames")
    if not (np.all(np.isfinite(f0)) and np.all(np.isfinite(levels))):
        raise ControlsError(f"{path}: f0 or {level} frames that are not numbers (NaN or infinite)")
    if np.any(f0 < 0):
        raise ControlsError(f"{path}: negative f0 (at frame {int(np.argmax(f0 < 0))}); f0 is in Hz, 0 where unvoiced")
    frames = np.arange(int(times[-1] * control_rate) + 1) / control_rate
    return Controls(np.interp(frames, times, f0).astype(np.float32),
                    np.interp(frames, times, levels).astype(np.float32))
