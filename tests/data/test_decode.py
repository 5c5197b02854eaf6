"""Decoding every image mode the pipeline may meet into upright RGB uint8."""

import io

import numpy as np
from PIL import Image
import pytest

from mobileiqa_jax.data import decode


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
  buffer = io.BytesIO()
  image.save(buffer, fmt, **kwargs)
  return buffer.getvalue()


def test_grayscale_becomes_three_equal_channels():
  gray = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8), "L")
  out = decode.decode_rgb(_encode(gray, "PNG"))
  assert out.shape == (6, 8, 3) and out.dtype == np.uint8
  np.testing.assert_array_equal(out[..., 0], np.arange(48).reshape(6, 8))
  np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_rgba_drops_alpha():
  rgba = np.zeros((4, 4, 4), np.uint8)
  rgba[..., 0], rgba[..., 3] = 200, 10
  out = decode.decode_rgb(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
  assert out.shape == (4, 4, 3)
  assert (out[..., 0] == 200).all() and (out[..., 1:] == 0).all()


def test_palette_with_transparency():
  image = Image.new("P", (5, 5), 1)
  image.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
  out = decode.decode_rgb(_encode(image, "PNG", transparency=0))
  np.testing.assert_array_equal(out[0, 0], [10, 20, 30])


def test_cmyk_jpeg():
  cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
  out = decode.decode_rgb(_encode(cmyk, "JPEG", quality=100))
  assert out.shape == (8, 8, 3)
  assert out[..., 0].mean() > 200 and out[..., 1].mean() < 60


def test_16_bit_grayscale_is_scaled_not_clipped():
  values = (np.arange(16).reshape(4, 4) * 4096).astype(np.uint16)
  image = Image.fromarray(values)
  assert image.mode.startswith("I;16")
  out = decode.decode_rgb(_encode(image, "PNG"))
  np.testing.assert_array_equal(out[..., 1], np.rint(values / 65535 * 255).astype(np.uint8))


def test_exif_orientation_is_applied():
  pixels = np.zeros((4, 8, 3), np.uint8)  # wide, with a bright left column
  pixels[:, 0] = 255
  exif = Image.Exif()
  exif[0x0112] = 6  # "rotate 90 CW to view"
  data = _encode(Image.fromarray(pixels), "JPEG", quality=100, exif=exif.tobytes())
  out = decode.decode_rgb(data)
  assert out.shape == (8, 4, 3)  # tall once upright
  assert out[0].mean() > 200  # the left column is now the top row


def test_truncated_image_names_the_file():
  data = _encode(Image.fromarray(np.full((64, 64, 3), 90, np.uint8)), "JPEG")
  with pytest.raises(decode.BadImageError, match="photo.jpg"):
    decode.decode_rgb(data[: len(data) // 2], "photo.jpg")
  with pytest.raises(decode.BadImageError, match="notes.txt"):
    decode.decode_rgb(b"not an image", "notes.txt")


@pytest.mark.parametrize(
  "data,problem",
  [
    (b"", "empty file"),
    (b"path,mos\na.jpg,3.5\n", "not an image: looks like text ('path,mos a.jpg,3.5'...)"),
    (b"%PDF-1.7 ...", "not an image: a PDF document"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00", "a HEIF/AVIF image, which this reader does not decode"),
    (b"\xff\xd8\xff\xe0\x00\x10JF", "truncated or damaged JPEG: its header does not decode"),
    (b"\x01\x02\x03\x04\xfe", "not an image format this reader knows"),
  ],
)
def test_a_file_that_is_no_image_says_what_it_is(data, problem):
  with pytest.raises(decode.BadImageError) as error:
    decode.decode_rgb(data, "x.jpg")
  assert str(error.value).startswith("cannot decode image 'x.jpg': ") and problem in str(
    error.value
  )
  assert "BytesIO" not in str(error.value)


def test_a_cut_jpeg_is_truncated():
  pixels = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
  data = _encode(Image.fromarray(pixels), "JPEG")
  with pytest.raises(decode.BadImageError, match=r"truncated JPEG image: the file ends early"):
    decode.decode_rgb(data[: len(data) // 2], "x.jpg")
