"""Live timbre transfer: audio in, a trained model's audio out, a block at a time, from a
recording (`nas transfer --block`) or an audio interface (`nas play`).

The chain per block: the block's samples join a short history; every control frame whose
windows are now complete gets its loudness (A-weighted, 512 samples) and its f0 (CREPE
tiny on 1,024 samples in ONNX Runtime, `nas.pitch.live_network`; local-average decoding:
Viterbi needs the future); the transfer's octave and loudness shifts, estimated from the
notes heard so far and held once `settle_s` seconds of notes have passed; then the
streaming engine.

The pitch is tracked on every `pitch_every`-th frame (4: 62.5 times a second, the features'
cost at about a tenth of a core) and held until the next: holding adds no latency, where
interpolating would wait for the next pitch frame.

A frame's windows end `lookahead` samples after its time: 512 centres them as the offline
features are made (the pitch window's half), less trades pitch accuracy for latency. The
output runs `delay` samples behind the input (the lookahead plus the engine's own latency,
plus a hop where blocks are not whole hops), so every block is full; with the block that
must be gathered before it is processed, `latency` is what a listener hears.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

from nas.data.features import SOUNDING_DB
from nas.data.loudness import DB_RANGE, LOUDNESS_N_FFT, _a_weighting
from nas.engine.engine import Engine, hz_to_midi
from nas.engine.stream import StreamingEngine
from nas.pitch import FRAME_SIZE, SAMPLE_RATE, SURE_PITCH
from nas.pitch.decode import cents_to_hz, local_average_cents
from nas.pitch.tracker import normalized
from nas.spectrum import periodic_hann
from nas.transfer import QUIET_DB, load_engine, read_source, run_paths, run_statistics

CENTRED = FRAME_SIZE // 2  # the offline features' lookahead: the pitch window's centre


class LiveFeatures:
    """Audio at 16 kHz in blocks -> (f0 Hz, confidence, loudness dB) of each control frame as
    soon as its windows are complete."""

    def __init__(self, control_rate: int, lookahead: int = CENTRED, capacity: str = "tiny", pitch_every: int = 4):
        if not 0 <= lookahead <= CENTRED:
            raise ValueError(f"lookahead {lookahead}: 0 to {CENTRED} samples")
        from nas.pitch.live_network import load_live_network

        self.hop = SAMPLE_RATE // control_rate
        self.lookahead = lookahead
        self.network = load_live_network(capacity)
        self._loudness_ahead = min(lookahead, LOUDNESS_N_FFT // 2)
        self._window = periodic_hann(LOUDNESS_N_FFT).astype(np.float32)
        self._weights = _a_weighting(LOUDNESS_N_FFT, SAMPLE_RATE)
        self._audio = np.zeros(FRAME_SIZE, np.float32)  # the history: zeros before the start, as the offline padding
        self._origin = -FRAME_SIZE  # the stream's sample index of self._audio[0]
        self._frames = 0  # frames emitted
        self.pitch_every = pitch_every
        self._held = (np.float32(0.0), np.float32(0.0))  # the last tracked f0 and confidence

    def feed(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._audio = np.concatenate([self._audio, np.asarray(block, np.float32)])
        end = self._origin + len(self._audio)  # samples heard so far
        ready = max(0, (end - self.lookahead) // self.hop + 1 - self._frames)
        times = (self._frames + np.arange(ready)) * self.hop - self._origin  # frame times, in the buffer
        self._frames += ready
        f0, confidence, loudness = np.zeros(ready), np.zeros(ready), np.zeros(ready)
        if ready:
            tracked = np.flatnonzero((self._frames - ready + np.arange(ready)) % self.pitch_every == 0)
            if len(tracked):
                starts = times[tracked] + self.lookahead - FRAME_SIZE
                windows = np.stack([self._audio[s:s + FRAME_SIZE] for s in starts])
                activation = self.network(normalized(windows))
                f0[tracked], confidence[tracked] = cents_to_hz(local_average_cents(activation)), activation.max(axis=1)
            for i in range(ready):  # held from the last tracked frame
                if i in tracked:
                    self._held = (f0[i], confidence[i])
                else:
                    f0[i], confidence[i] = self._held
            starts = times + self._loudness_ahead - LOUDNESS_N_FFT
            spectra = np.fft.rfft(np.stack([self._audio[s:s + LOUDNESS_N_FFT] for s in starts]) * self._window)
            power = (np.abs(spectra) ** 2 * self._weights).mean(axis=-1)
            loudness = np.maximum(10.0 * np.log10(np.maximum(power, 10 ** (-DB_RANGE / 10))), -DB_RANGE)
        keep = FRAME_SIZE + self.hop  # what the next frames' windows can still reach back to
        if len(self._audio) > keep:
            cut = len(self._audio) - keep
            self._audio = self._audio[cut:]
            self._origin += cut
        return f0.astype(np.float32), confidence.astype(np.float32), loudness.astype(np.float32)


class LiveAdjust:
    """The transfer's octave shift and loudness offset toward the dataset, from the note
    frames heard so far, held once `settle_s` of notes have been heard."""

    def __init__(self, statistics: dict, control_rate: int, settle_s: float = 2.0):
        self.statistics = statistics
        self.settle = int(settle_s * control_rate)
        self.notes = 0
        self._pitch = self._loudness = 0.0
        self.octaves, self.offset_db = 0, 0.0

    def __call__(self, f0: np.ndarray, confidence: np.ndarray, loudness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        notes = (confidence >= SURE_PITCH) & (loudness > SOUNDING_DB)
        if self.notes < self.settle and notes.any():
            take = np.flatnonzero(notes)[:self.settle - self.notes]
            self._pitch += float(hz_to_midi(f0[take]).sum())
            self._loudness += float(loudness[take].sum())
            self.notes += len(take)
            self.octaves = int(np.round((self.statistics["mean_pitch_note"] - self._pitch / self.notes) / 12.0))
            self.offset_db = float(self.statistics["mean_loudness_note"] - self._loudness / self.notes)
        adjusted = np.clip(loudness + self.offset_db - QUIET_DB * ~notes, -DB_RANGE, 0.0)
        return (f0 * 2.0 ** self.octaves).astype(np.float32), adjusted.astype(np.float32)


class LiveTransfer:
    """One block in, one block out, of the same size each call (any size from 32 to 4,096)."""

    def __init__(self, engine: Engine, statistics: dict, block: int, lookahead: int = CENTRED, pitch_every: int = 4):
        if engine.sample_rate != SAMPLE_RATE:
            raise ValueError(f"live transfer needs a {SAMPLE_RATE} Hz model (the pitch tracker's rate); "
                             f"this one is {engine.sample_rate} Hz")
        self.features = LiveFeatures(engine.control_rate, lookahead, pitch_every=pitch_every)
        self.adjust = LiveAdjust(statistics, engine.control_rate)
        self.engine = StreamingEngine(engine)
        self.block = block
        hop = engine.hop
        self.delay = lookahead + self.engine.latency + (hop if (block % hop or lookahead % hop) else 0)
        self.latency = self.delay + block
        self._silence = self.delay  # output samples still to be played as the initial delay

    def process(self, block: np.ndarray, out: np.ndarray) -> int:
        """Samples of `out` the engine could not fill in time (0 in steady state)."""
        f0, confidence, loudness = self.features.feed(block)
        if len(f0):
            self.engine.push(*self.adjust(f0, confidence, loudness))
        lead = min(self._silence, len(out))
        out[:lead] = 0.0
        self._silence -= lead
        return len(out) - lead - self.engine.pull(out[lead:])

    def stream(self, audio: np.ndarray) -> tuple[np.ndarray, int]:
        """A whole recording through `process` a block at a time, then `delay` samples of
        silence to let its end out; returns the output aligned with the input, and the
        samples that came late."""
        total = len(audio) + self.delay
        padded = np.zeros(-(-total // self.block) * self.block, np.float32)
        padded[:len(audio)] = audio
        out = np.zeros_like(padded)
        late = 0
        for start in range(0, len(padded), self.block):
            late += self.process(padded[start:start + self.block], out[start:start + self.block])
        return out[self.delay:self.delay + len(audio)], late


def live_transfer(model: Path, source: Path, block: int, lookahead: int | None = None) -> tuple[np.ndarray, int, dict]:
    """`source` played as it would play live: features from the stream as it arrives, the
    transfer's shifts from the notes heard so far, the streaming engine `block` samples a
    call (nas.live). The audio returned is aligned with the source; `latency_samples` is how
    far behind it a listener would hear it."""
    run, config = run_paths(model)
    engine = load_engine(run)
    live = LiveTransfer(engine, run_statistics(config), block,
                        CENTRED if lookahead is None else lookahead)
    audio, late = live.stream(read_source(Path(source), engine.sample_rate))
    return audio, engine.sample_rate, {"octaves": live.adjust.octaves, "loudness_offset_db": live.adjust.offset_db,
                                       "seconds": len(audio) / engine.sample_rate, "latency_samples": live.latency,
                                       "late_samples": late}

# `nas play`: the same through an audio interface (PortAudio, via sounddevice). The
# instrument comes from an input device, or from a recording played in as if it were one;
# the callback only copies and calls `LiveTransfer.process` (the tracker and the engine are
# compiled and traced before the stream starts). A block the audio server had to do
# without (PortAudio's underflow and overflow flags) is an xrun, and is counted.


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
