"""How long something has left, as people read it in a progress line."""

from __future__ import annotations

import math


def clock(seconds: float) -> str:
    """"1:05" (minutes:seconds), "2:03:07" past an hour; "?" while there is no estimate."""
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"
