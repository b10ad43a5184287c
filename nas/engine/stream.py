"""The streaming engine: the offline engine's synthesis, fed control frames as they arrive
and asked for audio in blocks of any size.

State carried from call to call, all allocated once:
- the causal convolutions' history: one ring of past frames per layer;
- the harmonic phase (float64) and the last frames' amplitudes;
- the filtered noise's overlap: each frame's FIR applied to its hop of noise in the time
  domain (the offline engine's FFT product, without the FFT) and added into a ring;
- the reverb: a uniformly partitioned convolution of the impulse response (overlap-save,
  FFTs of twice the partition, a frequency-domain delay line).

Latency: a frame's audio crossfades into the next frame's amplitudes and f0 (ddsp's
harmonic synth), and its noise filter reaches into the next frame's span, so the audio of
frame n is complete once frame n + `lookahead_frames` has been decoded. `latency` is that
in samples (one hop, 4 ms at 250 frames/s and 16 kHz); the reverb adds none (its first tap
is masked, so it needs only past samples). Only models that need no future stream: the
dilated CNN with `norm: frame`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .engine import DB_RANGE, F0_RANGE, Engine
from .synth import LOG_10, NOISE_BIAS, crossfade, harmonic_frame, noise_filter_matrix

PARTITION = 64  # reverb partition (samples): a power of two for the FFT below
NORMALIZE_EPS = 1e-5


class NotStreamable(ValueError):
    pass


@numba.njit(cache=True)
def _fft(a, twiddles, bitrev, inverse):  # pragma: no cover - compiled
    """In-place radix-2 FFT of complex128 a (a power of two long); inverse scales by 1/n."""
    n = a.shape[0]
    for i in range(n):
        j = bitrev[i]
        if i < j:
            a[i], a[j] = a[j], a[i]
    size = 2
    while size <= n:
        half = size // 2
        stride = n // size
        for start in range(0, n, size):
            for k in range(half):
                w = twiddles[k * stride]
                if inverse:
                    w = w.conjugate()
                t = w * a[start + k + half]
                a[start + k + half] = a[start + k] - t
                a[start + k] = a[start + k] + t
        size *= 2
    if inverse:
        for i in range(n):
            a[i] /= n


def _fft_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    bits = n.bit_length() - 1
    bitrev = np.array([int(format(i, f"0{bits}b")[::-1], 2) for i in range(n)], dtype=np.int64)
    return np.exp(-2j * np.pi * np.arange(n // 2) / n), bitrev


@numba.njit(cache=True, fastmath=True)
def _exp_sigmoid(x):  # pragma: no cover - compiled
    return 2.0 * math.exp(-LOG_10 * math.log(1.0 + math.exp(-x))) + 1e-7


@numba.njit(cache=True, fastmath=True)
def _decode_frame(x_in, frame, input_conv, in_ring, kernels, scales, shifts, dilations, rings, out_norm,
                  dense, bias, x, relu, y, raw):  # pragma: no cover - compiled
    """One frame through the dilated CNN (frame norm): x_in [2] standardised inputs -> raw [outputs]."""
    taps, _, channels = input_conv.shape
    in_len = in_ring.shape[0]
    in_ring[frame % in_len, 0] = x_in[0]
    in_ring[frame % in_len, 1] = x_in[1]
    for o in range(channels):
        x[o] = 0.0
    for tap in range(taps):
        back = taps - 1 - tap
        if back > frame:
            continue  # before the first frame: the offline conv's zero padding
        row = (frame - back) % in_len
        for i in range(2):
            for o in range(channels):
                x[o] += in_ring[row, i] * input_conv[tap, i, o]
    ring_len = rings.shape[1]
    for layer in range(kernels.shape[0]):
        slot = frame % ring_len
        for c in range(channels):
            rings[layer, slot, c] = min(max(x[c], np.float32(0.0)), np.float32(6.0))
        for o in range(channels):
            y[o] = 0.0
        for tap in range(taps):
            back = (taps - 1 - tap) * dilations[layer]
            if back > frame:
                continue
            row = (frame - back) % ring_len
            for i in range(channels):
                r = rings[layer, row, i]
                for o in range(channels):
                    y[o] += r * kernels[layer, tap, i, o]
        _frame_norm(y, scales[layer], shifts[layer])
        for o in range(channels):
            x[o] += y[o]
    if out_norm.shape[1] == channels:
        _frame_norm(x, out_norm[0], out_norm[1])
    for k in range(raw.shape[0]):
        raw[k] = bias[k]
    for c in range(channels):
        xc = x[c]
        for k in range(raw.shape[0]):
            raw[k] += xc * dense[c, k]


@numba.njit(cache=True, fastmath=True, inline="always")
def _frame_norm(v, scale, shift):  # pragma: no cover - compiled
    mean = 0.0
    for c in range(v.shape[0]):
        mean += v[c]
    mean /= v.shape[0]
    var = 0.0
    for c in range(v.shape[0]):
        var += (v[c] - mean) * (v[c] - mean)
    inv = 1.0 / math.sqrt(var / v.shape[0] + NORMALIZE_EPS)
    for c in range(v.shape[0]):
        v[c] = (v[c] - mean) * inv * scale[c] + shift[c]


@numba.njit(cache=True, fastmath=True)
def _controls(raw, f0, sample_rate, n_harmonics, amps, magnitudes):  # pragma: no cover - compiled
    """ddsp's Harmonic and FilteredNoise controls of one frame (see synth.harmonic_controls)."""
    total = 0.0
    for k in range(n_harmonics):
        if f0 * (k + 1) >= sample_rate / 2.0:
            amps[k] = 0.0
        else:
            amps[k] = _exp_sigmoid(raw[1 + k])
            total += amps[k]
    gain = _exp_sigmoid(raw[0]) / (total if total != 0.0 else 1e-7)
    for k in range(n_harmonics):
        amps[k] *= gain
    for b in range(magnitudes.shape[0]):
        magnitudes[b] = _exp_sigmoid(raw[1 + n_harmonics + b] + NOISE_BIAS)


