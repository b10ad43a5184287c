"""A trained model's weights as a flat dict of NumPy arrays, named for `nas.engine`."""

from __future__ import annotations

import numpy as np


def _fc_stack(stack, prefix: str) -> dict:
    weights = {}
    for i, fc in enumerate(stack.layers):
        dense, norm = fc.layers[0], fc.layers[1]
        weights.update({f"{prefix}.fc{i}.dense.kernel": dense.kernel, f"{prefix}.fc{i}.dense.bias": dense.bias,
                        f"{prefix}.fc{i}.norm.gamma": norm.gamma, f"{prefix}.fc{i}.norm.beta": norm.beta})
    return weights


def engine_weights(model) -> dict[str, np.ndarray]:
    """model: a built `nas.models.synthesizer.Synthesizer`."""
    decoder = model.decoder
    if model.config.decoder == "dilated-cnn":
        weights = {"input_conv": decoder.input_conv.kernel,
                   "input.mean": np.array([float(m) for m, _ in decoder.standardize]),
                   "input.std": np.array([float(s) for _, s in decoder.standardize])}
        if decoder.out_norm is not None:
            weights.update({"out_norm.scale": decoder.out_norm.scale, "out_norm.shift": decoder.out_norm.shift})
        for i, layer in enumerate(decoder.residuals):
            weights.update({f"res{i}.conv": layer.conv.kernel, f"res{i}.scale": layer.norm.scale,
                            f"res{i}.shift": layer.norm.shift})
    else:
        cell = decoder.rnn.rnn.cell
        weights = {"gru.kernel": cell.kernel, "gru.recurrent": cell.recurrent_kernel, "gru.bias": cell.bias,
                   **_fc_stack(decoder.out_stack, "out")}
        for i, stack in enumerate(decoder.input_stacks):
            weights.update(_fc_stack(stack, f"in{i}"))
    weights.update({"dense_out.kernel": decoder.dense_out.kernel, "dense_out.bias": decoder.dense_out.bias,
                    "reverb.ir": model.reverb._ir})  # the response itself, whatever its scale
    arrays = {k: np.asarray(v if isinstance(v, np.ndarray) else v.numpy(), dtype=np.float32)
              for k, v in weights.items()}
    # ddsp's Normalize keeps [1, 1, 1, channels] scale/shift; the engine broadcasts [channels].
    return {k: v.reshape(-1) if k.endswith((".scale", ".shift")) else v for k, v in arrays.items()}
