from __future__ import annotations

import pytest

from calibench.errors import DatasetError
from calibench.model.compatibility import (
    ArrayLayout,
    DatasetLayout,
    ImageSettings,
    ModelInput,
    check_compatible,
    incompatibility,
)

PHOTOS = DatasetLayout("photos", image_sizes=((28, 28), (28, 28)))
MIXED = DatasetLayout("mixed", image_sizes=((20, 30), (400, 500)))
CNN = [ModelInput("input", ("batch", 1, 28, 28))]
NLP = [
    ModelInput("input_ids", ("batch", 16), "i"),
    ModelInput("attention_mask", ("batch", 16), "i"),
]


def tensors(**arrays: tuple[tuple[int, ...], str]) -> DatasetLayout:
    return DatasetLayout("tensors", {k: ArrayLayout(s, d) for k, (s, d) in arrays.items()})


def test_a_cnn_and_its_images_fit() -> None:
    assert incompatibility("cnn", CNN, PHOTOS) is None
    nhwc = [ModelInput("x", (1, 224, 224, 3))]
    assert incompatibility("cnn", nhwc, MIXED) is None  # resized to the fixed size


def test_images_cannot_feed_token_ids() -> None:
    reason = incompatibility("'tiny nlp'", NLP, PHOTOS, nlp=True)
    assert reason is not None
    assert "'tiny nlp' takes input_ids, attention_mask as token ids: an NLP model" in reason
    assert "'photos' holds images" in reason and ".npz" in reason
    with pytest.raises(DatasetError, match="NLP model"):
        check_compatible("'tiny nlp'", NLP, PHOTOS, nlp=True)


def test_images_feed_a_single_input_only() -> None:
    two = [ModelInput("a", (1, 3, 8, 8)), ModelInput("b", (1, 3, 8, 8))]
    reason = incompatibility("m", two, PHOTOS)
    assert reason is not None and "m has 2 inputs (a, b)" in reason


def test_images_need_a_four_dimensional_input() -> None:
    reason = incompatibility("mlp", [ModelInput("x", ("n", 784))], PHOTOS)
    assert reason is not None and "shape [n, 784]" in reason and "4 dimensions" in reason


def test_images_fill_one_or_three_channels() -> None:
    reason = incompatibility("m", [ModelInput("x", (1, 4, 32, 32))], PHOTOS)
    assert reason is not None and "takes 4 channels" in reason


def test_a_crop_or_exact_resize_that_misses_the_input_size_is_refused() -> None:
    net = [ModelInput("x", (1, 3, 224, 224))]
    crop = incompatibility("m", net, MIXED, ImageSettings(resize=256, crop=(200, 200)))
    assert crop is not None and "200×200" in crop and "224×224" in crop
    # A short-side resize fits square images; each sample is checked when it is read.
    assert incompatibility("m", net, MIXED, ImageSettings(resize=224)) is None
    assert incompatibility("m", net, MIXED, ImageSettings(resize=256, crop=(224, 224))) is None


def test_images_of_many_sizes_need_one_size_to_batch() -> None:
    free = [ModelInput("x", ("n", 3, "h", "w"))]
    reason = incompatibility("det", free, MIXED, ImageSettings(batch=4))
    assert reason is not None and "20×30 to 400×500" in reason and "batch of 4" in reason
    assert incompatibility("det", free, MIXED, ImageSettings(batch=1)) is None
    assert incompatibility("det", free, MIXED, ImageSettings(resize=(64, 64), batch=4)) is None


def test_tensor_datasets_need_an_array_per_input() -> None:
    reason = incompatibility("nlp", NLP, tensors(input_ids=((10, 16), "int64")))
    assert reason is not None
    assert "needs an array named 'attention_mask'" in reason and "holds input_ids" in reason
    both = tensors(input_ids=((10, 16), "int64"), attention_mask=((10, 16), "int64"))
    assert incompatibility("nlp", NLP, both) is None


def test_tensor_shapes_and_kinds_must_match() -> None:
    wrong_length = incompatibility("cnn", CNN, tensors(input=((5, 1, 32, 32), "float32")))
    assert wrong_length is not None and "samples of shape [1, 32, 32]" in wrong_length
    wrong_rank = incompatibility("cnn", CNN, tensors(input=((5, 784), "float32")))
    assert wrong_rank is not None and "needs 3 dimensions" in wrong_rank
    ints = incompatibility("cnn", CNN, tensors(input=((5, 1, 28, 28), "uint8")))
    assert ints is not None and "takes floating-point numbers" in ints and "uint8" in ints
    own_batch_axis = tensors(input=((5, 1, 1, 28, 28), "float64"))
    assert incompatibility("cnn", CNN, own_batch_axis) is None
