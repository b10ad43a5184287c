"""`nas play`: live timbre transfer through an audio interface (PortAudio, via sounddevice).

The instrument comes from an input device, or from a recording played in as if it were
one (`input_file`); the model's audio goes to the output device, a block per callback. The
callback only copies and calls `LiveTransfer.process`: the tracker and the engine are
compiled and traced before the stream starts. A block the audio server had to do without
(PortAudio's underflow and overflow flags) is an xrun, and is counted.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from nas.engine.engine import Engine
from nas.live import CENTRED, LiveTransfer


class PlayError(RuntimeError):
    """No audio device to play on; the message says which and why."""


def _warm(engine: Engine, statistics: dict, block: int, lookahead: int) -> None:
    """Compile the engine's kernels and trace the tracker on a throwaway stream."""
    warm = LiveTransfer(engine, statistics, block, lookahead)
    out = np.zeros(block, np.float32)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
    for start in range(0, len(tone) - block, block):
        warm.process(tone[start:start + block], out)


def play(engine: Engine, statistics: dict, block: int, seconds: float | None, lookahead: int = CENTRED,
         input_device=None, output_device=None, source: np.ndarray | None = None,
         record: Path | None = None, on_status=None) -> dict:
    """Play until `seconds` (default: the source's length; without a source, until interrupted)."""
    import sounddevice as sd

    _warm(engine, statistics, block, lookahead)
    live = LiveTransfer(engine, statistics, block, lookahead)
    total = None if seconds is None and source is None else int((seconds or len(source) / engine.sample_rate)
                                                                 * engine.sample_rate)
    played = np.zeros(total or 0, np.float32) if record else None
    buffer = np.zeros(block, np.float32)
    state = {"samples": 0, "xruns": 0, "late": 0, "callbacks": 0}
    costs = []
    done = threading.Event()

    def on_block(indata, outdata, frames, status):
        clock = time.perf_counter()
        if status.output_underflow or status.input_overflow or status.output_overflow or status.input_underflow:
            state["xruns"] += 1
        at = state["samples"]
        if source is not None:
            block_in = source[at:at + frames]
            if len(block_in) < frames:
                block_in = np.pad(block_in, (0, frames - len(block_in)))
        else:
            block_in = indata[:, 0]
        state["late"] += live.process(block_in, buffer[:frames])
        outdata[:, 0] = buffer[:frames]
        if played is not None and at < len(played):
            played[at:at + frames] = buffer[:max(0, min(frames, len(played) - at))]
        state["samples"] += frames
        state["callbacks"] += 1
        costs.append(time.perf_counter() - clock)
        if total is not None and state["samples"] >= total:
            done.set()
            raise sd.CallbackStop

    options = dict(samplerate=engine.sample_rate, blocksize=block, channels=1, dtype="float32",
                   finished_callback=done.set)
    try:
        if source is None:
            stream = sd.Stream(device=(input_device, output_device), **options,
                               callback=lambda indata, outdata, frames, _, status: on_block(indata, outdata, frames,
                                                                                            status))
        else:
            stream = sd.OutputStream(device=output_device, **options,
                                     callback=lambda outdata, frames, _, status: on_block(None, outdata, frames,
                                                                                          status))
    except (sd.PortAudioError, ValueError) as error:
        raise PlayError(f"cannot open the audio device ({error}); `nas play --list-devices` lists them") from None
    with stream:
        output_latency = stream.latency[-1] if isinstance(stream.latency, tuple) else stream.latency
        started = time.monotonic()
        while not done.wait(0.5):
            if on_status:
                on_status(state["samples"] / engine.sample_rate, state["xruns"])
    wall = time.monotonic() - started
    if record:
        from nas.data.audio import write_wav

        write_wav(Path(record), played[:state["samples"]], engine.sample_rate)
    costs_ms = 1000 * np.asarray(costs or [0.0])
    return {"seconds": state["samples"] / engine.sample_rate, "wall_seconds": wall, "xruns": state["xruns"],
            "callbacks": state["callbacks"], "late_samples": state["late"],
            "latency_ms": 1000 * live.latency / engine.sample_rate + 1000 * output_latency,
            "callback_p99_ms": float(np.percentile(costs_ms, 99)), "callback_max_ms": float(costs_ms.max()),
            "block_ms": 1000 * block / engine.sample_rate}
