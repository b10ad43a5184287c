"""CREPE as nas runs it, offline and live: the same network and weights as `network`, built
as an ONNX graph (no TensorFlow, no conversion) and run by ONNX Runtime.

A live block tracks one frame at a time, where TensorFlow's per-call overhead dominates:
with ONNX Runtime the live features take about half their time with TensorFlow's network
(89.7 against 172.7 ms per second of audio, benchmarks/streaming.py). Offline, batches run
at least as fast as in TensorFlow, without its import and its first call's tracing (about 4 s
of CPU each), so a dataset's features load no TensorFlow: Beam's workers never import it.
"""

from __future__ import annotations

import functools

import numpy as np

from nas.constants import OPSET

from . import FRAME_SIZE
from .weights import folded_weights



def graph(capacity: str) -> bytes:
    """The ONNX model: frames [n, 1024] -> activations [n, 360]."""
    from onnx import TensorProto, helper, numpy_helper

    blocks, (dense_kernel, dense_bias) = folded_weights(capacity)
    nodes, constants = [], []

    def constant(name: str, value: np.ndarray) -> str:
        constants.append(numpy_helper.from_array(value, name))
        return name

    nodes.append(helper.make_node("Unsqueeze", ["frames", constant("channel_axis", np.array([1]))], ["x0"]))
    x = "x0"  # [n, channels, time]: ONNX's layout
    for i, (kernel, bias, scale, shift, stride) in enumerate(blocks, start=1):
        weight = constant(f"conv{i}.w", np.ascontiguousarray(kernel.transpose(2, 1, 0)))  # [out, in, width]
        # TensorFlow's "SAME" puts the odd padding sample at the end, as SAME_UPPER does.
        nodes += [
            helper.make_node("Conv", [x, weight, constant(f"conv{i}.b", bias)], [f"conv{i}"], auto_pad="SAME_UPPER",
                             strides=[stride]),
            helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]),
            helper.make_node("Mul", [f"relu{i}", constant(f"bn{i}.scale", scale[:, None])], [f"scaled{i}"]),
            helper.make_node("Add", [f"scaled{i}", constant(f"bn{i}.shift", shift[:, None])], [f"bn{i}"]),
            helper.make_node("MaxPool", [f"bn{i}"], [f"pool{i}"], kernel_shape=[2], strides=[2]),
        ]
        x = f"pool{i}"
    nodes += [  # flattened time-major, as the original's Permute + Flatten
        helper.make_node("Transpose", [x], ["time_major"], perm=[0, 2, 1]),
        helper.make_node("Reshape", ["time_major", constant("flat_shape", np.array([0, -1]))], ["flat"]),
        helper.make_node("MatMul", ["flat", constant("dense.w", dense_kernel)], ["logits_w"]),
        helper.make_node("Add", ["logits_w", constant("dense.b", dense_bias)], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["activations"]),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, f"crepe_{capacity}",
                          [helper.make_tensor_value_info("frames", TensorProto.FLOAT, ["n", FRAME_SIZE])],
                          [helper.make_tensor_value_info("activations", TensorProto.FLOAT, ["n", dense_bias.size])],
                          constants),
        opset_imports=[helper.make_opsetid("", OPSET)])
    return model.SerializeToString()


class OnnxNetwork:
    """frames [n, 1024] (normalised) -> activations [n, 360], NumPy in and out. `threads`:
    ONNX Runtime's for one call, 0 for its default (a thread per core)."""

    def __init__(self, capacity: str = "tiny", threads: int = 0):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(graph(capacity), options, providers=["CPUExecutionProvider"])

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"frames": np.asarray(frames, np.float32)})[0]


@functools.lru_cache(maxsize=None)
def load_onnx_network(capacity: str, threads: int = 0) -> OnnxNetwork:
    """One session per capacity and threads per process: the weights are read once."""
    return OnnxNetwork(capacity, threads)
