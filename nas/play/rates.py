"""Rate conversion for what nas plays: the device's or file's rate to the features' 16 kHz,
and the model's rate to the device's, a block at a time or a whole clip, with one filter.

A polyphase windowed-sinc resampler for any rational ratio (16 kHz to 44.1 kHz is 441/160).
Its prototype low-pass (Kaiser, 100 dB) has its stop band from the lower rate's Nyquist up,
so nothing folds back or is imaged (band-limited), its pass band to 0.45 of the lower rate
(7.2 kHz at 16 kHz), and it reaches `HALF_WIDTH` samples of the lower rate each side: the
conversion delays by 4 ms at 16 kHz, a whole number of output samples. soxr's stream API
(`nas.resample`'s library), at the qualities that band-limit, holds back 37-84 ms at these
rates before its first output (benchmarks/streaming.py measures both); live play cannot
spend that.

The streamed and the whole-clip conversion are the same sums in the same order, so a
clip played in blocks equals the clip converted at once, delay aside.
"""

from __future__ import annotations

import math

import numba
import numpy as np

RATES = (8000, 192000)  # the rates nas plays at, inclusive
HALF_WIDTH = 64  # filter taps each side of the centre, in samples of the lower rate
ATTENUATION_DB = 100.0


def check_rate(rate: int) -> int:
    if not RATES[0] <= rate <= RATES[1]:
        raise ValueError(f"{rate} Hz: nas plays at {RATES[0]} to {RATES[1]} Hz")
    return rate


def _prototype(up: int, down: int) -> tuple[np.ndarray, int]:
    """The low-pass at the common rate (input rate * up) and its centre, a multiple of `down`."""
    span = max(up, down)  # common-rate samples per sample of the lower rate
    centre = -(-HALF_WIDTH * span // down) * down
    t = (np.arange(2 * centre + 1) - centre) / span  # in samples of the lower rate
    # Kaiser's estimate of the transition width for this length and attenuation; the stop
    # band starts at the lower rate's Nyquist (0.5 cycles a sample).
    transition = (ATTENUATION_DB - 8.0) / (2.285 * 2 * math.pi * 2 * HALF_WIDTH)
    cutoff = 0.5 - transition / 2
    beta = 0.1102 * (ATTENUATION_DB - 8.7)
    taps = 2 * cutoff * np.sinc(2 * cutoff * t) * np.kaiser(len(t), beta)
    return taps * (up / taps.sum()), centre  # unit gain at DC through the zero-stuffed input


@numba.njit(cache=True, fastmath=True)
def _convolve(table, up, down, buffer, part, state, out):  # pragma: no cover - compiled
    """`part` joins the history at the end of buffer's first taps - 1 samples; the outputs whose
    newest input has now arrived go to out; the newest taps - 1 inputs become the history.
    state: [inputs taken, the next output's index]. Returns the outputs written."""
    taps = table.shape[1]
    kept = taps - 1
    n = part.shape[0]
    for t in range(n):
        buffer[kept + t] = part[t]
    state[0] += n
    origin = state[0] - n - kept  # the input index of buffer[0]
    written = 0
    while written < out.shape[0]:
        position = state[1] * down
        newest = position // up
        if newest >= state[0]:
            break
        row = table[position % up]
        start = newest - kept - origin
        acc = np.float32(0.0)
        for i in range(taps):
            acc += row[i] * buffer[start + i]
        out[written] = acc
        written += 1
        state[1] += 1
    for t in range(kept):  # moving left: in order is safe
        buffer[t] = buffer[n + t]
    return written


class Resampler:
    """`rate_in` to `rate_out` in chunks of any size; `delay` output samples behind the input.

    `process` allocates nothing: its history buffer holds `capacity` new samples a call
    (longer chunks go in parts)."""

    def __init__(self, rate_in: int, rate_out: int, capacity: int = 8192):
        common = math.gcd(rate_in, rate_out)
        self.rate_in, self.rate_out = rate_in, rate_out
        self.up, self.down = rate_out // common, rate_in // common
        taps, centre = _prototype(self.up, self.down)
        per_phase = -(-len(taps) // self.up)
        table = np.zeros(per_phase * self.up, np.float32)
        table[:len(taps)] = taps
        # row p holds taps p, p + up, ...: reversed, so each output is a dot product over inputs in order
        self._table = np.ascontiguousarray(table.reshape(per_phase, self.up).T[:, ::-1])
        self.delay = centre // self.down
        self.capacity = capacity
        self._buffer = np.zeros(per_phase - 1 + capacity, np.float32)
        self._state = np.zeros(2, np.int64)  # inputs taken, the next output's index
        self.reset()

    def reset(self) -> None:
        self._buffer[:] = 0.0  # silence before the first sample
        self._state[:] = 0

    def outputs_after(self, inputs):
        """How many outputs `inputs` samples (an int or an array of them) give in all, however
        they were chunked."""
        return -(-inputs * self.up // self.down)

    def letting_out(self) -> int:
        """Inputs of silence after a clip that let its last outputs out past the delay."""
        return -(-(self.delay + 1) * self.down // self.up) + 1

    def most_out(self, inputs: int) -> int:
        """The most outputs one call with `inputs` new samples can give."""
        return -(-inputs * self.up // self.down) + 1

    def process(self, chunk: np.ndarray, out: np.ndarray) -> int:
        """Converts `chunk`; writes the outputs it completes to `out` and returns their number."""
        if len(chunk) <= self.capacity:
            return _convolve(self._table, self.up, self.down, self._buffer, chunk, self._state, out)
        written = 0
        for start in range(0, len(chunk), self.capacity):
            written += _convolve(self._table, self.up, self.down, self._buffer, chunk[start:start + self.capacity],
                                 self._state, out[written:])
        return written


def convert(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """A whole clip at `target` Hz, aligned with it (the delay taken off), by the same filter
    as the streamed conversion."""
    if rate == target:
        return np.asarray(audio, np.float32)
    resampler = Resampler(rate, target)
    length = resampler.outputs_after(len(audio))
    padded = np.concatenate([np.asarray(audio, np.float32), np.zeros(resampler.letting_out(), np.float32)])
    out = np.empty(resampler.outputs_after(len(padded)), np.float32)
    resampler.process(padded, out)
    return out[resampler.delay:resampler.delay + length].copy()
