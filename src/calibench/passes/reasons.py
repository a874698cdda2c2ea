"""Why a layer is not an INT8 layer of its own: a code for programs, words for people.

Every decision in ``placement`` that keeps a layer in FP32 (or folds it into another layer's
kernel) sets one of these codes together with the sentence the layer report shows. Code that
reacts to a decision (reverting layers, the reports) compares codes; the words are only shown,
and are what calibench stores in the models it writes.
"""

from __future__ import annotations

from enum import Enum


class Reason(str, Enum):
    CUSTOM_DOMAIN = "custom-domain"
    """An op outside the standard ONNX domain."""
    MOVES_DATA = "moves-data"
    """A data-movement op: it runs on uint8 when its input is quantized, no layer of its own."""
    KEPT_FP32_OP = "kept-fp32-op"
    """An op calibench always keeps in FP32 (``ops.KEPT_FP32_REASONS``)."""
    NO_INT8_KERNEL = "no-int8-kernel"
    """ONNX Runtime's CPU provider has no INT8 kernel for the op."""
    NON_FLOAT_INPUTS = "non-float-inputs"
    UNSUPPORTED_WEIGHTS = "unsupported-weights"
    """Weights computed at run time, a missing second input, a rank or attribute ORT cannot fuse."""
    OUTPUT_DECODING = "output-decoding"
    """Cheap ops between the last weighted layer and the outputs (a detector's decoding)."""
    CONSTANT_INPUTS = "constant-inputs"
    FOLDED = "folded"
    """A ReLU/Clip absorbed by the output quantizer of the layer before it (``plan.folded``)."""
    CONCAT_RANGES = "concat-ranges"
    """A Concat whose inputs' ranges differ too much for one scale."""
    KEPT_BY_USER = "kept-by-user"
    """Named by ``--keep-fp32``."""
    REVERTED = "reverted"
    """Reverted to FP32 by a method (AccuracyAware, sensitivity)."""
    READS_REVERTED = "reads-reverted"
    """Reads the output of a layer kept or reverted to FP32, so it cannot stay INT8 either."""
    FOLLOWS_REVERTED = "follows-reverted"
    """Was folded into a layer that went back to FP32."""
    MEASURED_SLOWER = "measured-slower"
    """Timed on this machine (``--placement measured``): INT8, with the conversions it adds, ran
    no faster than FP32 at the project's batch size and threads."""
