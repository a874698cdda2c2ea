"""Accuracy metrics: built-in classification and detection metrics, and custom ones."""
