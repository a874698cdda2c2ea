"""Reports: the per-layer table and the calibration report."""
