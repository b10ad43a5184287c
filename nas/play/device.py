"""`nas play`: the same through an audio interface (PortAudio, via sounddevice). The
instrument comes from an input device, or from a recording played in as if it were one;
the callback only copies and calls `LiveTransfer.process` (the tracker and the engine are
compiled and traced before the stream starts). A block the audio server had to do
without (PortAudio's underflow and overflow flags) is an xrun, and is counted."""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

from nas.engine.engine import Engine
from nas.play.live import CENTRED, LiveTransfer


class PlayError(RuntimeError):
    """No audio device to play on; the message says which and why."""


def _warm(engine: Engine, statistics: dict, block: int, lookahead: int) -> None:
    """Compile the engine's kernels and trace the tracker on a throwaway stream."""
    warm = LiveTransfer(engine, statistics, block, lookahead)
    out = np.zeros(block, np.float32)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
    for start in range(0, len(tone) - block, block):
        warm.process(tone[start:start + block], out)


AHEAD = 1  # blocks the chain runs ahead of the audio callback


def play(engine: Engine, statistics: dict, block: int, seconds: float | None, lookahead: int = CENTRED,
         input_device=None, output_device=None, source: np.ndarray | None = None,
         record: Path | None = None, on_status=None, ahead: int = AHEAD) -> dict:
    """Play until `seconds` (default: the source's length; without a source, until interrupted).

    The chain runs on a thread of its own; the audio callback only hands it each input block
    and plays the block it made `ahead` blocks before (as DDSP-VST keeps inference off the
    audio thread). A block that takes longer than its time, or a pause the system gives the
    thread, is absorbed while the lead lasts; each block of lead adds a block of latency. A
    block not ready when its turn comes is played as silence and counted late."""
    import sounddevice as sd

    if ahead < 1:
        raise ValueError(f"ahead must be at least 1 block, not {ahead}")
    _warm(engine, statistics, block, lookahead)
    live = LiveTransfer(engine, statistics, block, lookahead)
    total = None if seconds is None and source is None else int((seconds or len(source) / engine.sample_rate)
                                                                 * engine.sample_rate)
    played = np.zeros(total or 0, np.float32) if record else None
    state = {"samples": 0, "xruns": 0, "late": 0, "unfilled": 0, "callbacks": 0}  # each key one thread's
    costs = []
    inputs, outputs = deque(), deque()  # (block number, samples); appends and pops are atomic
    arrived = threading.Semaphore(0)
    done, stopping = threading.Event(), threading.Event()

    def chain():
        while True:
            arrived.acquire()
            if stopping.is_set():
                return
            number, block_in = inputs.popleft()
            clock = time.perf_counter()
            out = np.empty(len(block_in), np.float32)
            state["unfilled"] += live.process(block_in, out)
            outputs.append((number, out))
            costs.append(time.perf_counter() - clock)

    def on_block(indata, outdata, frames, status):
        if status.output_underflow or status.input_overflow or status.output_overflow or status.input_underflow:
            state["xruns"] += 1
        at, number = state["samples"], state["callbacks"]
        if source is not None:
            block_in = source[at:at + frames]
            if len(block_in) < frames:
                block_in = np.pad(block_in, (0, frames - len(block_in)))
        else:
            block_in = indata[:, 0].copy()  # PortAudio reuses its buffer
        inputs.append((number, block_in))
        arrived.release()
        due = number - ahead
        while outputs and outputs[0][0] < due:  # came too late for its turn
            outputs.popleft()
        if outputs and outputs[0][0] == due:
            outdata[:, 0] = outputs.popleft()[1][:frames]
        else:
            outdata[:, 0] = 0.0
            state["late"] += frames if due >= 0 else 0
        if played is not None and at < len(played):
            played[at:at + frames] = outdata[:max(0, min(frames, len(played) - at)), 0]
        state["samples"] += frames
        state["callbacks"] += 1
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
    worker = threading.Thread(target=chain, name="nas-live-chain", daemon=True)
    worker.start()
    # Everything made so far (the models, the warm-up's caches) goes where the cyclic
    # collector no longer walks it, so a collection during the stream stays short; and the
    # threads take turns with the interpreter every 1 ms, not 5 ms, so the callback that
    # waits for it waits less.
    gc.collect()
    gc.freeze()
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    try:
        with stream:
            output_latency = stream.latency[-1] if isinstance(stream.latency, tuple) else stream.latency
            started = time.monotonic()
            while not done.wait(0.5):
                if on_status:
                    on_status(state["samples"] / engine.sample_rate, state["xruns"])
    finally:
        sys.setswitchinterval(switch)
        gc.unfreeze()
        stopping.set()
        arrived.release()
        worker.join(5)
    wall = time.monotonic() - started
    if record:
        from nas.data.audio import write_wav

        write_wav(Path(record), played[:state["samples"]], engine.sample_rate)
    costs_ms = 1000 * np.asarray(costs or [0.0])
    return {"seconds": state["samples"] / engine.sample_rate, "wall_seconds": wall, "xruns": state["xruns"],
            "callbacks": state["callbacks"], "late_samples": state["late"] + state["unfilled"],
            "latency_ms": 1000 * (live.latency + ahead * block) / engine.sample_rate + 1000 * output_latency,
            "block_p99_ms": float(np.percentile(costs_ms, 99)), "block_max_ms": float(costs_ms.max()),
            "block_ms": 1000 * block / engine.sample_rate}
