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

from pathlib import Path

import numpy as np

from nas.data.features import SOUNDING_DB
from nas.data.loudness import LOUDNESS_N_FFT, spectra_loudness
from nas.engine.engine import Engine, hz_to_midi
from nas.engine.stream import StreamingEngine
from nas.pitch import FRAME_SIZE, SAMPLE_RATE, SURE_PITCH
from nas.pitch.decode import cents_to_hz, local_average_cents
from nas.pitch.tracker import normalized
from nas.play.adjust import Adjustment
from nas.play.model import load_engine, run_paths, run_statistics
from nas.play.transfer import read_source
from nas.spectrum import periodic_hann

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
            loudness = spectra_loudness(np.abs(spectra), SAMPLE_RATE)
        keep = FRAME_SIZE + self.hop  # what the next frames' windows can still reach back to
        if len(self._audio) > keep:
            cut = len(self._audio) - keep
            self._audio = self._audio[cut:]
            self._origin += cut
        return f0.astype(np.float32), confidence.astype(np.float32), loudness.astype(np.float32)


class LiveAdjust:
    """The transfer's adjustment toward the dataset (`nas.play.adjust`), from the note
    frames heard so far, held once `settle_s` of notes have been heard."""

    def __init__(self, statistics: dict, control_rate: int, settle_s: float = 2.0):
        self.statistics = statistics
        self.settle = int(settle_s * control_rate)
        self.notes = 0
        self._pitch = self._loudness = 0.0
        self.shift = Adjustment()

    def __call__(self, f0: np.ndarray, confidence: np.ndarray, loudness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        notes = (confidence >= SURE_PITCH) & (loudness > SOUNDING_DB)
        if self.notes < self.settle and notes.any():
            take = np.flatnonzero(notes)[:self.settle - self.notes]
            self._pitch += float(hz_to_midi(f0[take]).sum())
            self._loudness += float(loudness[take].sum())
            self.notes += len(take)
            self.shift = Adjustment.toward(self.statistics, self._pitch / self.notes, self._loudness / self.notes)
        return self.shift(f0, loudness, notes)


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
    call (nas.play.live). The audio returned is aligned with the source; `latency_samples` is how
    far behind it a listener would hear it."""
    run, config = run_paths(model)
    engine = load_engine(run)
    live = LiveTransfer(engine, run_statistics(config), block,
                        CENTRED if lookahead is None else lookahead)
    audio, late = live.stream(read_source(Path(source), engine.sample_rate))
    return audio, engine.sample_rate, {"octaves": live.adjust.shift.octaves,
                                       "loudness_offset_db": live.adjust.shift.loudness_offset_db,
                                       "seconds": len(audio) / engine.sample_rate, "latency_samples": live.latency,
                                       "late_samples": late}