@numba.njit(cache=True, fastmath=True)
def _add_noise(magnitudes, impulses, noise, fir, start, crop, ring):  # pragma: no cover - compiled
    """A frame's FIR (its band magnitudes @ the bands' windowed causal impulses) convolved
    with its hop of noise, added into the ring at output positions start - crop + t."""
    size = fir.shape[0]
    for t in range(size):
        fir[t] = 0.0
    for b in range(magnitudes.shape[0]):
        m = magnitudes[b]
        for t in range(size):
            fir[t] += m * impulses[b, t]
    ring_len = ring.shape[0]
    for j in range(noise.shape[0]):
        nj = noise[j]
        for t in range(size):
            position = start - crop + j + t
            if position >= 0:
                ring[position % ring_len] += nj * fir[t]


@numba.njit(cache=True)
def _reverb_chunk(dry, previous, spectra, delay_line, index, buffer, accumulator, twiddles, bitrev,
                  wet):  # pragma: no cover - compiled
    """Overlap-save with a frequency-domain delay line: wet[P] for the chunk dry[P]."""
    part = dry.shape[0]
    for t in range(part):
        buffer[t] = previous[t]
        buffer[part + t] = dry[t]
        previous[t] = dry[t]
    _fft(buffer, twiddles, bitrev, False)
    partitions, bins = spectra.shape[0], spectra.shape[1]  # bins: part + 1 (the half spectrum)
    slot = index % partitions
    for b in range(bins):
        delay_line[slot, b] = buffer[b]
        accumulator[b] = 0.0
    for k in range(partitions):
        row = (index - k) % partitions
        for b in range(bins):
            accumulator[b] += spectra[k, b] * delay_line[row, b]
    for b in range(bins):
        buffer[b] = accumulator[b]
    for b in range(1, part):
        buffer[2 * part - b] = accumulator[b].conjugate()
    _fft(buffer, twiddles, bitrev, True)
    for t in range(part):
        wet[t] = buffer[part + t].real


