"""Exports of a trained model: ONNX, TFLite, int8 ONNX, and the engine's weights."""
