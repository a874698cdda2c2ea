"""Calibration: statistics, ranges, bias correction and the methods built from them."""
