"""Exports of a trained model: ONNX, TFLite, int8 ONNX, and the engine's weights (target
`nas`); one `.tflite` for the DDSP-VST plugin (`ddsp-vst`); a `.nm` for Neutone FX (`neutone`)."""

TARGETS = ("nas", "ddsp-vst", "neutone")
