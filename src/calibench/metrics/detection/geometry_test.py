import numpy as np
import pytest
from PIL import Image

from calibench.data.annotations import SampleInfo
from calibench.data.preprocess import Preprocess
from calibench.errors import DatasetError
from calibench.metrics.detection.geometry import model_input_size, to_model_input, to_original

BOXES = np.array([[120, 60, 360, 300], [0, 0, 640, 480], [600.5, 10.25, 633.75, 20.5]])


@pytest.mark.parametrize(
    "preprocess",
    [
        None,
        Preprocess(resize=(416, 416)),
        Preprocess(resize=256),
        Preprocess(resize=256, crop=(224, 224)),
        Preprocess(crop=(400, 600)),
    ],
)
def test_round_trip_back_to_the_original_image(preprocess: Preprocess | None) -> None:
    info = SampleInfo(index=0, height=480, width=640, preprocess=preprocess)
    back = to_original(to_model_input(BOXES, info), info)
    np.testing.assert_allclose(back, BOXES, atol=1e-3)


def test_short_side_resize_and_centre_crop_by_hand() -> None:
    info = SampleInfo(
        index=0, height=480, width=640, preprocess=Preprocess(resize=256, crop=(224, 224))
    )
    # Resized to 256 x 341 (640 * 256 / 480 = 341.3), crop offsets top 16, left 58.
    assert model_input_size(info) == (224, 224)
    sx, sy = 341 / 640, 256 / 480
    expected = [120 * sx - 58, 60 * sy - 16, 360 * sx - 58, 300 * sy - 16]
    np.testing.assert_allclose(to_model_input(BOXES[:1], info)[0], expected, rtol=1e-6)
    # A box over the whole crop and beyond maps back clipped to the original image.
    back = to_original(np.array([[-100, -100, 500, 500]]), info)
    np.testing.assert_allclose(back, [[0, 0, 640, 480]])


def test_model_input_size() -> None:
    assert model_input_size(SampleInfo(0, height=480, width=640)) == (480, 640)
    assert model_input_size(SampleInfo(0)) is None
    assert model_input_size(
        SampleInfo(0, height=480, width=640, preprocess=Preprocess(resize=256))
    ) == (
        256,
        341,
    )
    exact = SampleInfo(0, height=480, width=640, preprocess=Preprocess(resize=(416, 320)))
    assert model_input_size(exact) == (416, 320)


def test_geometry_matches_what_preprocessing_does_to_an_image() -> None:
    # A white rectangle on black; find it in the preprocessed tensor.
    image = np.zeros((90, 130, 3), np.uint8)
    image[20:71, 30:101] = 255  # x 30..101, y 20..71 in pixel-edge coordinates
    for preprocess in (
        Preprocess(resize=(37, 53)),
        Preprocess(resize=60, crop=(48, 64)),
        Preprocess(crop=(64, 100)),
    ):
        info = SampleInfo(0, height=90, width=130, preprocess=preprocess)
        tensor = preprocess.apply(Image.fromarray(image))[0]
        rows = np.flatnonzero(tensor.max(axis=1) > 0.5)
        cols = np.flatnonzero(tensor.max(axis=0) > 0.5)
        seen = [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
        mapped = to_model_input(np.array([[30, 20, 101, 71]]), info)[0]
        np.testing.assert_allclose(mapped, seen, atol=1.0)
        assert tensor.shape == model_input_size(info)


def test_resize_needs_the_original_size() -> None:
    with pytest.raises(DatasetError, match="sample 7 does not record its original image size"):
        to_original(BOXES, SampleInfo(index=7, preprocess=Preprocess(resize=(416, 416))))
