"""Live timbre transfer: audio in, a trained model's audio out, a block at a time, from a
recording (`nas transfer --block`) or an audio interface (`nas play`).

The chain per block: the block's samples join a short history; every control frame whose
windows are now complete gets its loudness (A-weighted, 512 samples; and its power, 1,024
samples, for a model trained on power) and its f0 (CREPE
tiny on 1,024 samples in ONNX Runtime, `nas.pitch.onnx_network`; local-average decoding:
Viterbi needs the future); the transfer's octave and loudness shifts, estimated from the
notes heard so far and held once `settle_s` seconds of notes have passed; then the
streaming engine.

The pitch is tracked on every `pitch_every`-th frame (4: 62.5 times a second, the features'
cost at about a tenth of a core) and held until the next: holding adds no latency, where
interpolating would wait for the next pitch frame.

A frame's windows end `lookahead` samples (at 16 kHz) after its time: 512 centres them as
the offline features are made (the pitch window's half), less trades pitch accuracy for
latency. How far behind the input the output runs is `LiveTransfer`'s to count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nas.config import POWER_FRAME_SIZE
from nas.data.features import SOUNDING_DB
from nas.data.loudness import spectra_loudness
from nas.data.power import power_db
from nas.engine.engine import Engine, hz_to_midi
from nas.engine.stream import PARTITION, StreamingEngine
from nas.pitch import FRAME_SIZE, SAMPLE_RATE, SURE_PITCH
from nas.pitch.decode import cents_to_hz, local_average_cents
from nas.pitch.tracker import normalized
from nas.play.adjust import Adjustment, Transferred
from nas.play.model import load_engine, run_paths
from nas.play.rates import Resampler
from nas.play.transfer import read_source
from nas.spectrum import LOUDNESS_N_FFT, periodic_hann
from nas.store.artifacts import DatasetStatistics
from nas.store.datasets import load_statistics

CENTRED = FRAME_SIZE // 2  # the offline features' lookahead: the pitch window's centre
PITCH_EVERY = 4  # control frames a pitch track holds for


class LiveFeatures:
    """Audio at 16 kHz in blocks -> (f0 Hz, confidence, loudness dB, level dB) of each control
    frame as soon as its windows are complete; the level is the loudness again, or the power
    (`level` "power")."""

    def __init__(self, control_rate: int, lookahead: int = CENTRED, capacity: str = "tiny",
                 pitch_every: int = PITCH_EVERY, level: str = "loudness"):
        if not 0 <= lookahead <= CENTRED:
            raise ValueError(f"lookahead {lookahead}: 0 to {CENTRED} samples")
        from nas.pitch.onnx_network import load_onnx_network

        self.hop = SAMPLE_RATE // control_rate
        self.lookahead = lookahead
        self.network = load_onnx_network(capacity, threads=1)  # the audio callback's thread: no pool to wake
        self._loudness_ahead = min(lookahead, LOUDNESS_N_FFT // 2)
        self._power_ahead = min(lookahead, POWER_FRAME_SIZE // 2) if level == "power" else None
        self._window = periodic_hann(LOUDNESS_N_FFT).astype(np.float32)
        self._audio = np.zeros(FRAME_SIZE, np.float32)  # the history: zeros before the start, as the offline padding
        self._origin = -FRAME_SIZE  # the stream's sample index of self._audio[0]
        self._frames = 0  # frames emitted
        self.pitch_every = pitch_every
        self._held = (np.float32(0.0), np.float32(0.0))  # the last tracked f0 and confidence

    def frames_after(self, heard):
        """Frames whose windows `heard` samples (an int or an array of them) complete."""
        return np.maximum(0, (heard - self.lookahead) // self.hop + 1)

    def feed(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        self._audio = np.concatenate([self._audio, np.asarray(block, np.float32)])
        end = self._origin + len(self._audio)  # samples heard so far
        ready = max(0, int(self.frames_after(end)) - self._frames)
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
        loudness = loudness.astype(np.float32)
        level = loudness
        if ready and self._power_ahead is not None:
            starts = times + self._power_ahead - POWER_FRAME_SIZE
            level = power_db(np.stack([self._audio[s:s + POWER_FRAME_SIZE] for s in starts]))
        keep = FRAME_SIZE + self.hop  # what the next frames' windows can still reach back to
        if len(self._audio) > keep:
            cut = len(self._audio) - keep
            self._audio = self._audio[cut:]
            self._origin += cut
        return f0.astype(np.float32), confidence.astype(np.float32), loudness, level


class LiveAdjust:
    """The transfer's adjustment toward the dataset (`nas.play.adjust`), from the note
    frames heard so far, held once `settle_s` of notes have been heard."""

    def __init__(self, statistics: DatasetStatistics, control_rate: int, settle_s: float = 2.0,
                 level: str = "loudness"):
        self.statistics = statistics
        self.level = level
        self.settle = int(settle_s * control_rate)
        self.notes = 0
        self._pitch = self._level = 0.0
        self.shift = Adjustment()

    def __call__(self, f0: np.ndarray, confidence: np.ndarray, loudness: np.ndarray,
                 level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(f0 Hz, level dB) for the engine; notes are told by their loudness, whatever the level."""
        notes = (confidence >= SURE_PITCH) & (loudness > SOUNDING_DB)
        if self.notes < self.settle and notes.any():
            take = np.flatnonzero(notes)[:self.settle - self.notes]
            self._pitch += float(hz_to_midi(f0[take]).sum())
            self._level += float(level[take].sum())
            self.notes += len(take)
            self.shift = Adjustment.toward(self.statistics, self._pitch / self.notes, self._level / self.notes,
                                           self.level)
        return self.shift(f0, level, notes)


