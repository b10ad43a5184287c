"""Pitch tracking: CREPE (the original network and weights, its decoders) and SwiftF0."""

import numpy as np

from nas.constants import SAMPLE_RATE  # noqa: F401  (both trackers take audio at this rate)

CAPACITIES = ("tiny", "small", "medium", "large", "full")

# CREPE's confidence, in two meanings:
CLEAR_PITCH = 0.5  # the frame's pitch is clear (what the plots show; a sounding frame below it is unclear)
SURE_PITCH = 0.85  # CREPE is sure of the pitch: the frames pitch is scored on, and note frames in transfer

FRAME_SIZE = 1024  # CREPE's frame: 64 ms

# Silence costs nothing: a frame whose audio peaks below -60 dBFS (SwiftF0's own floor, under
# which it reports confidence 0) skips the network. It gets confidence 0 and an f0 carried
# on (log-frequency) from the nearest tracked frames, so the track stays continuous.
SILENT_PEAK = 1e-3
HELD_F0_HZ = 440.0  # f0 of audio with no frame above SILENT_PEAK (ddsp's synth plays it silently)


def hop_for_frame_rate(frame_rate: float) -> int:
    hop = SAMPLE_RATE / frame_rate
    if hop != int(hop):
        raise ValueError(f"frame rate {frame_rate} does not divide the trackers' 16 kHz into whole hops")
    return int(hop)


def fill_skipped(f0_hz, tracked):
    """f0 of the frames not `tracked`, interpolated in log-frequency between the tracked
    ones and held beyond them."""
    f0_hz = np.asarray(f0_hz, dtype=np.float64).copy()
    if not tracked.any():
        return np.full(len(f0_hz), HELD_F0_HZ)
    index = np.arange(len(f0_hz))
    f0_hz[~tracked] = np.exp(np.interp(index[~tracked], index[tracked], np.log(f0_hz[tracked])))
    return f0_hz