class StreamingEngine:
    """Push control frames (f0 Hz, loudness dB) as they arrive; pull audio in blocks.

    noise: the uniform noise the filtered-noise synth shapes, read in order and repeated
    (default: 30 s from the engine's seed); give the offline engine the same samples to
    compare.
    """

    def __init__(self, engine: Engine, noise: np.ndarray | None = None, max_frames_ahead: int = 4096):
        config = engine.model["model"]
        if config["decoder"] != "dilated-cnn" or config.get("norm", "sequence") != "frame":
            raise NotStreamable(f"this model cannot stream: its decoder is {config['decoder']} with "
                                f"norm {config.get('norm', 'sequence')!r}, which needs future frames; "
                                "train it with the setting model.norm=frame")
        decoder = engine.decoder
        w = decoder.w
        self.sample_rate, self.hop, self.n_harmonics = engine.sample_rate, engine.hop, engine.n_harmonics
        hop = self.hop
        # decoder
        self._input_mean = np.asarray(w.get("input.mean", np.zeros(2)), np.float32)
        self._input_std = np.asarray(w.get("input.std", np.ones(2)), np.float32)
        self._input_conv = np.ascontiguousarray(w["input_conv"], np.float32)
        self._kernels = np.ascontiguousarray(decoder.kernels, np.float32)
        self._scales = np.ascontiguousarray(decoder.scales, np.float32)
        self._shifts = np.ascontiguousarray(decoder.shifts, np.float32)
        self._dilations = np.asarray(decoder.dilations, np.int64)
        taps, channels = self._input_conv.shape[0], self._input_conv.shape[2]
        self._in_ring = np.zeros((taps, 2), np.float32)
        self._rings = np.zeros((len(self._dilations), (taps - 1) * int(self._dilations.max()) + 1, channels),
                               np.float32)
        self._out_norm = (np.stack([w["out_norm.scale"], w["out_norm.shift"]]).astype(np.float32)
                          if "out_norm.scale" in w else np.zeros((2, 0), np.float32))
        self._dense = np.ascontiguousarray(w["dense_out.kernel"], np.float32)
        self._bias = np.asarray(w["dense_out.bias"], np.float32)
        self._x_in = np.zeros(2, np.float32)
        self._x, self._relu, self._y = (np.zeros(channels, np.float32) for _ in range(3))
        self._raw = np.zeros(len(self._bias), np.float32)
        # filtered noise
        n_bands = len(self._bias) - 1 - self.n_harmonics
        ir_size = 2 * (n_bands - 1)
        impulse = np.fft.irfft(np.eye(n_bands), n=ir_size)
        from nas.spectrum import periodic_hann

        self._impulses = (np.roll(impulse, ir_size // 2, axis=-1) * periodic_hann(ir_size)).astype(np.float32)
        self._fir = np.zeros(ir_size, np.float32)
        self._crop = (ir_size - 1) // 2 - 1  # as synth.filtered_noise crops its overlap-add
        assert noise_filter_matrix(n_bands, hop)[1] >= hop + ir_size - 1  # the offline FFT is linear too
        self.lookahead_frames = max(1, -(-self._crop // hop))
        self._noise_ring = np.zeros(hop * (self.lookahead_frames + 3 + -(-ir_size // hop)), np.float32)
        self._magnitudes = np.zeros(n_bands, np.float32)
        # controls of the frames the harmonic synth still needs, by frame % (lookahead + 1)
        self._amps = np.zeros((self.lookahead_frames + 1, self.n_harmonics), np.float32)
        self._f0 = np.zeros(self.lookahead_frames + 1, np.float64)
        self._noise = (np.asarray(noise, np.float32) if noise is not None else
                       engine.rng.uniform(-1.0, 1.0, 30 * self.sample_rate).astype(np.float32))
        # harmonics
        self._fall, self._rise = crossfade(hop)
        self._scratch = tuple(np.zeros(hop, np.float32) for _ in range(7))
        self._phase = 0.0
        # reverb
        ir = np.asarray(engine.reverb.ir, np.float64)  # ir[0] already masked
        partitions = -(-len(ir) // PARTITION)
        padded = np.zeros((partitions, 2 * PARTITION))
        padded[:, :PARTITION] = np.pad(ir, (0, partitions * PARTITION - len(ir))).reshape(partitions, PARTITION)
        self._ir_spectra = np.fft.fft(padded, axis=-1)[:, :PARTITION + 1].copy()
        self._delay_line = np.zeros_like(self._ir_spectra)
        self._previous = np.zeros(PARTITION)
        self._fft_buffer = np.zeros(2 * PARTITION, np.complex128)
        self._accumulator = np.zeros(PARTITION + 1, np.complex128)
        self._twiddles, self._bitrev = _fft_tables(2 * PARTITION)
        self._chunk = np.zeros(PARTITION)
        self._wet = np.zeros(PARTITION)
        # queues: control frames in, dry audio, finished audio out
        self._controls = np.zeros((max_frames_ahead, 2), np.float32)
        self._dry = np.zeros(PARTITION + hop, np.float32)
        self._out = np.zeros(1 << int(math.ceil(math.log2(2 * (PARTITION + hop) + 8192))), np.float32)
        self.latency = self.lookahead_frames * hop
        self.reset()

    def reset(self) -> None:
        """Silence and start again from frame 0 (the same as a new engine)."""
        for array in (self._in_ring, self._rings, self._amps, self._f0, self._noise_ring, self._delay_line,
                      self._previous, self._controls, self._dry, self._out):
            array[...] = 0
        self._phase = 0.0
        self._pushed = self._decoded = self._synthesized = 0  # frames
        self._dry_count = self._chunks = 0  # dry samples waiting; reverb chunks done
        self._out_read = self._out_written = 0  # samples
        self._noise_position = 0
        self._ended = False

    @property
    def queued(self) -> int:
        """Control frames pushed and not yet decoded."""
        return self._pushed - self._decoded

    def push(self, f0_hz: np.ndarray, loudness_db: np.ndarray) -> None:
        """Control frames, in order. They wait in a queue until audio is pulled."""
        count = len(f0_hz)
        if count != len(loudness_db):
            raise ValueError(f"{count} f0 frames but {len(loudness_db)} loudness frames")
        queue = len(self._controls)
        if self.queued + count > queue:
            raise ValueError(f"{self.queued + count} control frames waiting: at most {queue} may be ahead of the audio")
        for i in range(count):
            row = (self._pushed + i) % queue
            self._controls[row, 0] = f0_hz[i]
            self._controls[row, 1] = loudness_db[i]
        self._pushed += count

    def end(self) -> None:
        """No more frames: the last one's audio is finished as the offline engine finishes it."""
        self._ended = True

    def pull(self, out: np.ndarray) -> int:
        """Fill `out` (float32) with the next samples, decoding and synthesising the queued
        frames they need; returns how many samples there were frames for (the rest is silence)."""
        done = 0
        size = len(self._out)
        while done < len(out):
            want = min(len(out) - done, size - PARTITION - self.hop)
            while self._out_written - self._out_read < want and self._step():
                pass
            n = min(want, self._out_written - self._out_read)
            start = self._out_read % size
            first = min(n, size - start)
            out[done:done + first] = self._out[start:start + first]
            out[done + first:done + n] = self._out[:n - first]
            self._out_read += n
            done += n
            if n < want:
                break
        out[done:] = 0.0
        return done

    def render(self, f0_hz: np.ndarray, loudness_db: np.ndarray, block: int | np.ndarray) -> np.ndarray:
        """A whole clip's controls, pulled in blocks of `block` samples (or of each size of an
        array of sizes in turn, repeated), each call pushing only the frames it needs."""
        sizes = np.atleast_1d(block).astype(int)
        total = len(f0_hz) * self.hop
        audio = np.zeros(total, np.float32)
        fed = written = calls = 0
        while written < total:
            size = min(int(sizes[calls % len(sizes)]), total - written)
            calls += 1
            needed = min(len(f0_hz), -(-(written + size) // self.hop) + self.lookahead_frames)
            if needed > fed:
                self.push(f0_hz[fed:needed], loudness_db[fed:needed])
                fed = needed
            if fed == len(f0_hz):
                self.end()
            written += self.pull(audio[written:written + size])
        return audio

    def _step(self) -> bool:
        """Decode the next queued frame and synthesise what it completes; False: nothing to do."""
        if self._decoded == self._pushed:
            if self._ended and self._synthesized < self._decoded:
                self._synthesize(self._synthesized)
                return True
            return False
        hop = self.hop
        frame = self._decoded
        row = self._controls[frame % len(self._controls)]
        f0 = float(row[0])
        midi = 0.0 if f0 <= 0.0 else 12.0 * (math.log2(max(f0, 1e-5)) - math.log2(440.0)) + 69.0
        self._x_in[0] = (np.float32(row[1]) / np.float32(DB_RANGE) + np.float32(1.0) - self._input_mean[0]) \
            / self._input_std[0]
        self._x_in[1] = (np.float32(midi) / np.float32(F0_RANGE) - self._input_mean[1]) / self._input_std[1]
        _decode_frame(self._x_in, frame, self._input_conv, self._in_ring, self._kernels, self._scales,
                      self._shifts, self._dilations, self._rings, self._out_norm, self._dense, self._bias,
                      self._x, self._relu, self._y, self._raw)
        slot = frame % len(self._f0)
        _controls(self._raw, np.float32(f0), float(self.sample_rate), self.n_harmonics, self._amps[slot],
                  self._magnitudes)
        self._f0[slot] = np.float32(f0)
        _add_noise(self._magnitudes, self._impulses, self._noise_hop(), self._fir, frame * hop, self._crop,
                   self._noise_ring)
        self._decoded += 1
        if frame >= self.lookahead_frames:  # that frame's audio is now complete
            self._synthesize(frame - self.lookahead_frames)
        return True

    def _noise_hop(self) -> np.ndarray:
        start = self._noise_position % len(self._noise)
        self._noise_position += self.hop
        if start + self.hop > len(self._noise):
            raise ValueError("the noise must be a whole number of hops long")
        return self._noise[start:start + self.hop]

    def _synthesize(self, frame: int) -> None:
        hop = self.hop
        now, following = frame % len(self._f0), min(frame + 1, self._decoded - 1) % len(self._f0)
        harmonic = self._dry[self._dry_count:self._dry_count + hop]
        self._phase = harmonic_frame(self._f0[now], self._f0[following], self._amps[now], self._amps[following],
                                     float(self.sample_rate), self._fall, self._rise, self._phase, self._scratch,
                                     harmonic)
        ring = self._noise_ring
        start = (frame * hop) % len(ring)
        harmonic += ring[start:start + hop]
        ring[start:start + hop] = 0.0
        self._synthesized += 1
        self._dry_count += hop
        while self._dry_count >= PARTITION:
            self._chunk[:] = self._dry[:PARTITION]
            _reverb_chunk(self._chunk, self._previous, self._ir_spectra, self._delay_line, self._chunks,
                          self._fft_buffer, self._accumulator, self._twiddles, self._bitrev, self._wet)
            self._chunks += 1
            size = len(self._out)
            at = self._out_written % size
            self._out[at:at + PARTITION] = self._chunk + self._wet
            self._out_written += PARTITION
            self._dry_count -= PARTITION
            self._dry[:self._dry_count] = self._dry[PARTITION:PARTITION + self._dry_count]
