"""The decoders in NumPy, from exported weights: the same arithmetic as the Keras layers.

Weights are a flat dict of arrays named by `nas.models.weights` (e.g. `res3.conv`,
`in0.fc1.dense.kernel`). ddsp's `Normalize("layer")` (norm `sequence`) pools over time and
channels of the whole sequence; norm `frame` and Keras' LayerNormalization (in ddsp's Fc
stacks) over channels per frame.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from nas.config.presets import ModelConfig
from nas.constants import NORMALIZE_EPS

LAYER_NORM_EPS = 1e-3  # tf.keras.layers.LayerNormalization's default
LEAKY_SLOPE = 0.2  # tf.nn.leaky_relu's default


def _normalize(x: np.ndarray, scale: np.ndarray, shift: np.ndarray, per_frame: bool) -> np.ndarray:
    """x [frames, channels]: moments of each frame (`frame`) or of the whole sequence."""
    axis = -1 if per_frame else None
    mean = x.mean(axis=axis, keepdims=per_frame)
    x = (x - mean) / np.sqrt(x.var(axis=axis, keepdims=per_frame) + NORMALIZE_EPS)
    return x * scale + shift


def _causal_conv(x: np.ndarray, kernel: np.ndarray, dilation: int) -> np.ndarray:
    """x [frames, in], kernel [taps, in, out] -> [frames, out], left-padded (causal)."""
    taps = kernel.shape[0]
    pad = (taps - 1) * dilation
    padded = np.concatenate([np.zeros((pad, x.shape[1]), x.dtype), x])
    frames = len(x)
    out = padded[:frames] @ kernel[0]
    for t in range(1, taps):
        out += padded[t * dilation:t * dilation + frames] @ kernel[t]
    return out


@numba.njit(fastmath=True)
def _axpy(out, x, w):  # pragma: no cover - compiled
    # A function of its own: inside the layer loop Numba does not vectorise this loop.
    for t in range(out.shape[0]):
        out[t] += w * x[t]


@numba.njit(fastmath=True)
def _frame_norm_add(x, y, scales, shifts):  # pragma: no cover - compiled
    """x [channels, frames] += frame-normalised y, moments over each frame's channels."""
    channels, frames = x.shape
    mean = np.zeros(frames, dtype=np.float32)
    squares = np.zeros(frames, dtype=np.float32)
    for o in range(channels):
        for t in range(frames):
            mean[t] += y[o, t]
    mean /= channels
    for o in range(channels):
        for t in range(frames):
            d = y[o, t] - mean[t]
            squares[t] += d * d
    for t in range(frames):
        squares[t] = 1.0 / math.sqrt(squares[t] / channels + NORMALIZE_EPS)
    for o in range(channels):
        for t in range(frames):
            x[o, t] += (y[o, t] - mean[t]) * squares[t] * scales[o] + shifts[o]


@numba.njit(cache=True, fastmath=True)
def _residual_stack(x, kernels, scales, shifts, dilations, per_frame):  # pragma: no cover - compiled
    """x [channels, frames] += norm(conv(relu6(x))) for each layer, in place. Channel-major
    so every inner loop is a contiguous multiply-add over frames."""
    channels, frames = x.shape
    taps = kernels.shape[1]
    relu = np.empty_like(x)
    y = np.empty_like(x)
    for layer in range(kernels.shape[0]):
        for c in range(channels):
            for t in range(frames):
                relu[c, t] = min(max(x[c, t], np.float32(0.0)), np.float32(6.0))
        for o in range(channels):
            y[o, :] = 0.0
            for tap in range(taps):
                shift = (taps - 1 - tap) * dilations[layer]
                for i in range(channels):
                    _axpy(y[o, shift:], relu[i, :frames - shift], kernels[layer, tap, i, o])
        if per_frame:
            _frame_norm_add(x, y, scales[layer], shifts[layer])
            continue
        total = 0.0
        squares = 0.0
        for o in range(channels):
            for t in range(frames):
                total += y[o, t]
                squares += y[o, t] * y[o, t]
        count = channels * frames
        mean = total / count
        inv = 1.0 / math.sqrt(max(squares / count - mean * mean, 0.0) + NORMALIZE_EPS)
        for o in range(channels):
            scale = np.float32(inv * scales[layer, o])
            offset = np.float32(shifts[layer, o] - mean * inv * scales[layer, o])
            for t in range(frames):
                x[o, t] += y[o, t] * scale + offset


FUSED_MAX_CHANNELS = 32  # measured: 6x faster than NumPy at 8 channels, 2x slower than BLAS at 128


