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

from nas.config.presets import ModelConfig
from nas.constants import DB_RANGE, F0_RANGE, NORMALIZE_EPS
from nas.noise_filter import noise_crop, noise_impulses

from .engine import Engine
from .synth import LOG_10, NOISE_BIAS, crossfade, harmonic_frame

PARTITION = 64  # reverb partition (samples): a power of two for the FFT below


class NotStreamable(ValueError):
    pass


def check_streamable(config: ModelConfig) -> None:
    """NotStreamable unless a model's config (model.json's `model`) decodes frame by frame:
    the dilated CNN with norm `frame`."""
    if config.decoder != "dilated-cnn" or config.norm != "frame":
        raise NotStreamable(f"this model cannot stream: its decoder is {config.decoder} with "
                            f"norm {config.norm!r}, which needs future frames; "
                            "train it with the setting model.norm=frame")


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
                  dense, bias, x, y, raw):  # pragma: no cover - compiled
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


# counts: what the stream has done, in one int64 array so that a block is one compiled call
PUSHED, DECODED, SYNTHESIZED, DRY, CHUNKS, READ, WRITTEN, NOISE_AT, ENDED = range(9)


@numba.njit(cache=True, fastmath=True)
def _step(dec, syn, rev, queues, counts, params):  # pragma: no cover - compiled
    """Decode the next queued frame and synthesise the frame it completes; False: nothing to do."""
    sample_rate, hop, n_harmonics, crop, lookahead = params
    if counts[DECODED] == counts[PUSHED]:
        if counts[ENDED] and counts[SYNTHESIZED] < counts[DECODED]:
            _synthesize(counts[SYNTHESIZED], syn, rev, queues, counts, params)
            return True
        return False
    (input_mean, input_std, input_conv, in_ring, kernels, scales, shifts, dilations, rings, out_norm, dense, bias,
     x_in, x, y, raw) = dec
    amps, f0s, magnitudes, impulses, fir, noise, noise_ring = syn[:7]
    controls = queues[0]
    frame = counts[DECODED]
    f0 = controls[frame % controls.shape[0], 0]
    loudness = controls[frame % controls.shape[0], 1]
    midi = 0.0 if f0 <= 0.0 else 12.0 * (math.log2(max(f0, 1e-5)) - math.log2(440.0)) + 69.0
    x_in[0] = (loudness / np.float32(DB_RANGE) + np.float32(1.0) - input_mean[0]) / input_std[0]
    x_in[1] = (np.float32(midi) / np.float32(F0_RANGE) - input_mean[1]) / input_std[1]
    _decode_frame(x_in, frame, input_conv, in_ring, kernels, scales, shifts, dilations, rings, out_norm, dense,
                  bias, x, y, raw)
    slot = frame % f0s.shape[0]
    _controls(raw, f0, sample_rate, n_harmonics, amps[slot], magnitudes)
    f0s[slot] = f0
    at = counts[NOISE_AT]
    if at + hop > noise.shape[0]:
        at = 0
    counts[NOISE_AT] = at + hop
    _add_noise(magnitudes, impulses, noise[at:at + hop], fir, frame * hop, crop, noise_ring)
    counts[DECODED] += 1
    if frame >= lookahead:  # that frame's audio is now complete
        _synthesize(frame - lookahead, syn, rev, queues, counts, params)
    return True


@numba.njit(cache=True, fastmath=True)
def _synthesize(frame, syn, rev, queues, counts, params):  # pragma: no cover - compiled
    """A frame's dry audio (harmonics + its finished noise) onto the dry queue; the reverb
    takes it from there a partition at a time."""
    sample_rate, hop, _, _, _ = params
    amps, f0s, _, _, _, _, noise_ring, fall, rise, scratch, phase = syn
    _, dry, out = queues
    slots = f0s.shape[0]
    now = frame % slots
    following = min(frame + 1, counts[DECODED] - 1) % slots
    start = counts[DRY]
    harmonic = dry[start:start + hop]
    phase[0] = harmonic_frame(f0s[now], f0s[following], amps[now], amps[following], sample_rate, fall, rise,
                              phase[0], scratch, harmonic)
    ring_at = (frame * hop) % noise_ring.shape[0]
    for j in range(hop):
        harmonic[j] += noise_ring[ring_at + j]
        noise_ring[ring_at + j] = 0.0
    counts[SYNTHESIZED] += 1
    counts[DRY] += hop
    spectra, delay_line, previous, buffer, accumulator, twiddles, bitrev, chunk, wet = rev
    while counts[DRY] >= PARTITION:
        for t in range(PARTITION):
            chunk[t] = dry[t]
        _reverb_chunk(chunk, previous, spectra, delay_line, counts[CHUNKS], buffer, accumulator, twiddles, bitrev,
                      wet)
        counts[CHUNKS] += 1
        at = counts[WRITTEN] % out.shape[0]
        for t in range(PARTITION):
            out[at + t] = chunk[t] + wet[t]
        counts[WRITTEN] += PARTITION
        counts[DRY] -= PARTITION
        for t in range(counts[DRY]):
            dry[t] = dry[PARTITION + t]


