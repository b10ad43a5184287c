"""Exports of a trained model: ONNX, TFLite, int8 ONNX, and the engine's weights (target
`nas`); the plugins' (`ddsp-vst`, `neutone`) are playing's (`nas.play`)."""

TARGETS = ("nas", "ddsp-vst", "neutone")
