"""Projects: a model × a dataset × a target, their INT8 calibration and comparison."""
