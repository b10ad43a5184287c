"""Decoders: (level, f0) frames -> synthesizer controls, as ddsp DictLayers.

Being ddsp DictLayers, the same decoder objects run in our synthesizer and inside
ddsp's own `Autoencoder` (the reference the benchmark compares against).
"""

from __future__ import annotations

from nas import ddsp_api
from nas.constants import LEVELS, NORMALIZE_EPS

from ..config.presets import ModelConfig
from ..store.artifacts import DatasetStatistics


def input_keys(config: ModelConfig) -> tuple[str, str]:
    """The decoder's inputs in order: the scaled level (ddsp's name for it), f0_scaled."""
    return LEVELS[config.level][1], "f0_scaled"


def output_splits(config: ModelConfig) -> tuple[tuple[str, int], ...]:
    return (("amps", 1), ("harmonic_distribution", config.n_harmonics), ("noise_magnitudes", config.n_noise_bands))


def _dilated_cnn_class():
    import tensorflow as tf

    nn = ddsp_api.nn()
    tfkl = tf.keras.layers

    class FrameNormalize(tfkl.Layer):
        """Each frame's channels to zero mean and unit variance, then a learnt scale and shift:
        ddsp's layer Normalize with the moments taken per frame, so no frame sees another."""

        def build(self, x_shape):
            channels = x_shape[-1]
            self.scale = self.add_weight(name="scale", shape=[channels], initializer=tf.ones_initializer())
            self.shift = self.add_weight(name="shift", shape=[channels], initializer=tf.zeros_initializer())
            super().build(x_shape)

        def call(self, x):
            mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
            return (x - mean) * tf.math.rsqrt(variance + NORMALIZE_EPS) * self.scale + self.shift

    def normalize(kind: str):
        return nn.Normalize("layer") if kind == "sequence" else FrameNormalize()

    class CausalResidual(tfkl.Layer):
        """ReLU6 -> causal left padding -> dilated conv (no bias) -> Normalize -> + input."""

        def __init__(self, channels: int, kernel_size: int, dilation: int, norm: str, **kwargs):
            super().__init__(**kwargs)
            self.pad = (kernel_size - 1) * dilation
            self.conv = tfkl.Conv1D(channels, kernel_size, dilation_rate=dilation, use_bias=False)
            self.norm = normalize(norm)

        def call(self, x):
            y = tf.pad(tf.nn.relu6(x), [[0, 0], [self.pad, 0], [0, 0]])
            return x + self.norm(self.conv(y))

    class DilatedCnnDecoder(nn.DictLayer):
        """DDSP-CNN-Tiny's decoder: causal input conv, stacks of dilated residual layers,
        (Normalize,) Dense head split into amplitudes / harmonics / noise bands."""

        def __init__(self, config: ModelConfig, input_stats: dict | None = None, **kwargs):
            splits = output_splits(config)
            super().__init__(input_keys=input_keys(config), output_keys=[k for k, _ in splits], **kwargs)
            self.splits = splits
            # (mean, std) per input, constants of the model; identity where not asked for or not given
            stats = input_stats if config.standardize_inputs and input_stats else {}
            self.standardize = [tuple(stats.get(key, (0.0, 1.0))) for key in self.input_keys]
            self.input_pad = config.kernel_size - 1
            self.input_conv = tfkl.Conv1D(config.channels, config.kernel_size, use_bias=False)
            self.residuals = [CausalResidual(config.channels, config.kernel_size, d, config.norm)
                              for _ in range(config.stacks) for d in config.dilations]
            self.out_norm = normalize(config.norm) if config.output_norm else None
            self.dense_out = tfkl.Dense(sum(n for _, n in splits))

        def call(self, *inputs, **unused_kwargs):
            x = tf.concat([(x - mean) / std for x, (mean, std) in zip(inputs, self.standardize)], axis=-1)
            x = self.input_conv(tf.pad(x, [[0, 0], [self.input_pad, 0], [0, 0]]))
            for layer in self.residuals:
                x = layer(x)
            if self.out_norm is not None:
                x = self.out_norm(x)
            return nn.split_to_dict(self.dense_out(x), self.splits)

    return DilatedCnnDecoder


def input_stats(statistics: DatasetStatistics) -> dict[str, tuple[float, float]]:
    """(mean, std) of ld_scaled, pw_scaled and f0_scaled over all frames, from a dataset's
    ddsp statistics (loudness and power in dB, pitch in MIDI), in the decoder's input scales."""
    preprocessing = ddsp_api.preprocessing()
    return {**{scaled: (statistics.of(name).mean / preprocessing.DB_RANGE + 1.0,
                        statistics.of(name).std / preprocessing.DB_RANGE)
               for name, scaled in (("loudness", "ld_scaled"), ("power", "pw_scaled"))},
            "f0_scaled": (statistics.pitch.mean / preprocessing.F0_RANGE,
                          statistics.pitch.std / preprocessing.F0_RANGE)}


def hold_input_stats_in_variables(decoder) -> None:
    """The decoder's input statistics as variables its graph reads, not constants in it: a
    compiled training step then holds no dataset's numbers, and the one XLA compiled and
    cached for a dataset serves the next with the same settings. Set past Keras' tracking,
    so checkpoints and saved weights are as before (the model summary keeps the statistics)."""
    import tensorflow as tf

    if getattr(decoder, "standardize", None):
        held = [tuple(tf.Variable(value, trainable=False, dtype=tf.float32) for value in pair)
                for pair in decoder.standardize]
        object.__setattr__(decoder, "standardize", held)


def build_decoder(config: ModelConfig, input_stats: dict | None = None):
    if config.decoder == "dilated-cnn":
        return _dilated_cnn_class()(config, input_stats, name="decoder")
    decoders = ddsp_api.decoders()
    return decoders.RnnFcDecoder(rnn_channels=config.rnn_units, rnn_type="gru", ch=config.fc_units,
                                 layers_per_stack=config.fc_layers, input_keys=input_keys(config),
                                 output_splits=output_splits(config), name="decoder")
