"""ddsp's harmonic synthesizer, computed as a matrix product per control frame.

Same controls and same signal as `ddsp.synths.Harmonic` (amplitudes crossfaded with
ddsp's overlapping Hann windows, frequencies interpolated linearly, harmonics above
Nyquist silenced sample by sample), but arranged for speed:

- The phase depends only on f0, which comes from the data, so the sinusoid basis
  sin(k * phase) needs no gradient. ddsp differentiates through a cumulative sum and a
  sine over [batch, samples, harmonics].
- Within control frame n, sample j is the sum over harmonics of the frame's sinusoids
  times w_fall[j] a[n] + w_rise[j] a[n+1]: an elementwise product and a sum, which XLA
  fuses with the crossfade (a batched product of small matrices per frame was 1.3x
  slower, forward and backward).
- The phase is accumulated in float64 and wrapped once (k * phase stays small), which
  is more accurate than ddsp's float32 cumulative sum over 4 s.
- The sines are a polynomial (`sin_turns`): XLA's CPU sine took 3x the time of
  TensorFlow's own and 5x this one, and the basis's 30 million sines a batch were the
  largest part of the training step (benchmarks/train_step.py).
"""

from __future__ import annotations

import math

import tensorflow as tf

from nas import ddsp_api


def harmonic_basis(f0_hz: tf.Tensor, n_harmonics: int, n_samples: int, sample_rate: int,
                   first: int = 1) -> tf.Tensor:
    """sin(k * phase(t)) for k = first..first + n_harmonics - 1, zero at or above Nyquist.

    f0_hz [batch, frames, 1] -> [batch, frames, hop, n_harmonics]; the frequency is
    interpolated linearly between frames as `tf.compat.v1.image.resize` does in ddsp."""
    frames = f0_hz.shape[1]
    hop = n_samples // frames
    f0 = tf.cast(f0_hz[..., 0], tf.float64)
    f0_next = tf.concat([f0[:, 1:], f0[:, -1:]], axis=1)
    ramp = tf.range(hop, dtype=tf.float64) / hop
    freq = f0[:, :, tf.newaxis] + ramp * (f0_next - f0)[:, :, tf.newaxis]  # [batch, frames, hop]
    turns = tf.math.floormod(tf.cumsum(tf.reshape(freq, [-1, n_samples]) / sample_rate, axis=1), 1.0)
    k = tf.range(first, first + n_harmonics, dtype=tf.float32)
    audible = tf.cast(tf.cast(freq, tf.float32)[..., tf.newaxis] * k < sample_rate / 2, tf.float32)
    return tf.stop_gradient(sin_turns(tf.reshape(turns, [-1, frames, hop, 1]), k, first + n_harmonics - 1) * audible)


def sin_turns(turns: tf.Tensor, k: tf.Tensor, k_max: int) -> tf.Tensor:
    """sin(2 pi k turns) in float32 for float64 `turns` in [0, 1) and whole k >= 1, within
    1e-6 (tf.sin of the float32 product k * 2 pi turns is off by up to 2e-5 at k = 60).

    The turns are split into a coarse part whose product with any k is exact in float32
    and a small remainder, so k * turns is reduced to [-1/2, 1/2] without rounding; the
    sine is then odd-symmetric folding and a Taylor polynomial to degree 11 on
    [-pi/2, pi/2] (error below 6e-8). k_max, the largest k, sets the split."""
    bits = 23 - math.ceil(math.log2(k_max + 1))  # k * coarse keeps within 24 bits
    scale = 2.0 ** bits
    coarse = tf.round(turns * scale) / scale
    fine = tf.cast(turns - coarse, tf.float32)
    x = tf.cast(coarse, tf.float32) * k
    x = x - tf.round(x) + fine * k  # in [-1/2, 1/2] (a hair beyond)
    x = tf.where(x > 0.25, 0.5 - x, tf.where(x < -0.25, -0.5 - x, x))  # sin(pi - y) = sin(y)
    y = (2 * math.pi) * x
    y2 = y * y
    series = 1.0 - y2 * (1 / 110.0)
    for denominator in (72.0, 42.0, 20.0, 6.0):  # y (1 - y^2/3! (1 - y^2/(4 5) (1 - ...)))
        series = 1.0 - y2 * (1 / denominator) * series
    return y * series


