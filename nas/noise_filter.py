"""ddsp's filtered-noise filter (window_size 0) as fixed NumPy arrays, for every runtime:
the TensorFlow model (nas.models.noise), the CPU engine and the Neutone module.

ddsp turns each frame's band magnitudes into an impulse response (an inverse FFT, a Hann
window, a shift to causal) and transforms it again to filter the frame's noise. All of it
is linear and fixed, so a frame's response, and its spectrum, is its magnitudes times a
constant matrix.
"""

from __future__ import annotations

import functools

import numpy as np

from nas.spectrum import periodic_hann


def noise_impulses(n_bands: int) -> np.ndarray:
    """[bands, 2 * (bands - 1)]: ddsp's windowed causal FIR of each band alone (its zero-phase
    response shifted by half and Hann-windowed); a frame's FIR is its magnitudes @ these."""
    ir_size = 2 * (n_bands - 1)
    impulse = np.fft.irfft(np.eye(n_bands), n=ir_size)
    return np.roll(impulse, ir_size // 2, axis=-1) * periodic_hann(ir_size)


def noise_crop(n_bands: int) -> int:
    """Samples ddsp's FilteredNoise drops from the front of its overlap-added frames."""
    return (2 * (n_bands - 1) - 1) // 2 - 1


@functools.lru_cache(maxsize=8)
def noise_filter_matrix(n_bands: int, hop: int) -> tuple[np.ndarray, np.ndarray, int]:
    """G [bands, fft_size // 2 + 1] float32 and a phase ramp [fft_size // 2 + 1] complex64
    such that (mags @ G) * ramp is the spectrum of ddsp's windowed causal FIR for `mags`.
    That FIR is symmetric about its centre tap (a zero-phase response shifted by half,
    Hann-windowed, first tap zero), so its spectrum is real but for the shift's linear
    phase: a real matrix product, half the work of a complex one, with the ramp folded
    into the noise's spectra (nas.engine.synth.noise_spectra)."""
    causal = noise_impulses(n_bands)
    ir_size = causal.shape[1]
    # The linear convolution fits in hop + ir_size - 1 samples; a whole number of hops makes
    # overlap-add a reshape. ddsp rounds up to a power of two; the result is the same.
    fft_size = -(-(hop + ir_size - 1) // hop) * hop
    ramp = np.exp(-2j * np.pi * np.arange(fft_size // 2 + 1) * (ir_size // 2) / fft_size)
    gains = np.fft.rfft(causal, n=fft_size) * ramp.conj()  # imaginary parts ~1e-14 of the real
    return gains.real.astype(np.float32), ramp.astype(np.complex64), fft_size


@functools.lru_cache(maxsize=8)
def frame_spectra_matrix(n_bands: int, hop: int) -> np.ndarray:
    """[hop, 2 * bins] float32: a hop of samples, zero-padded to the filter's FFT size, to its
    rfft times the filter's phase ramp, real parts then imaginary: what
    nas.engine.synth.noise_spectra computes by FFT, as one matrix product for the TensorFlow
    model, where XLA's FFT of these short frames was slower."""
    _, ramp, fft_size = noise_filter_matrix(n_bands, hop)
    spectra = np.exp(-2j * np.pi * np.outer(np.arange(hop), np.arange(fft_size // 2 + 1)) / fft_size) * ramp
    return np.concatenate([spectra.real, spectra.imag], axis=1).astype(np.float32)
