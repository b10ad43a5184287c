"""Pitch tracking: CREPE (the original network and weights, its decoders) and SwiftF0."""

CAPACITIES = ("tiny", "small", "medium", "large", "full")

# CREPE's confidence, in two meanings:
CLEAR_PITCH = 0.5  # the frame's pitch is clear (what the plots show; a sounding frame below it is unclear)
SURE_PITCH = 0.85  # CREPE is sure of the pitch: the frames pitch is scored on, and note frames in transfer

SAMPLE_RATE = 16000  # both trackers take 16 kHz audio


def hop_for_frame_rate(frame_rate: float) -> int:
    hop = SAMPLE_RATE / frame_rate
    if hop != int(hop):
        raise ValueError(f"frame rate {frame_rate} does not divide the trackers' 16 kHz into whole hops")
    return int(hop)