def crossfade_windows(hop: int) -> tuple[tf.Tensor, tf.Tensor]:
    """The falling and rising halves of ddsp's periodic Hann window of 2 * hop."""
    window = tf.signal.hann_window(2 * hop)
    return window[hop:], window[:hop]


def harmonic_synthesis(amplitudes: tf.Tensor, harmonic_distribution: tf.Tensor, f0_hz: tf.Tensor,
                       n_samples: int, sample_rate: int, lowest_hz: float | None = None) -> tf.Tensor:
    """[batch, frames, 1], [batch, frames, K], [batch, frames, 1] -> audio [batch, n_samples].

    lowest_hz: the lowest f0 expected (a training set's). Harmonics at or above Nyquist
    there are silent in every batch whose f0 stays at or above it (the demo violin's 190 Hz
    leaves 44 of 60 audible), so only a batch that goes lower synthesises them. The same
    signal either way, with less work. The branch holds the silent harmonics alone: XLA
    keeps a branch's intermediates for the backward pass, and the other branch's zeros of
    their shape, so the audible ones are computed outside it. The branch is taken below the
    lowest f0 that leaves as many harmonics audible (at or under lowest_hz), so datasets whose
    lowest notes differ a little compile the same step (XLA's cache keys on it)."""
    frames, harmonics = harmonic_distribution.shape[1], harmonic_distribution.shape[-1]
    if n_samples % frames:
        raise ValueError(f"{n_samples} samples are not a whole number of hops over {frames} frames")
    audible = harmonics if not lowest_hz else min(harmonics, math.ceil(sample_rate / 2 / lowest_hz) + 1)
    amps = amplitudes * harmonic_distribution
    audio = _synthesis(amps[..., :audible], f0_hz, n_samples, sample_rate)
    if audible == harmonics:
        return audio
    # The lowest f0 that still gives `audible` above: the harmonics left out are silent from it up.
    threshold = sample_rate / 2 / (audible - 1)
    return audio + tf.cond(tf.reduce_min(f0_hz) >= threshold, lambda: tf.zeros_like(audio),
                           lambda: _synthesis(amps[..., audible:], f0_hz, n_samples, sample_rate, audible + 1))


def _synthesis(amps: tf.Tensor, f0_hz: tf.Tensor, n_samples: int, sample_rate: int, first: int = 1) -> tf.Tensor:
    """Amplitudes [batch, frames, K] of harmonics first..first + K - 1 -> audio [batch, n_samples]."""
    hop = n_samples // amps.shape[1]
    basis = harmonic_basis(f0_hz, amps.shape[-1], n_samples, sample_rate, first)  # [batch, frames, hop, K]
    amps_next = tf.concat([amps[:, 1:], amps[:, -1:]], axis=1)  # the last frame is held
    fall, rise = crossfade_windows(hop)
    crossfaded = amps[:, :, tf.newaxis] * fall[:, tf.newaxis] + amps_next[:, :, tf.newaxis] * rise[:, tf.newaxis]
    return tf.reshape(tf.reduce_sum(basis * crossfaded, axis=-1), [-1, n_samples])


def harmonic_class():
    synths = ddsp_api.synths()

    class Harmonic(synths.Harmonic):
        """`ddsp.synths.Harmonic` (its controls unchanged) with the fast signal above;
        `lowest_hz` as there, set by training to its dataset's lowest f0."""

        lowest_hz: float | None = None

        def get_signal(self, amplitudes, harmonic_distribution, f0_hz):
            return harmonic_synthesis(amplitudes, harmonic_distribution, f0_hz, self.n_samples, self.sample_rate,
                                      self.lowest_hz)

    return Harmonic
