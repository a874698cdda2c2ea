"""Compare: any two projects of one model side by side (FP32 with INT8, INT8 with INT8)."""
