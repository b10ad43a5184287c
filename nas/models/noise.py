"""ddsp's filtered-noise synth (window_size 0: each frame's full impulse response), with the
filter's spectrum as one matrix product of the band magnitudes (nas.noise_filter), as the
CPU engine computes it: the same filter without ddsp's inverse FFT, window and FFT of each
frame's response, in the forward and the backward pass.

Two more cuts of the training step, the same signal: the noise's frames (a hop of samples,
zero-padded) are transformed by one matrix product with the filter's phase ramp folded in,
where XLA's FFT of 192 points took 1.5x as long; and the noise is drawn by the stateless
Philox generator from a seed that TensorFlow's stateful op draws (ddsp draws all of the
noise with that op, which under XLA took 24x as long: 5.6 ms for a batch of 4).
"""

from __future__ import annotations

import tensorflow as tf

from nas import ddsp_api
from nas.noise_filter import frame_spectra_matrix, noise_crop, noise_filter_matrix


def filtered_noise(noise: tf.Tensor, magnitudes: tf.Tensor) -> tf.Tensor:
    """ddsp's frequency_filter(noise, magnitudes, window_size=0): noise [batch, samples],
    magnitudes [batch, frames, bands] -> [batch, samples]."""
    samples, (frames, bands) = int(noise.shape[-1]), magnitudes.shape[1:]
    hop = samples // frames
    if hop * frames != samples:
        raise ValueError(f"{samples} samples are not a whole number of hops over {frames} frames")
    gains, _, fft_size = noise_filter_matrix(bands, hop)
    bins = fft_size // 2 + 1
    parts = tf.reshape(noise, [-1, hop]) @ frame_spectra_matrix(bands, hop)  # real and imaginary parts
    spectra = tf.reshape(tf.complex(parts[:, :bins], parts[:, bins:]), [-1, frames, bins])
    response = tf.reshape(tf.reshape(magnitudes, [-1, bands]) @ gains, [-1, frames, bins])
    audio = tf.signal.overlap_and_add(tf.signal.irfft(spectra * tf.complex(response, 0.0), [fft_size]), hop)
    start = noise_crop(bands)
    return audio[:, start:start + samples]


def filtered_noise_class():
    synths = ddsp_api.synths()

    class FilteredNoise(synths.FilteredNoise):
        """`ddsp.synths.FilteredNoise` (its controls and noise unchanged) with the filter above."""

        def get_signal(self, magnitudes):
            if self.window_size > 0:
                return super().get_signal(magnitudes)
            seed = tf.random.uniform([2], maxval=tf.int32.max, dtype=tf.int32)
            noise = tf.random.stateless_uniform([int(magnitudes.shape[0]), self.n_samples], seed, minval=-1.0,
                                                maxval=1.0, alg="philox")
            return filtered_noise(noise, magnitudes)

    return FilteredNoise