class LiveTransfer:
    """One block in, one block out, of the same size each call (any size from 32 to 4,096),
    at `rate` (the audio device's or the file's; default: the model's).

    The input is converted to 16 kHz for the features, the model plays at its own rate, and
    its output is converted to `rate` into a queue (`nas.play.rates`: 4 ms each way, none at
    16 kHz). The queue's output starts `delay` samples late: the least delay at which it
    never runs dry for these blocks, counted ahead from what each stage gives for what it
    is given (`_least_delay`). `lag` is how far the output's content is behind the input's,
    the conversions' filter delays included; `latency` adds the block gathered before it
    is processed: what a listener hears."""

    def __init__(self, engine: Engine, statistics: DatasetStatistics, block: int, lookahead: int = CENTRED,
                 pitch_every: int = PITCH_EVERY, rate: int | None = None):
        self.rate = rate or engine.sample_rate
        self.features = LiveFeatures(engine.control_rate, lookahead, pitch_every=pitch_every, level=engine.level)
        self.adjust = LiveAdjust(statistics, engine.control_rate, level=engine.level)
        self.engine = StreamingEngine(engine)
        self.block = block
        self._to_features = None if self.rate == SAMPLE_RATE else Resampler(self.rate, SAMPLE_RATE, block)
        most_heard = self._to_features.most_out(block) if self._to_features else block
        most_made = (most_heard // self.features.hop + 2) * engine.hop + PARTITION
        self._to_device = None if engine.sample_rate == self.rate else Resampler(engine.sample_rate, self.rate,
                                                                                 most_made)
        self._heard = np.zeros(most_heard, np.float32)
        self._made = np.zeros(most_made, np.float32)
        self._converted = np.zeros(self._to_device.most_out(most_made) if self._to_device else 0, np.float32)
        self.delay = self._least_delay()
        self.conversion_lag = ((self._to_device.delay if self._to_device else 0) +
                               (self._to_features.delay * self.rate / SAMPLE_RATE if self._to_features else 0.0))
        """Output samples the two conversions' filters delay the content by."""
        self.lag = self.delay + round(self.conversion_lag)
        self.latency = self.lag + block
        self._queue = _Queue(self.delay + 2 * block + len(self._converted) + len(self._made))
        self._silence = self.delay  # output samples still to be played as the initial delay

    def _least_delay(self) -> int:
        """The most the output wanted after any of the first blocks (at least 1,000, and 4 s)
        exceeds what the chain had made by then: every stage's count follows from the
        blocks' sizes alone."""
        blocks = np.arange(1, max(1000, -(-4 * self.rate // self.block)) + 1, dtype=np.int64)
        heard = blocks * self.block
        if self._to_features:
            heard = self._to_features.outputs_after(heard)
        made = self.engine.samples_after(self.features.frames_after(heard))
        if self._to_device:
            made = self._to_device.outputs_after(made)
        return int(max(0, (blocks * self.block - made).max()))

    def process(self, block: np.ndarray, out: np.ndarray) -> int:
        """Samples of `out` the chain could not fill in time (0 in steady state)."""
        heard = block
        if self._to_features:
            heard = self._heard[:self._to_features.process(block, self._heard)]
        features = self.features.feed(heard)
        if len(features[0]):
            self.engine.push(*self.adjust(*features))
        made = self._made[:self.engine.pull(self._made[:self.engine.ready])]
        if self._to_device:
            made = self._converted[:self._to_device.process(made, self._converted)]
        self._queue.write(made)
        lead = min(self._silence, len(out))
        out[:lead] = 0.0
        self._silence -= lead
        return len(out) - lead - self._queue.read(out[lead:])

    def stream(self, audio: np.ndarray) -> tuple[np.ndarray, int]:
        """A whole recording through `process` a block at a time, then `lag` samples of
        silence to let its end out; returns the output aligned with the input, and the
        samples that came late."""
        total = len(audio) + self.lag
        padded = np.zeros(-(-total // self.block) * self.block, np.float32)
        padded[:len(audio)] = audio
        out = np.zeros_like(padded)
        late = 0
        for start in range(0, len(padded), self.block):
            late += self.process(padded[start:start + self.block], out[start:start + self.block])
        return out[self.lag:self.lag + len(audio)], late


class _Queue:
    """A ring of float32 samples: what the chain made, waiting for its turn to play."""

    def __init__(self, capacity: int):
        self._ring = np.zeros(capacity, np.float32)
        self._start = self._size = 0

    def write(self, samples: np.ndarray) -> None:
        n, capacity = len(samples), len(self._ring)
        if self._size + n > capacity:
            raise OverflowError(f"the output queue holds {capacity} samples")
        at = (self._start + self._size) % capacity
        first = min(n, capacity - at)
        self._ring[at:at + first] = samples[:first]
        self._ring[:n - first] = samples[first:]
        self._size += n

    def read(self, out: np.ndarray) -> int:
        n, capacity = min(len(out), self._size), len(self._ring)
        first = min(n, capacity - self._start)
        out[:first] = self._ring[self._start:self._start + first]
        out[first:n] = self._ring[:n - first]
        self._start = (self._start + n) % capacity
        self._size -= n
        return n


def live_transfer(model: Path, source: Path, block: int, lookahead: int | None = None) -> tuple[np.ndarray, Transferred]:
    """`source` played as it would play live at its own rate: features from the stream as it
    arrives, the transfer's shifts from the notes heard so far, the streaming engine `block`
    samples a call (nas.play.live). The audio returned is aligned with the source, at its
    rate; its `latency_samples` is how far behind it a listener would hear it."""
    run, dataset_dir = run_paths(model)
    audio, rate = read_source(Path(source))
    live = LiveTransfer(load_engine(run), load_statistics(dataset_dir), block, CENTRED if lookahead is None else lookahead,
                        rate=rate)
    played, late = live.stream(audio)
    return played, Transferred(live.adjust.shift, rate, len(played) / rate, live.latency, late)
