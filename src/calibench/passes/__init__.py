"""Graph passes over ``onnx_ir`` models, one rule per module.

``prepare`` (FoldBatchNormPass and onnx_ir's clean-ups, then ``placement``) readies the FP32
model; ``insert_qdq`` writes the INT8 model; ``add_reduction_outputs`` and ``add_bias_twins``
build the measuring copies that statistics and bias correction run. Producers and readers come
from onnx_ir's own links (``Value.producer()``, ``Value.uses()``); the shared node shapes from
``_build``; the numbers from ``calibench.quant``.
"""
