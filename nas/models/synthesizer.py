"""The DDSP autoencoder without z-encoder: preprocess -> decoder -> harmonic + filtered
noise -> trainable reverb, with ddsp's own processors and spectral loss.

Preprocessing (ddsp's `F0LoudnessPreprocessor`: loudness recomputed from audio at the
control rate, f0 resampled, both scaled; or its `F0PowerPreprocessor`: the records' power
resampled) depends only on the data, so training applies it once per example in the
input pipeline (`preprocess`) rather than in every step.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from nas import ddsp_api

from ..config import POWER_FRAME_SIZE
from ..config.presets import LossConfig, ModelConfig
from ..constants import DB_RANGE
from ..spectrum import LOUDNESS_N_FFT, a_weighting, fast_size
from .decoders import build_decoder, input_keys
from .harmonic import harmonic_class
from .noise import filtered_noise_class

NOISE_WINDOW = 0  # ddsp's solo-instrument setting: the filter's full impulse response


def control_steps(config: ModelConfig, example_secs: float) -> int:
    """Decoder frames per example (ddsp's `time_steps`: 1000 per 4 s)."""
    return int(round(config.control_rate * example_secs))


def make_preprocessor(config: ModelConfig, sample_rate: int, example_secs: float):
    preprocessing = ddsp_api.preprocessing()
    if config.level == "power":  # the records' power_db (nas.data.power), resampled
        base, settings = preprocessing.F0PowerPreprocessor, {"frame_size": POWER_FRAME_SIZE}
    else:
        base, settings = preprocessing.F0LoudnessPreprocessor, {"compute_loudness": True}
    cls = aligned_preprocessor_class(base) if config.align_frames else base
    return cls(time_steps=control_steps(config, example_secs), frame_rate=config.control_rate,
               sample_rate=sample_rate, **settings)


def aligned_preprocessor_class(base):
    """`base`, one of ddsp's preprocessors, with centred tracks kept in time."""
    preprocessing = ddsp_api.preprocessing()

    class AlignedPreprocessor(base):
        """A ddsp preprocessor with centred tracks kept in time. ddsp's resample spreads n
        frames over the example as n equal segments (frame j at j / n of it): right for a
        track of secs * rate frames, but a centred one has one more (201 per 4 s at 50
        frames/s, the last at t = secs), so ddsp plays frame j at 0.995 j / rate: the synth
        gets each f0 up to 20 ms early, and on a vibrato the upper harmonics land bins off.
        A centred track is resampled onto a grid that runs one frame past the example and
        cut back, which puts every frame at its own time (as `nas transfer` does)."""

        def resample(self, x):
            x = preprocessing.at_least_3d(x)
            frames, secs = int(x.shape[1]), self.time_steps / self.frame_rate
            if not ((frames - 1) / secs).is_integer() or (frames / secs).is_integer():
                return super().resample(x)  # secs * rate frames: ddsp's resample is right
            steps = self.time_steps * frames / (frames - 1)
            if steps.is_integer():  # 201 frames over 1,005 steps: frame j at step 5 j
                return ddsp_api.ddsp().core.resample(x, int(steps))[:, :self.time_steps]
            return super().resample(x[:, :-1])  # frame j at its time; the last 1 / rate held

    return AlignedPreprocessor


def make_spectral_loss(config: LossConfig, sample_rate: int | None = None):
    """ddsp's multi-scale SpectralLoss (L1 of magnitudes and of log magnitudes), with the
    log magnitudes floored at `config.log_floor` and a loudness term where those are set
    (a loudness term needs the audio's `sample_rate`)."""
    losses = ddsp_api.losses()
    if config.overlap != 0.75:
        raise ValueError("ddsp's SpectralLoss uses 75% overlap")
    settings = dict(fft_sizes=config.fft_sizes, loss_type="L1", mag_weight=config.mag_weight,
                    logmag_weight=config.logmag_weight)
    if config.loudness_weight and (LOUDNESS_N_FFT not in config.fft_sizes or not sample_rate):
        raise ValueError(f"a loudness term needs the {LOUDNESS_N_FFT}-sample scale and the sample rate")
    if config.log_floor > 0 or config.loudness_weight:
        return spectral_loss_class()(config.log_floor, config.loudness_weight, sample_rate, **settings)
    return losses.SpectralLoss(**settings)


def spectral_loss_class():
    losses = ddsp_api.losses()

    class NasSpectralLoss(losses.SpectralLoss):
        """ddsp's SpectralLoss (its magnitude and log-magnitude L1 terms) with log magnitudes
        of max(magnitude, log_floor), and the L1 distance of A-weighted loudness (dB) on the
        LOUDNESS_N_FFT scale, weighted by `loudness_weight`.

        The floor: ddsp 3.7's safe_log keeps every positive magnitude, so the near-silent
        bins of rests and fades (3-4% of the demo's target bins were below 1e-5 before
        records format 4 made resampled silence zeros) cost nats each, and a bin's gradient
        grows as 1 / its magnitude. The loudness: that scale's Hann-windowed magnitudes are
        what nas's loudness feature takes (nas.data.loudness.spectra_loudness), so the term
        needs no transform of its own."""

        def __init__(self, log_floor: float, loudness_weight: float, sample_rate: int | None, **kwargs):
            super().__init__(**kwargs)
            self.log_floor = log_floor
            self.loudness_weight = loudness_weight
            self.a_weighting = (tf.constant(a_weighting(LOUDNESS_N_FFT, sample_rate), tf.float32)
                                if loudness_weight else None)

        def call(self, target_audio, audio):
            stft = ddsp_api.spectral_ops().stft  # the spectrum ddsp's compute_mag takes the magnitude of
            loss = 0.0
            for size in self.fft_sizes:
                target, spectrum = tf.abs(stft(target_audio, size)), stft(audio, size)
                loss += spectral_distance(spectrum, target, self.mag_weight, self.logmag_weight, self.log_floor)
                if self.loudness_weight and size == LOUDNESS_N_FFT:
                    loss += self.loudness_weight * losses.mean_difference(
                        self._loudness(target), self._loudness(tf.abs(spectrum)), "L1")
            return loss

        def _loudness(self, magnitudes):
            mean_power = tf.reduce_mean(tf.square(magnitudes) * self.a_weighting, axis=-1)
            return 10.0 * tf.math.log(tf.maximum(mean_power, 10.0 ** (-DB_RANGE / 10))) / math.log(10.0)

    return NasSpectralLoss


def spectral_distance(spectrum: tf.Tensor, target: tf.Tensor, mag_weight: float, logmag_weight: float,
                      log_floor: float) -> tf.Tensor:
    """ddsp's two L1 terms of one scale, mean |M - T| and mean |log max(M, floor) - log max(T, floor)|
    with M = |spectrum|, weighted, with their gradient with respect to the complex spectrum written
    out as one expression rather than autodiff's chain through abs, maximum, log and the means,
    each a pass over the spectrum (the loss alone, forward and backward: 94 -> 87 ms a batch)."""
    log_target = tf.math.log(tf.maximum(target, log_floor))
    count = tf.cast(tf.size(target), tf.float32)

    @tf.custom_gradient
    def distance(z):
        magnitude = tf.abs(z)
        over = magnitude - target
        log_over = tf.math.log(tf.maximum(magnitude, log_floor)) - log_target
        value = (mag_weight * tf.reduce_sum(tf.abs(over)) + logmag_weight * tf.reduce_sum(tf.abs(log_over))) / count

        def gradient(upstream):
            inverse = tf.math.divide_no_nan(1.0, magnitude)  # d|z|/dz = z / |z|, 0 at 0 as tf.abs has it
            d_magnitude = mag_weight * tf.sign(over) + logmag_weight * tf.where(
                magnitude >= log_floor, tf.sign(log_over) * inverse, 0.0)
            scale = upstream / count * d_magnitude * inverse
            return tf.complex(scale * tf.math.real(z), scale * tf.math.imag(z))

        return value, gradient

    return distance(spectrum)


def make_processors(config: ModelConfig, sample_rate: int, example_secs: float) -> dict:
    """ddsp's processors, with our equivalent signals: harmonic (nas.models.harmonic, unless
    `harmonic_synth` is ddsp's) and filtered noise (nas.models.noise)."""
    ddsp = ddsp_api.ddsp()
    n_samples = int(round(sample_rate * example_secs))
    harmonic = harmonic_class() if config.harmonic_synth == "matmul" else ddsp.synths.Harmonic
    return {
        "harmonic": harmonic(n_samples=n_samples, sample_rate=sample_rate, name="harmonic"),
        "noise": filtered_noise_class()(n_samples=n_samples, window_size=NOISE_WINDOW, name="filtered_noise"),
        "reverb": reverb_class()(trainable=True, reverb_length=config.reverb_length, scale=config.reverb_scale,
                                 name="reverb"),
    }


def reverb_class():
    effects = ddsp_api.effects()

    class Reverb(effects.Reverb):
        """`ddsp.effects.Reverb` (trainable) whose impulse response is `scale` times its
        variable: the same initial response (ddsp's normal of 1e-6), but Adam, which steps
        every variable by about the learning rate, moves the taps `scale` times slower."""

        def __init__(self, scale: float = 1.0, **kwargs):
            super().__init__(**kwargs)
            self.scale = scale

        def build(self, unused_input_shape):
            self.variable = self.add_weight(name="ir", shape=[self._reverb_length], dtype=tf.float32,
                                            initializer=tf.random_normal_initializer(stddev=1e-6 / self.scale))
            self.built = True

        @property
        def _ir(self):
            return self.variable * self.scale

        def get_controls(self, audio, ir=None):
            return {"audio": audio, "ir": self._ir[tf.newaxis]}  # one response for the batch

        def get_signal(self, audio, ir):
            """ddsp's signal (its FFT convolution cut to the input's length, no delay
            compensation, the response's first tap masked), with the response's FFT taken
            once for the batch (ddsp tiles the response and transforms each copy), at a fast
            size rather than ddsp's power of 2: 81,920 for the 79,999 samples of 4 s and
            16,000 taps, where ddsp takes 131,072 (two thirds of the time, forward and backward)."""
            ir = self._mask_dry_ir(ir)
            samples = int(audio.shape[-1])
            size = fast_size(samples + int(ir.shape[-1]) - 1)
            wet = tf.signal.irfft(tf.signal.rfft(audio, [size]) * tf.signal.rfft(ir, [size]), [size])[:, :samples]
            return wet + audio if self._add_dry else wet

    return Reverb


def preprocess(preprocessor, example: dict) -> dict:
    """One unbatched example (audio, f0_hz, loudness_db, power_db, ...) -> the decoder's inputs."""
    batched = {k: example[k][tf.newaxis] for k in (*preprocessor.input_keys, "audio")}  # audio: optional, unlisted
    with np.errstate(divide="ignore"):  # ddsp's A-weighting takes log10(0) at 0 Hz (a weight of 0)
        out = preprocessor(batched)
    renamed = {"pw_db": "power_db"}  # the records' name of ddsp's power output
    return {"audio": example["audio"], **{renamed.get(k, k): out[k][0] for k in preprocessor.output_keys}}


class Synthesizer(tf.keras.Model):
    """Decoder + DDSP synth. Call with preprocessed features; returns the controls and
    `audio_synth` [batch, samples]."""

    def __init__(self, config: ModelConfig, sample_rate: int, example_secs: float, input_stats: dict | None = None):
        """input_stats: the decoder's input statistics (`decoders.input_stats`), for
        `config.standardize_inputs`; without them the inputs go in as they are."""
        super().__init__(name="synthesizer")
        self.config = config
        self.sample_rate = sample_rate
        self.example_secs = example_secs
        self.decoder = build_decoder(config, input_stats)
        processors = make_processors(config, sample_rate, example_secs)
        self.harmonic, self.noise, self.reverb = processors["harmonic"], processors["noise"], processors["reverb"]

    def call(self, features: dict, training: bool = False) -> dict:
        controls = self.decoder(features)
        harmonic = self.harmonic(controls["amps"], controls["harmonic_distribution"], features["f0_hz"])
        noise = self.noise(controls["noise_magnitudes"])
        audio = self.reverb(harmonic + noise)
        return {**controls, "harmonic": harmonic, "noise": noise, "audio_synth": audio}

    def decoder_parameters(self) -> int:
        return int(sum(v.shape.num_elements() for v in self.decoder.trainable_variables))

    def build_variables(self) -> None:
        """Create the variables with one forward pass on constant controls."""
        frames = tf.ones([1, control_steps(self.config, self.example_secs), 1])
        self({"f0_hz": 440.0 * frames, **{key: 0.5 * frames for key in input_keys(self.config)}})
