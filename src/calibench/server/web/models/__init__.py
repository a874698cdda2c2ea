"""Models: upload, describe, download and delete ONNX models."""
