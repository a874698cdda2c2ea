"""The AccuracyAware method: the fastest INT8 model whose accuracy drop stays within a maximum.

It starts from the Default method's model (same statistics, no second collection) and, while
the drop is too large, sends the layers that cost the most accuracy back to FP32:

1. FP32 is evaluated once on the validation samples; its outputs are kept, so every later
   candidate is compared with them without running FP32 again.
2. Ranking: on the validation samples where INT8 strays furthest from FP32 (the ranking
   subset), each INT8 layer is reverted alone and the fall in output divergence measured.
   Layers within a few percent of each other are ordered by what their revert costs in time
   (measured by speed-aware placement, ``speed``), so the layers INT8 speeds up most stay INT8.
3. Reverting: the top 1, 2, 4, 8 … layers of the ranking are tried on the whole validation set
   until the drop is met, then the count is bisected down to the fewest layers that meet it.
   If every ranked layer fails, the best prefix is kept and the rest ranked again.
4. The model returned is evaluated once more at the end: its accuracy, not an estimate, is what
   the report states, and the guarantee ``accuracy ≥ FP32 − max drop`` is checked on it. If the
   target cannot be met the best model found is kept and the report says so.
5. Speed: a candidate estimated, or timed, no faster than FP32 is never evaluated; the returned
   model is timed against FP32 and the report says "keep FP32" when that is the truth.
"""

from calibench.calibration.accuracy_aware.method import AccuracyAwareOutcome, run_accuracy_aware
from calibench.calibration.accuracy_aware.search import Iteration

__all__ = ["AccuracyAwareOutcome", "Iteration", "run_accuracy_aware"]
