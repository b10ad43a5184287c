"""ddsp's filtered-noise synth (window_size 0: each frame's full impulse response), with the
filter's spectrum computed as one matrix product.

ddsp turns each frame's band magnitudes into an impulse response (an inverse FFT, a Hann
window, a shift to causal) and transforms that again to filter the frame's noise. All three
are linear and fixed, so the response's spectrum is the magnitudes times one constant
matrix, built once in float64 here: the same filter with two transforms fewer a frame, in
the forward and the backward pass.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import tensorflow as tf

from nas import ddsp_api


@functools.cache
def response_spectrum_matrix(bands: int, fft_size: int) -> tuple[np.ndarray, np.ndarray]:
    """[bands, fft_size // 2 + 1] real and imaginary parts: magnitudes -> the spectrum of
    ddsp's windowed causal impulse response (frequency_impulse_response, window_size 0)."""
    responses = np.fft.irfft(np.eye(bands), axis=-1)  # one band at a time: [bands, 2 (bands - 1)]
    size = responses.shape[-1]
    window = np.fft.fftshift(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(size) / size))  # periodic Hann, zero phase
    causal = np.fft.fftshift(responses * window, axes=-1)
    spectrum = np.fft.rfft(causal, fft_size, axis=-1)
    return spectrum.real.astype(np.float32), spectrum.imag.astype(np.float32)


def filtered_noise(noise: tf.Tensor, magnitudes: tf.Tensor) -> tf.Tensor:
    """ddsp's frequency_filter(noise, magnitudes, window_size=0): noise [batch, samples],
    magnitudes [batch, frames, bands] -> [batch, samples]."""
    samples, (frames, bands) = int(noise.shape[-1]), magnitudes.shape[1:]
    hop = samples // frames
    if hop * frames != samples:
        raise ValueError(f"{samples} samples are not a whole number of hops over {frames} frames")
    ir_size = 2 * (bands - 1)
    fft_size = 2 ** math.ceil(math.log2(hop + ir_size - 1))
    real, imag = response_spectrum_matrix(bands, fft_size)
    flat = tf.reshape(magnitudes, [-1, bands])
    response = tf.reshape(tf.complex(flat @ real, flat @ imag), [-1, frames, fft_size // 2 + 1])
    spectrum = tf.signal.rfft(tf.reshape(noise, [-1, frames, hop]), [fft_size]) * response
    audio = tf.signal.overlap_and_add(tf.signal.irfft(spectrum, [fft_size]), hop)
    start = (ir_size - 1) // 2 - 1  # ddsp's delay compensation of the linear-phase response
    return audio[:, start:start + samples]


def filtered_noise_class():
    synths = ddsp_api.synths()

    class FilteredNoise(synths.FilteredNoise):
        """`ddsp.synths.FilteredNoise` (its controls and noise unchanged) with the filter above."""

        def get_signal(self, magnitudes):
            if self.window_size > 0:
                return super().get_signal(magnitudes)
            noise = tf.random.uniform([int(magnitudes.shape[0]), self.n_samples], minval=-1.0, maxval=1.0)
            return filtered_noise(noise, magnitudes)

    return FilteredNoise
