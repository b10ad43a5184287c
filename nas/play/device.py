"""`nas play`: the live chain through an audio interface (PortAudio, via sounddevice), at the
device's rate. The instrument comes from an input device's channel, or from a recording
played in as if it were one; the audio callback only hands blocks to the chain's thread
and plays what it made (the tracker and the engine are compiled and traced before the
stream starts). A block the audio server had to do without (PortAudio's underflow and
overflow flags) is an xrun, and is counted."""

from __future__ import annotations

import gc
import math
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.engine.engine import Engine
from nas.play.live import CENTRED, LiveTransfer
from nas.store.artifacts import DatasetStatistics


class PlayError(RuntimeError):
    """No audio device to play on; the message says which and why."""


def _warm(engine: Engine, statistics: DatasetStatistics, block: int, lookahead: int, rate: int) -> None:
    """Compile the engine's kernels and trace the tracker on a throwaway stream."""
    warm = LiveTransfer(engine, statistics, block, lookahead, rate=rate)
    out = np.zeros(block, np.float32)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)
    for start in range(0, len(tone) - block, block):
        warm.process(tone[start:start + block], out)


AHEAD_SECONDS = 0.008  # the least time the chain runs ahead of the audio callback: a block of 128 at 16 kHz


def blocks_ahead(block: int, rate: int) -> int:
    """The default lead in blocks: AHEAD_SECONDS at least, whatever the rate and block."""
    return max(1, math.ceil(AHEAD_SECONDS * rate / block - 1e-9))


@dataclass(frozen=True)
class Played:
    """What a `play` did: its length, the blocks the audio server or the chain missed, what
    a listener hears of the latency, and each block's cost."""
    seconds: float
    wall_seconds: float
    rate: int
    callbacks: int
    xruns: int
    late_samples: int
    latency_ms: float
    conversion_ms: float  # the rate conversions' share of the latency
    block_ms: float
    block_p99_ms: float
    block_max_ms: float

    def describe(self) -> str:
        return (f"played {self.seconds:.1f} s at {self.rate} Hz in {self.callbacks} blocks: {self.xruns} xruns, "
                f"{self.late_samples} samples late; latency {self.latency_ms:.1f} ms "
                f"({self.conversion_ms:.1f} ms of it rate conversion); a block took {self.block_p99_ms:.2f} ms at the "
                f"99th percentile ({self.block_max_ms:.2f} ms at most) of its {self.block_ms:.1f} ms")


@dataclass(slots=True)
class _Counts:
    """A stream's running counts; each field is written by one thread only."""
    samples: int = 0  # the callback's
    callbacks: int = 0
    xruns: int = 0
    late: int = 0
    unfilled: int = 0  # the chain's


def device_rate(output_device=None) -> int:
    """The rate the output device runs at (JACK's, or the interface's default)."""
    import sounddevice as sd

    try:
        return int(sd.query_devices(output_device, "output")["default_samplerate"])
    except (sd.PortAudioError, ValueError) as error:
        raise PlayError(f"no output device {output_device!r} ({error}); `nas play --list-devices` lists them") from None


def play(engine: Engine, statistics: DatasetStatistics, block: int, seconds: float | None,
         lookahead: int = CENTRED, input_device=None, output_device=None, source: np.ndarray | None = None,
         record: Path | None = None, on_status=None, ahead: int | None = None, rate: int | None = None,
         input_channel: int = 0) -> Played:
    """Play until `seconds` (default: the source's length; without a source, until interrupted),
    at `rate` (default: the output device's); `source` is at that rate, or the instrument
    comes in on `input_channel` (from 0) of the input device. `ahead`: blocks of lead
    (default: `blocks_ahead`).

    The chain runs on a thread of its own; the audio callback only hands it each input block
    and plays the block it made `ahead` blocks before (as DDSP-VST keeps inference off the
    audio thread). A block that takes longer than its time, or a pause the system gives the
    thread, is absorbed while the lead lasts; each block of lead adds a block of latency. A
    block not ready when its turn comes is played as silence and counted late."""
    import sounddevice as sd

    rate = rate or device_rate(output_device)
    ahead = blocks_ahead(block, rate) if ahead is None else ahead
    if ahead < 1:
        raise ValueError(f"ahead must be at least 1 block, not {ahead}")
    if source is None:
        channels = _input_channels(input_device)
        if not 0 <= input_channel < channels:
            raise PlayError(f"--input-channel {input_channel}: the input device has channels 0 to {channels - 1}")
    _warm(engine, statistics, block, lookahead, rate)
    live = LiveTransfer(engine, statistics, block, lookahead, rate=rate)
    total = None if seconds is None and source is None else int((seconds or len(source) / rate) * rate)
    played = np.zeros(total or 0, np.float32) if record else None
    count = _Counts()
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
            count.unfilled += live.process(block_in, out)
            outputs.append((number, out))
            costs.append(time.perf_counter() - clock)

    def on_block(indata, outdata, frames, status):
        if status.output_underflow or status.input_overflow or status.output_overflow or status.input_underflow:
            count.xruns += 1
        at, number = count.samples, count.callbacks
        if source is not None:
            block_in = source[at:at + frames]
            if len(block_in) < frames:
                block_in = np.pad(block_in, (0, frames - len(block_in)))
        else:
            block_in = indata[:, input_channel].copy()  # PortAudio reuses its buffer
        inputs.append((number, block_in))
        arrived.release()
        due = number - ahead
        while outputs and outputs[0][0] < due:  # came too late for its turn
            outputs.popleft()
        if outputs and outputs[0][0] == due:
            outdata[:, 0] = outputs.popleft()[1][:frames]
        else:
            outdata[:, 0] = 0.0
            count.late += frames if due >= 0 else 0
        if played is not None and at < len(played):
            played[at:at + frames] = outdata[:max(0, min(frames, len(played) - at)), 0]
        count.samples += frames
        count.callbacks += 1
        if total is not None and count.samples >= total:
            done.set()
            raise sd.CallbackStop

    options = dict(samplerate=rate, blocksize=block, dtype="float32", finished_callback=done.set)
    try:
        if source is None:
            stream = sd.Stream(device=(input_device, output_device), channels=(input_channel + 1, 1), **options,
                               callback=lambda indata, outdata, frames, _, status: on_block(indata, outdata, frames,
                                                                                            status))
        else:
            stream = sd.OutputStream(device=output_device, channels=1, **options,
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
                    on_status(count.samples / rate, count.xruns)
    finally:
        sys.setswitchinterval(switch)
        gc.unfreeze()
        stopping.set()
        arrived.release()
        worker.join(5)
    wall = time.monotonic() - started
    if record:
        from nas.data.audio import write_wav

        write_wav(Path(record), played[:count.samples], rate)
    costs_ms = 1000 * np.asarray(costs or [0.0])
    return Played(seconds=count.samples / rate, wall_seconds=wall, rate=rate, callbacks=count.callbacks,
                  xruns=count.xruns, late_samples=count.late + count.unfilled,
                  latency_ms=1000 * (live.latency + ahead * block) / rate + 1000 * output_latency,
                  conversion_ms=1000 * live.conversion_lag / rate, block_ms=1000 * block / rate,
                  block_p99_ms=float(np.percentile(costs_ms, 99)), block_max_ms=float(costs_ms.max()))


def _input_channels(input_device) -> int:
    import sounddevice as sd

    try:
        return int(sd.query_devices(input_device, "input")["max_input_channels"])
    except (sd.PortAudioError, ValueError) as error:
        raise PlayError(f"no input device {input_device!r} ({error}); `nas play --list-devices` lists them") from None
