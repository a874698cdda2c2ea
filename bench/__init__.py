"""calibench's benchmark against its peers (ONNX Runtime's quantize_static, NNCF).

``python -m bench.run`` builds the zoo models, calibrates each with every quantizer in a fresh
subprocess, times FP32 and INT8 interleaved, measures quality, and writes ``bench/RESULTS.md``
and ``bench/results.json``. Dev-only: nothing in ``calibench`` imports this package.
"""
