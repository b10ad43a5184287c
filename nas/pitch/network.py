"""The CREPE network (Kim et al., 2018) in TensorFlow, with the original weights.

The weights (`weights`): six blocks of conv (ReLU) -> batch norm -> max-pool(2), then a
dense sigmoid over 360 pitch bins (20 cents apart). Dropout is inference-time identity
and is left out. nas runs the same network in ONNX Runtime (`onnx_network`); this one is
what ddsp's in-graph CREPE builds (`nas.crepe_compat.core`).
"""

from __future__ import annotations

import functools

import tensorflow as tf

from . import FRAME_SIZE
from .weights import folded_weights


class CrepeNetwork(tf.Module):
    """Frames of 1024 samples at 16 kHz (normalised) -> 360 bin activations."""

    def __init__(self, capacity: str = "full"):
        super().__init__(name=f"crepe_{capacity}")
        self.capacity = capacity
        blocks, (dense_kernel, dense_bias) = folded_weights(capacity)
        self._blocks = [(tf.constant(kernel), tf.constant(bias), tf.constant(scale), tf.constant(shift), stride)
                        for kernel, bias, scale, shift, stride in blocks]
        self._dense_kernel = tf.constant(dense_kernel)
        self._dense_bias = tf.constant(dense_bias)

    @tf.function(input_signature=[tf.TensorSpec([None, FRAME_SIZE], tf.float32)], autograph=False)
    def __call__(self, frames: tf.Tensor) -> tf.Tensor:
        x = frames[:, :, tf.newaxis]
        for kernel, bias, scale, shift, stride in self._blocks:
            x = tf.nn.relu(tf.nn.conv1d(x, kernel, stride=stride, padding="SAME") + bias)
            x = tf.nn.max_pool1d(x * scale + shift, ksize=2, strides=2, padding="VALID")
        # The original Permute((2, 1, 3)) only moves a unit axis: flatten is time-major.
        x = tf.reshape(x, [tf.shape(x)[0], -1])
        return tf.sigmoid(tf.matmul(x, self._dense_kernel) + self._dense_bias)


@functools.lru_cache(maxsize=None)
def load_network(capacity: str) -> CrepeNetwork:
    """One network per capacity per process: weights are read once per worker."""
    return CrepeNetwork(capacity)
