"""Decompression bombs in image folders are unreadable images: skipped and counted."""

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from calibench.data.annotated import open_dataset
from calibench.data.images import ImageFolder, read_image
from calibench.data.importer import import_dataset
from calibench.data.preprocess import Preprocess


def _bomb_png(path: Path, width: int = 200_000, height: int = 200_000) -> Path:
    """A tiny PNG whose header declares a huge image (Pillow refuses it on open)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )
    return path


def _good(path: Path, size: tuple[int, int] = (10, 10)) -> Path:
    Image.new("RGB", size, (10, 20, 30)).save(path)
    return path


def test_a_bomb_png_in_an_image_folder_is_skipped_and_counted(tmp_path: Path) -> None:
    _good(tmp_path / "a.png")
    bomb = _bomb_png(tmp_path / "b.png")
    data = ImageFolder(tmp_path)
    data.bind("x", Preprocess(resize=(4, 4)))
    assert data[0] is not None
    assert data[1] is None and data.unreadable == [bomb]


def test_a_low_pixel_limit_makes_big_images_unreadable_in_both_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    _good(folder / "a.png")
    big = _good(folder / "b.png", (64, 64))
    imported = import_dataset(folder, tmp_path / "ws", kind="not-annotated").path
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 2× this is an error, not a warning
    plain = ImageFolder(folder)
    plain.bind("x", Preprocess(resize=(4, 4)))
    assert plain[0] is not None and plain[1] is None and plain.unreadable == [big]
    again = open_dataset(imported)
    again.bind("x", Preprocess(resize=(4, 4)))
    assert again[0] is not None and again[1] is None and len(again.unreadable) == 1


def test_read_image_refuses_a_bomb_with_none(tmp_path: Path) -> None:
    assert read_image(_bomb_png(tmp_path / "b.png"), Preprocess(resize=(4, 4))) is None
    tensor = read_image(_good(tmp_path / "a.png"), Preprocess(resize=(4, 4)))
    assert tensor is not None and tensor.shape == (3, 4, 4)
