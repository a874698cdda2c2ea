"""Model intake: reading ONNX files, checking that INT8 calibration may take them."""

from calibench.model.eligibility import check_eligible
from calibench.model.load import load_model, save_model

__all__ = ["check_eligible", "load_model", "save_model"]
