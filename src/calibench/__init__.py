"""calibench: FP32 ONNX → fast INT8 ONNX for ONNX Runtime on the CPU.

>>> import calibench
>>> result = calibench.calibrate("model.onnx", "images/", preset="mixed", subset="10%")
>>> result.save("model-int8.onnx")
>>> print(result.report)
"""

from calibench.api import CalibrationResult, calibrate
from calibench.calibration.distributed.options import RayShards
from calibench.config import CalibrationConfig, Method, Placement, Preset, RangeEstimator, Subset
from calibench.data.preprocess import Preprocess
from calibench.errors import CalibenchError

__all__ = [
    "CalibenchError",
    "CalibrationConfig",
    "CalibrationResult",
    "Method",
    "Placement",
    "Preprocess",
    "Preset",
    "RangeEstimator",
    "RayShards",
    "Subset",
    "calibrate",
]
__version__ = "0.1.0"
