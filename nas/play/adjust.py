"""The transfer's adjustment toward the dataset, as in ddsp's timbre transfer: the pitch
shifted by whole octaves toward the dataset's mean note pitch, the loudness by the
difference of mean note loudness, and the frames between notes attenuated. Offline it is
estimated from the whole recording, live from the notes heard so far."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nas.data.loudness import DB_RANGE

QUIET_DB = 20.0  # ddsp's "quiet" attenuation between notes


@dataclass(frozen=True)
class Adjustment:
    octaves: int = 0
    loudness_offset_db: float = 0.0

    @classmethod
    def toward(cls, statistics: dict, note_midi: float, note_db: float) -> "Adjustment":
        """From the mean MIDI pitch and loudness of the input's note frames."""
        return cls(int(np.round((statistics["mean_pitch_note"] - note_midi) / 12.0)),
                   float(statistics["mean_loudness_note"] - note_db))

    def __call__(self, f0_hz: np.ndarray, loudness_db: np.ndarray,
                 notes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Adjusted (f0 Hz, loudness dB) as float32."""
        loudness = np.clip(loudness_db + self.loudness_offset_db - QUIET_DB * ~notes, -DB_RANGE, 0.0)
        return (f0_hz * 2.0 ** self.octaves).astype(np.float32), loudness.astype(np.float32)