@numba.njit(cache=True)
def _push(f0_hz, loudness_db, controls, counts):  # pragma: no cover - compiled
    for i in range(f0_hz.shape[0]):
        row = (counts[PUSHED] + i) % controls.shape[0]
        controls[row, 0] = f0_hz[i]
        controls[row, 1] = loudness_db[i]
    counts[PUSHED] += f0_hz.shape[0]


@numba.njit(cache=True)
def _pull(target, dec, syn, rev, queues, counts, params):  # pragma: no cover - compiled
    out = queues[2]
    size = out.shape[0]
    room = size - PARTITION - params[1]  # what may wait in the output ring
    done = 0
    while done < target.shape[0]:
        want = min(target.shape[0] - done, room)
        while counts[WRITTEN] - counts[READ] < want and _step(dec, syn, rev, queues, counts, params):
            pass
        n = min(want, counts[WRITTEN] - counts[READ])
        for i in range(n):
            target[done + i] = out[(counts[READ] + i) % size]
        counts[READ] += n
        done += n
        if n < want:
            break
    for i in range(done, target.shape[0]):
        target[i] = 0.0
    return done


class StreamingEngine:
    """Push control frames (f0 Hz, loudness dB) as they arrive; pull audio in blocks.

    noise: the uniform noise the filtered-noise synth shapes, read in order and repeated
    (default: the engine's noise sequence, which the offline engine reads alike).
    """

    def __init__(self, engine: Engine, noise: np.ndarray | None = None, max_frames_ahead: int = 4096):
        check_streamable(engine.config)
        decoder = engine.decoder
        self.sample_rate, self.hop = engine.sample_rate, engine.hop
        hop, zeros = self.hop, np.zeros
        kernels = np.ascontiguousarray(decoder.kernels, np.float32)
        dilations = np.asarray(decoder.dilations, np.int64)
        taps, channels = kernels.shape[1], kernels.shape[-1]
        mean, std = decoder.input_moments or (zeros(2), np.ones(2))
        bias = np.asarray(decoder.dense[1], np.float32)
        self._dec = (np.asarray(mean, np.float32), np.asarray(std, np.float32),
                     np.ascontiguousarray(decoder.input_conv, np.float32), zeros((taps, 2), np.float32),
                     kernels, np.ascontiguousarray(decoder.scales, np.float32),
                     np.ascontiguousarray(decoder.shifts, np.float32), dilations,
                     zeros((len(dilations), (taps - 1) * int(dilations.max()) + 1, channels), np.float32),
                     np.stack(decoder.out_norm).astype(np.float32) if decoder.out_norm else zeros((2, 0), np.float32),
                     np.ascontiguousarray(decoder.dense[0], np.float32), bias,
                     zeros(2, np.float32), zeros(channels, np.float32), zeros(channels, np.float32),
                     zeros(len(bias), np.float32))
        # filtered noise: each frame's FIR in the time domain, from the offline engine's impulses
        n_bands = len(bias) - 1 - engine.n_harmonics
        impulses = noise_impulses(n_bands)
        ir_size = impulses.shape[1]
        crop = noise_crop(n_bands)
        self.lookahead_frames = max(1, -(-crop // hop))
        self.latency = self.lookahead_frames * hop
        """Samples from a control frame's time to when its audio can be pulled: its audio
        crossfades into the next frame's, and its noise filter reaches into the next span."""
        noise = engine.noise if noise is None else np.asarray(noise, np.float32)
        if len(noise) % hop:
            raise ValueError(f"the noise must be a whole number of hops ({hop} samples) long")
        fall, rise = crossfade(hop)
        slots = self.lookahead_frames + 1  # the frames the harmonic synth may still need
        self._syn = (zeros((slots, engine.n_harmonics), np.float32), zeros(slots),
                     zeros(n_bands, np.float32), impulses.astype(np.float32), zeros(ir_size, np.float32), noise,
                     zeros(hop * (self.lookahead_frames + 3 + -(-ir_size // hop)), np.float32), fall, rise,
                     tuple(zeros(hop, np.float32) for _ in range(7)), zeros(1))
        # reverb: the impulse response (first tap masked) in partitions, as FFTs of twice their size
        ir = np.asarray(engine.reverb.ir, np.float64)
        partitions = -(-len(ir) // PARTITION)
        padded = zeros((partitions, 2 * PARTITION))
        padded[:, :PARTITION] = np.pad(ir, (0, partitions * PARTITION - len(ir))).reshape(partitions, PARTITION)
        spectra = np.fft.fft(padded, axis=-1)[:, :PARTITION + 1].copy()
        self._rev = (spectra, np.zeros_like(spectra), zeros(PARTITION), zeros(2 * PARTITION, np.complex128),
                     zeros(PARTITION + 1, np.complex128), *_fft_tables(2 * PARTITION), zeros(PARTITION),
                     zeros(PARTITION))
        # queues: control frames in, dry audio, finished audio out
        self._queues = (zeros((max_frames_ahead, 2), np.float32), zeros(PARTITION + hop, np.float32),
                        zeros(1 << int(math.ceil(math.log2(2 * (PARTITION + hop) + 8192))), np.float32))
        self._counts = zeros(9, np.int64)
        self._params = (float(self.sample_rate), hop, engine.n_harmonics, crop, self.lookahead_frames)
        self.reset()

    def reset(self) -> None:
        """Silence and start again from frame 0 (the same as a new engine)."""
        keep = {id(a) for a in (*self._dec[:3], *self._dec[4:8], *self._dec[9:12], *self._syn[3:6], *self._syn[7:9],
                                self._rev[0], *self._rev[5:7])}
        for group in (self._dec, self._syn, self._rev, self._queues, self._syn[9]):
            for array in group:
                if isinstance(array, np.ndarray) and id(array) not in keep:
                    array[...] = 0
        self._counts[:] = 0

    def samples_after(self, pushed, ended: bool = False):
        """Samples `pushed` frames (an int or an array of them) let `pull` give in all: those
        of every frame whose lookahead has been pushed, in whole reverb partitions (all of
        them once `end` was called)."""
        frames = pushed if ended else np.maximum(0, pushed - self.lookahead_frames)
        return frames * self.hop // PARTITION * PARTITION

    @property
    def ready(self) -> int:
        """Samples `pull` can give now."""
        counts = self._counts
        return int(self.samples_after(counts[PUSHED], bool(counts[ENDED])) - counts[READ])

    @property
    def queued(self) -> int:
        """Control frames pushed and not yet decoded."""
        return int(self._counts[PUSHED] - self._counts[DECODED])

    def push(self, f0_hz: np.ndarray, loudness_db: np.ndarray) -> None:
        """Control frames, in order. They wait in a queue until audio is pulled."""
        count = len(f0_hz)
        if count != len(loudness_db):
            raise ValueError(f"{count} f0 frames but {len(loudness_db)} loudness frames")
        queue = len(self._queues[0])
        if self.queued + count > queue:
            raise ValueError(f"{self.queued + count} control frames waiting: at most {queue} may be ahead of the audio")
        _push(np.asarray(f0_hz, np.float32), np.asarray(loudness_db, np.float32), self._queues[0], self._counts)

    def end(self) -> None:
        """No more frames: the last one's audio is finished as the offline engine finishes it."""
        self._counts[ENDED] = 1

    def pull(self, out: np.ndarray) -> int:
        """Fill `out` (float32) with the next samples, decoding and synthesising the queued
        frames they need; returns how many samples there were frames for (the rest is silence)."""
        return _pull(out, self._dec, self._syn, self._rev, self._queues, self._counts, self._params)

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
