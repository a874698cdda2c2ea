"""The workflow around calibration: baseline and INT8 inference, accuracy, performance."""
