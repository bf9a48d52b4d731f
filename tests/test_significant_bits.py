"""12-bit data in 16-bit files: a PNG's sBIT chunk and a TIFF's BitsPerSample, SMaxSampleValue or
MaxSampleValue set the full scale (4095, not 65535: otherwise the x-ray reads 16 times too
transparent); a file that says nothing keeps its container's full scale."""
from __future__ import annotations

import zlib
from pathlib import Path
from types import SimpleNamespace

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from xtomo.data import formats, io

RNG = np.random.default_rng(12)
TWELVE = RNG.integers(0, 4096, (24, 20)).astype(np.uint16)   # raw 12-bit values
TWELVE[0, 0], TWELVE[1, 1] = 4095, 7                          # the full range, not multiples of 16


def with_chunk(png: bytes, kind: bytes, data: bytes) -> bytes:
    """``png`` with a chunk inserted after IHDR (8-byte signature + 25-byte IHDR)."""
    chunk = len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    return png[:33] + chunk + png[33:]


def png(path: Path, values: np.ndarray, sbit: int | None) -> Path:
    iio.imwrite(path, values, extension=".png")
    if sbit is not None:
        path.write_bytes(with_chunk(path.read_bytes(), b"sBIT", bytes([sbit])))
    return path


def tiff_12bit(path: Path, values: np.ndarray) -> Path:
    """A baseline TIFF with BitsPerSample 12, packed MSB first (tifffile cannot write one)."""
    rows, cols = values.shape
    assert cols % 2 == 0
    a, b = values[:, 0::2].astype(np.uint32), values[:, 1::2].astype(np.uint32)
    packed = np.stack([a >> 4, ((a & 15) << 4) | (b >> 8), b & 255], axis=-1).astype(np.uint8).tobytes()
    tags = [(256, 3, cols), (257, 3, rows), (258, 3, 12), (259, 3, 1), (262, 3, 1), (273, 4, 8 + 2 + 9 * 12 + 4),
            (277, 3, 1), (278, 3, rows), (279, 4, len(packed))]
    ifd = len(tags).to_bytes(2, "little") + b"".join(
        code.to_bytes(2, "little") + kind.to_bytes(2, "little") + (1).to_bytes(4, "little")
        + value.to_bytes(4, "little") for code, kind, value in tags) + (0).to_bytes(4, "little")
    path.write_bytes(b"II*\0" + (8).to_bytes(4, "little") + ifd + packed)
    return path


def full_scale(path: Path) -> float:
    return formats.read_radiograph(path)[1]


def test_a_12_bit_png_with_sbit_reads_at_full_scale_4095(tmp_path):
    path = png(tmp_path / "x12.png", TWELVE, sbit=12)
    assert full_scale(path) == 4095
    alpha = io.load_xray(path).numpy()
    np.testing.assert_allclose(alpha, 1 - TWELVE / 4095, atol=1e-6)
    assert alpha.min() == 0   # the brightest pixel is fully opaque, not 1/16 of it


def test_without_sbit_the_container_sets_the_scale(tmp_path):
    path = png(tmp_path / "x16.png", TWELVE, sbit=None)
    assert full_scale(path) == 65535
    np.testing.assert_allclose(io.load_xray(path).numpy(), 1 - TWELVE / 65535, atol=1e-6)


def test_values_scaled_up_to_16_bits_as_the_png_specification_asks(tmp_path):
    """sBIT with values already scaled to 16 bits (left bit replication): full scale 65535, and
    the same image as the raw 12-bit file."""
    scaled = (TWELVE << 4) | (TWELVE >> 8)
    path = png(tmp_path / "scaled.png", scaled, sbit=12)
    assert full_scale(path) == 65535
    raw = io.load_xray(png(tmp_path / "raw.png", TWELVE, sbit=12)).numpy()
    np.testing.assert_allclose(io.load_xray(path).numpy(), raw, atol=1 / 4095)
    dark = png(tmp_path / "dark.png", (TWELVE // 64) << 4, sbit=12)   # values all below 4096 but shifted
    assert full_scale(dark) == 65535


def test_sbit_that_says_nothing_new(tmp_path):
    assert full_scale(png(tmp_path / "a.png", TWELVE, sbit=16)) == 65535
    assert full_scale(png(tmp_path / "b.png", (TWELVE >> 4).astype(np.uint8), sbit=8)) == 255
    assert full_scale(png(tmp_path / "c.png", (TWELVE >> 6).astype(np.uint8), sbit=6)) == 63


def test_a_12_bit_tiff(tmp_path):
    """BitsPerSample 12: full scale 4095. tifffile unpacks 12-bit samples only with imagecodecs
    (not a dependency); without it the file fails in one line that says so."""
    path = tiff_12bit(tmp_path / "x12.tif", TWELVE)
    page = SimpleNamespace(bitspersample=12, tags={})
    assert formats._tiff_full_scale(page, TWELVE) == 4095   # what the reader does once unpacked
    try:
        import imagecodecs  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match=r"x12.tif: cannot read this x-ray file .*imagecodecs") as caught:
            io.load_xray(path)
        assert "\n" not in str(caught.value)
        return
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].bitspersample == 12 and (tif.asarray() == TWELVE).all()
    assert full_scale(path) == 4095
    np.testing.assert_allclose(io.load_xray(path).numpy(), 1 - TWELVE / 4095, atol=1e-6)


@pytest.mark.parametrize("tags, expected", [
    ([], 65535),                                            # says nothing: the container
    ([(281, "H", 1, 4095, False)], 4095),                   # MaxSampleValue of 12 bits
    ([(341, "H", 1, 1023, False), (281, "H", 1, 4095, False)], 1023),   # the smaller: SMaxSampleValue
    ([(281, "H", 1, 3871, False)], 65535),                  # a statistic of the image, not a bit depth
    ([(340, "H", 1, 100, False)], 65535),                   # SMinSampleValue alone changes nothing
])
def test_tiff_sample_value_tags(tags, expected, tmp_path):
    path = tmp_path / "x.tif"
    values = TWELVE // 4 if expected == 1023 else TWELVE
    tifffile.imwrite(path, values, extratags=tags)
    assert full_scale(path) == expected
    np.testing.assert_allclose(io.load_xray(path).numpy(), 1 - values / expected, atol=1e-6)


def test_values_above_the_stated_scale_are_an_error(tmp_path):
    path = tmp_path / "x.tif"
    tifffile.imwrite(path, TWELVE, extratags=[(281, "H", 1, 1023, False)])
    with pytest.raises(ValueError, match=r"values up to 4095 exceed the full scale 1023"):
        io.load_xray(path)
