"""The transfer's adjustment toward the dataset, as in ddsp's timbre transfer: the pitch
shifted by whole octaves toward the dataset's mean note pitch, the level (the model's
loudness or power) by the difference of its mean over notes, and the frames between notes
attenuated. Offline it is estimated from the whole recording, live from the notes heard
so far."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nas.constants import DB_RANGE
from nas.store.artifacts import DatasetStatistics

QUIET_DB = 20.0  # ddsp's "quiet" attenuation between notes


@dataclass(frozen=True)
class Adjustment:
    octaves: int = 0
    loudness_offset_db: float = 0.0

    @classmethod
    def toward(cls, statistics: DatasetStatistics, note_midi: float, note_db: float,
               level: str = "loudness") -> "Adjustment":
        """From the mean MIDI pitch and level (`loudness` or `power`, dB) of the input's note frames."""
        return cls(int(np.round((statistics.pitch_note.mean - note_midi) / 12.0)),
                   float(statistics.of(level, notes=True).mean - note_db))

    def __call__(self, f0_hz: np.ndarray, level_db: np.ndarray,
                 notes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Adjusted (f0 Hz, level dB) as float32."""
        level = np.clip(level_db + self.loudness_offset_db - QUIET_DB * ~notes, -DB_RANGE, 0.0)
        return (f0_hz * 2.0 ** self.octaves).astype(np.float32), level.astype(np.float32)


@dataclass(frozen=True)
class Transferred:
    """What a transfer did: its shift toward the dataset and length; played live, how far
    behind the input a listener hears it and the samples that came late."""
    shift: Adjustment
    rate: int
    seconds: float
    latency_samples: int | None = None  # None: offline
    late_samples: int = 0

    def describe(self) -> str:
        live = ("" if self.latency_samples is None else
                f"; live: heard {1000 * self.latency_samples / self.rate:.1f} ms behind the input, "
                f"{self.late_samples} samples late")
        return (f"{self.seconds:.2f} s at {self.rate} Hz, shifted {self.shift.octaves:+d} octave(s) and "
                f"{self.shift.loudness_offset_db:+.1f} dB toward the dataset{live}")
