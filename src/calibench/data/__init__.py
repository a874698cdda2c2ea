"""Calibration data: where samples come from and how they become model inputs."""

from calibench.data.dataset import Dataset, select_subset
from calibench.data.images import ImageFolder
from calibench.data.npz import NpzDataset
from calibench.data.open import as_dataset
from calibench.data.preprocess import Preprocess

__all__ = ["Dataset", "ImageFolder", "NpzDataset", "Preprocess", "as_dataset", "select_subset"]
