"""The DDSP synthesizer in NumPy + Numba: decoder outputs -> controls -> harmonic +
filtered noise -> reverb, the same signal as the TensorFlow model (ddsp's processors
with nas' harmonic synth), for CPU deployment without TensorFlow.

Where it differs in arrangement, for speed:
- Harmonics: sin(k * phase) by the angle-addition recurrence, one control frame at a
  time so the accumulators stay in registers, two harmonics a pass, and stopping at
  the first harmonic that is above Nyquist for the whole frame (a violin A4 needs 18 of 60).
- Filtered noise: ddsp builds each frame's FIR (inverse FFT of the band magnitudes,
  Hann window, causal shift) and convolves it by FFT. All of that is linear in the
  magnitudes, so the filter's spectrum is one real matrix product with a fixed matrix.
- Reverb: one FFT convolution with the impulse response's spectrum computed once.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np
import scipy.fft

from nas.noise_filter import noise_crop, noise_filter_matrix
from nas.spectrum import fast_size, periodic_hann

NOISE_BIAS = -5.0  # ddsp FilteredNoise's initial_bias
LOG_10 = math.log(10.0)


def exp_sigmoid(x: np.ndarray) -> np.ndarray:
    """ddsp.core.exp_sigmoid, 2 * sigmoid(x) ** ln(10) + 1e-7, written with exp and log
    (NumPy vectorises those in float32; its power and log1p are several times slower),
    in place in one new array."""
    y = np.negative(x, dtype=np.float32)
    np.exp(y, out=y)
    y += 1.0
    np.log(y, out=y)
    y *= np.float32(-LOG_10)
    np.exp(y, out=y)
    y *= 2.0
    y += np.float32(1e-7)
    return y


def harmonic_controls(amps_raw: np.ndarray, distribution_raw: np.ndarray, f0_hz: np.ndarray,
                      sample_rate: int) -> np.ndarray:
    """Per-harmonic amplitudes [frames, K] as ddsp's Harmonic.get_controls makes them:
    scaled, harmonics at or above Nyquist removed, distribution normalised."""
    n_harmonics = distribution_raw.shape[-1]
    # Harmonics above Nyquist in every frame stay zero; scaling them would be wasted work.
    audible = min(n_harmonics, int(np.sum(np.arange(1, n_harmonics + 1) * float(f0_hz.min()) < sample_rate / 2)))
    distribution = exp_sigmoid(distribution_raw[:, :audible])
    k = np.arange(1, audible + 1, dtype=np.float32)
    distribution *= np.asarray(f0_hz, np.float32)[:, None] * k < sample_rate / 2  # zero at or above Nyquist
    total = distribution.sum(axis=-1, keepdims=True)
    amps = np.zeros(distribution_raw.shape, dtype=np.float32)
    np.multiply(distribution, exp_sigmoid(amps_raw) / np.where(total == 0.0, np.float32(1e-7), total),
                out=amps[:, :audible])
    return amps


@numba.njit(cache=True)
def _frequencies(f0_now, f0_next, freq):  # pragma: no cover - compiled
    """Each sample's frequency as the TensorFlow model computes it (nas.models.harmonic):
    linear in float64, then float32. Not fast-math, so the rounding is exactly that: whether
    a harmonic is above Nyquist can hang on the last bit."""
    hop = freq.shape[0]
    for j in range(hop):
        freq[j] = np.float32(f0_now + (j / hop) * (f0_next - f0_now))


@numba.njit(cache=True, fastmath=True, inline="always")
def harmonic_frame(f0_now, f0_next, a_now, a_next, sample_rate, fall, rise, phase, scratch,
                   out):  # pragma: no cover - compiled
    """One control frame's samples into out[:hop]: the fundamental's sin/cos by rotation from
    an exact float64 anchor `phase` (the cumulative sum of 2 pi f / sample_rate before the
    frame, frequency linear within it), then sin(k phase) for k = 1, 2, ... by angle
    addition, summed with this frame's and the next frame's amplitudes and crossfaded.
    scratch: seven float32 [hop] arrays (separate ones: LLVM vectorises only loops over
    arrays it knows do not overlap). Returns the phase after the frame, in [0, 2 pi)."""
    hop = out.shape[0]
    nyquist = sample_rate / 2.0
    nyquist32 = np.float32(nyquist)
    step = 2.0 * math.pi / sample_rate
    freq, s1, c1, s, c, acc_now, acc_next = scratch
    slope = (f0_next - f0_now) / hop
    _frequencies(f0_now, f0_next, freq)
    # e^{i phase_j}, phase_j = phase + sum_{u <= j} omega_u, omega_u = step * (f0 + u * slope)
    ps, pc = math.sin(phase), math.cos(phase)
    rs, rc = math.sin(step * f0_now), math.cos(step * f0_now)
    ds, dc = math.sin(step * slope), math.cos(step * slope)
    lowest = f0_now
    for j in range(hop):
        ps, pc = ps * rc + pc * rs, pc * rc - ps * rs
        rs, rc = rs * dc + rc * ds, rc * dc - rs * ds
        lowest = min(lowest, freq[j])
        s1[j] = ps
        c1[j] = pc
        s[j] = ps
        c[j] = pc
        acc_now[j] = 0.0
        acc_next[j] = 0.0
    audible = 0  # harmonics 1..audible sound somewhere in the frame; the rest are silent all through
    while audible < a_now.shape[0] and (audible + 1) * lowest < nyquist:
        audible += 1
    # Two harmonics a pass: s, c and the accumulators go through memory half as often.
    # A product in float32 that rounds up to Nyquist is silent, as the model takes it.
    for k in range(1, audible, 2):
        now_a, now_b = a_now[k - 1], a_now[k]
        next_a, next_b = a_next[k - 1], a_next[k]
        k_a, k_b = np.float32(k), np.float32(k + 1)
        for j in range(hop):
            s_b = s[j] * c1[j] + c[j] * s1[j]
            c_b = c[j] * c1[j] - s[j] * s1[j]
            sound_a = s[j] if k_a * freq[j] < nyquist32 else np.float32(0.0)
            sound_b = s_b if k_b * freq[j] < nyquist32 else np.float32(0.0)
            acc_now[j] += now_a * sound_a + now_b * sound_b
            acc_next[j] += next_a * sound_a + next_b * sound_b
            s[j] = s_b * c1[j] + c_b * s1[j]
            c[j] = c_b * c1[j] - s_b * s1[j]
    if audible % 2:
        k32 = np.float32(audible)
        for j in range(hop):
            sound = s[j] if k32 * freq[j] < nyquist32 else np.float32(0.0)
            acc_now[j] += a_now[audible - 1] * sound
            acc_next[j] += a_next[audible - 1] * sound
    for j in range(hop):
        out[j] = fall[j] * acc_now[j] + rise[j] * acc_next[j]
    return (phase + step * (hop * f0_now + slope * hop * (hop - 1) / 2.0)) % (2.0 * math.pi)


@numba.njit(cache=True, fastmath=True)
def _harmonic_frames(f0, amps, hop, sample_rate, fall, rise, out):  # pragma: no cover - compiled
    """Every frame in turn; the last frame's successor is itself."""
    frames = amps.shape[0]
    scratch = (np.empty(hop, dtype=np.float32), np.empty(hop, dtype=np.float32), np.empty(hop, dtype=np.float32),
               np.empty(hop, dtype=np.float32), np.empty(hop, dtype=np.float32), np.empty(hop, dtype=np.float32),
               np.empty(hop, dtype=np.float32))
    phase = 0.0
    for n in range(frames):
        following = min(n + 1, frames - 1)
        phase = harmonic_frame(f0[n], f0[following], amps[n], amps[following], sample_rate, fall, rise, phase,
                               scratch, out[n * hop:(n + 1) * hop])


