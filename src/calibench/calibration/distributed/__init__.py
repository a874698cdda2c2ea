"""The passes of one calibration split over a Ray cluster (``executor=`` / ``--ray``).

Two passes split over data: the statistics over shards of the calibration set (tasks whose
statistics merge exactly, ``calibration.statistics``), and AccuracyAware's evaluations over
shards of the validation set (actors that each hold an ONNX Runtime session, their shard and
FP32's outputs for it). The result is the local run's, bit for bit.

Ray is optional: nothing here imports it at module level except the modules that only
:func:`connect` reaches, and :mod:`.options` (what the API and the CLI take) needs nothing.
"""
