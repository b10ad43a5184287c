"""CREPE pitch tracking: the original network and weights, CREPE's decoders."""

CAPACITIES = ("tiny", "small", "medium", "large", "full")