@functools.lru_cache(maxsize=8)
def crossfade(hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Falling and rising halves of the periodic Hann window of 2 * hop (ddsp's)."""
    window = periodic_hann(2 * hop)
    return window[hop:].astype(np.float32), window[:hop].astype(np.float32)


def harmonic_audio(harmonic_amps: np.ndarray, f0_hz: np.ndarray, hop: int, sample_rate: int) -> np.ndarray:
    """[frames, K] amplitudes, [frames] f0 -> audio [frames * hop] float32."""
    out = np.empty(len(f0_hz) * hop, dtype=np.float32)
    fall, rise = crossfade(hop)
    _harmonic_frames(np.asarray(f0_hz, dtype=np.float64), np.asarray(harmonic_amps, dtype=np.float32), hop,
                     float(sample_rate), fall, rise, out)
    return out


def noise_spectra(noise: np.ndarray, n_bands: int, hop: int) -> np.ndarray:
    """Each hop of noise, zero-padded to the filter's FFT size, as its rfft times the filter's
    phase ramp (`noise_filter_matrix`): [frames, fft_size // 2 + 1] complex64."""
    _, ramp, fft_size = noise_filter_matrix(n_bands, hop)
    frames = len(noise) // hop
    padded = np.zeros((frames, fft_size), dtype=np.float32)
    padded[:, :hop] = noise[:frames * hop].reshape(frames, hop)
    return scipy.fft.rfft(padded, axis=-1, workers=1) * ramp


def filtered_noise(magnitudes: np.ndarray, hop: int, noise: np.ndarray | None = None,
                   spectra: np.ndarray | None = None) -> np.ndarray:
    """ddsp's FilteredNoise (window_size 0): [frames, bands] magnitudes and uniform noise
    (samples, or its per-hop spectra from `noise_spectra`) -> audio [frames * hop]."""
    frames, n_bands = magnitudes.shape
    gains, _, fft_size = noise_filter_matrix(n_bands, hop)
    if spectra is None:
        spectra = noise_spectra(noise, n_bands, hop)
    filtered = scipy.fft.irfft(spectra * (magnitudes.astype(np.float32) @ gains), n=fft_size, axis=-1, workers=1)
    return overlap_add(filtered, hop, crop_start=noise_crop(n_bands), length=frames * hop)


def overlap_add(blocks: np.ndarray, hop: int, crop_start: int, length: int) -> np.ndarray:
    """Sum blocks [frames, size] placed every `hop` samples (size a multiple of hop); crop."""
    frames, size = blocks.shape
    parts = size // hop
    out = np.zeros((frames + parts - 1, hop), dtype=blocks.dtype)
    pieces = blocks.reshape(frames, parts, hop)
    for q in range(parts):
        out[q:q + frames] += pieces[:, q]
    return out.ravel()[crop_start:crop_start + length]


class Reverb:
    """ddsp's trainable Reverb at inference: dry + the audio convolved with the learned
    impulse response (its first tap masked, as ddsp does), via FFTs of a fast size."""

    def __init__(self, impulse_response: np.ndarray):
        self.ir = np.asarray(impulse_response, dtype=np.float32).copy()
        self.ir[0] = 0.0
        self._spectra: dict[int, np.ndarray] = {}

    def spectrum(self, size: int) -> np.ndarray:
        if size not in self._spectra:
            self._spectra[size] = scipy.fft.rfft(self.ir, n=size, workers=1)
        return self._spectra[size]

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        size = fast_size(len(audio) + len(self.ir) - 1)
        spectrum = scipy.fft.rfft(audio, n=size, workers=1)
        spectrum *= self.spectrum(size)
        wet = scipy.fft.irfft(spectrum, n=size, workers=1, overwrite_x=True)[:len(audio)]
        wet += audio
        return wet
