"""Graph passes over ``onnx_ir`` models, one rule per module."""
