"""Exports of a trained model: ONNX, TFLite, int8 ONNX, and the engine's weights (target
`nas`); or one `.tflite` for the DDSP-VST plugin (target `ddsp-vst`)."""

TARGETS = ("nas", "ddsp-vst")
