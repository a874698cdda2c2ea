"""Everything that talks to ONNX Runtime."""