class CnnDecoder:
    """DDSP-CNN-Tiny's decoder (nas.models.decoders.DilatedCnnDecoder)."""

    def __init__(self, weights: dict, dilations: list[int], norm: str = "sequence"):
        self.w = weights
        # the arrays around the residual stack, by role (models from before the inputs were
        # standardised have no input moments; the presets have no output norm)
        self.input_moments = (weights["input.mean"], weights["input.std"]) if "input.mean" in weights else None
        self.input_conv = weights["input_conv"]
        self.out_norm = (weights["out_norm.scale"], weights["out_norm.shift"]) if "out_norm.scale" in weights else None
        self.dense = weights["dense_out.kernel"], weights["dense_out.bias"]
        self.per_frame = norm == "frame"
        self.dilations = np.asarray(dilations)
        layers = range(len(dilations))
        self.kernels = np.stack([weights[f"res{i}.conv"] for i in layers])
        self.scales = np.stack([weights[f"res{i}.scale"] for i in layers])
        self.shifts = np.stack([weights[f"res{i}.shift"] for i in layers])
        self.fused = self.kernels.shape[-1] <= FUSED_MAX_CHANNELS

    def __call__(self, ld_scaled: np.ndarray, f0_scaled: np.ndarray) -> np.ndarray:
        w = self.w
        x = np.stack([ld_scaled, f0_scaled], axis=-1).astype(np.float32)
        if self.input_moments:
            x = (x - self.input_moments[0]) / self.input_moments[1]
        x = _causal_conv(x, self.input_conv, 1)
        if self.fused:
            channel_major = np.ascontiguousarray(x.T)
            _residual_stack(channel_major, self.kernels, self.scales, self.shifts, self.dilations, self.per_frame)
            x = channel_major.T
        else:
            for i, dilation in enumerate(self.dilations.tolist()):
                y = _causal_conv(np.clip(x, 0.0, 6.0), w[f"res{i}.conv"], dilation)
                x = x + _normalize(y, w[f"res{i}.scale"], w[f"res{i}.shift"], self.per_frame)
        if self.out_norm:
            x = _normalize(x, *self.out_norm, self.per_frame)
        return x @ self.dense[0] + self.dense[1]


def _fc_stack(x: np.ndarray, w: dict, prefix: str, layers: int) -> np.ndarray:
    for i in range(layers):
        p = f"{prefix}.fc{i}"
        x = x @ w[f"{p}.dense.kernel"] + w[f"{p}.dense.bias"]
        mean = x.mean(axis=-1, keepdims=True)
        x = (x - mean) / np.sqrt(x.var(axis=-1, keepdims=True) + LAYER_NORM_EPS)
        x = x * w[f"{p}.norm.gamma"] + w[f"{p}.norm.beta"]
        x = np.where(x > 0, x, LEAKY_SLOPE * x)
    return x


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def gru(x: np.ndarray, kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Keras GRU (reset_after=True, gates z, r, h), zero initial state: [frames, in] -> [frames, units]."""
    units = recurrent.shape[0]
    inputs = x @ kernel + bias[0]  # every frame's input projections at once
    h = np.zeros(units, dtype=np.float32)
    out = np.empty((len(x), units), dtype=np.float32)
    for t in range(len(x)):
        hidden = h @ recurrent + bias[1]
        z = _sigmoid(inputs[t, :units] + hidden[:units])
        r = _sigmoid(inputs[t, units:2 * units] + hidden[units:2 * units])
        candidate = np.tanh(inputs[t, 2 * units:] + r * hidden[2 * units:])
        h = z * h + (1.0 - z) * candidate
        out[t] = h
    return out


class RnnFcDecoder:
    """ddsp's RnnFcDecoder (GRU) as the `full` and `rnn-tiny` presets build it."""

    def __init__(self, weights: dict, fc_layers: int):
        self.w = weights
        self.layers = fc_layers

    def __call__(self, ld_scaled: np.ndarray, f0_scaled: np.ndarray) -> np.ndarray:
        w = self.w
        stacks = [_fc_stack(x[:, None].astype(np.float32), w, f"in{i}", self.layers)
                  for i, x in enumerate((ld_scaled, f0_scaled))]
        x = gru(np.concatenate(stacks, axis=-1), w["gru.kernel"], w["gru.recurrent"], w["gru.bias"])
        x = _fc_stack(np.concatenate(stacks + [x], axis=-1), w, "out", self.layers)
        return x @ w["dense_out.kernel"] + w["dense_out.bias"]


def build(config: ModelConfig, weights: dict):
    """A decoder for a model's config (model.json's `model`) and its weights."""
    if config.decoder == "dilated-cnn":
        return CnnDecoder(weights, list(config.dilations) * config.stacks, config.norm)
    return RnnFcDecoder(weights, config.fc_layers)
