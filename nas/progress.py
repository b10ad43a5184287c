"""Progress as people read it: the time left, and what a progress line carries for a
terminal's live display (`flows/cli/console.py` draws it as a bar; elsewhere it is a line)."""

from __future__ import annotations

import math


def clock(seconds: float) -> str:
    """"1:05" (minutes:seconds), "2:03:07" past an hour; "?" while there is no estimate."""
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


def progress(task: str, done: float, total: float, detail: str) -> dict:
    """The `extra` of a progress log record, e.g. `log.info(line, ..., extra=progress("features",
    3, 12, "3/12 chunks, 2.1x real time, 0:40 left"))`: `detail` is the line a bar has room for."""
    return {"progress": (task, done, total, detail)}
