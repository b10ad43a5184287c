"""CREPE pitch tracking: the original network and weights, CREPE's decoders."""

CAPACITIES = ("tiny", "small", "medium", "large", "full")

# CREPE's confidence, in two meanings:
CLEAR_PITCH = 0.5  # the frame's pitch is clear (what the plots show; a sounding frame below it is unclear)
SURE_PITCH = 0.85  # CREPE is sure of the pitch: the frames pitch is scored on, and note frames in transfer
