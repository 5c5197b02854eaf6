"""Image bytes -> RGB uint8 arrays, whatever the file's mode.

Photos arrive as JPEG/PNG/BMP/TIFF in many modes: grayscale, palette, RGBA,
CMYK, 16-bit, with EXIF orientation. Everything becomes (H, W, 3) uint8 RGB,
upright as a viewer shows it.
"""

import io

import numpy as np
from PIL import Image, ImageOps


class BadImageError(ValueError):
  """An image file that cannot be decoded (unreadable, truncated, not an image)."""


def _to_rgb(image: Image.Image) -> Image.Image:
  """Converts any PIL mode to 8-bit RGB."""
  if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
    # PIL's own conversion of 16-bit/integer/float images to RGB clips at 255
    # instead of scaling, which turns a 16-bit photo white; scale by the range
    # of the file's bit depth instead.
    pixels = np.asarray(image)
    if image.mode == "F":
      top = 1.0 if pixels.size and float(pixels.max()) <= 1.0 else 255.0
    else:
      top = 65535.0 if image.mode.startswith("I;16") or pixels.max(initial=0) > 255 else 255.0
    gray = np.clip(np.rint(pixels.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)
    return Image.fromarray(gray, "L").convert("RGB")
  if image.mode == "P" and "transparency" in image.info:
    # Palette transparency must be expanded first or PIL warns and guesses.
    image = image.convert("RGBA")
  if image.mode != "RGB":
    # CMYK, YCbCr, LAB, L, LA, RGBA, 1: PIL knows these; alpha is dropped,
    # as the reference (PyTorch) loader does with convert('RGB').
    image = image.convert("RGB")
  return image


def open_rgb(data: bytes, name: str = "<bytes>") -> Image.Image:
  """Decodes encoded image bytes to an upright RGB PIL image.

  Args:
    data: the file's bytes.
    name: the file name, used in error messages.

  Returns:
    An RGB image with EXIF orientation applied.

  Raises:
    BadImageError: the bytes are not a complete, decodable image.
  """
  try:
    image = Image.open(io.BytesIO(data))
    # load() forces the full decode so truncated files fail here, not later.
    image.load()
    image = ImageOps.exif_transpose(image)
    return _to_rgb(image)
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
    raise BadImageError(f"cannot decode image {name!r}: {error}") from error


def decode_rgb(data: bytes, name: str = "<bytes>") -> np.ndarray:
  """Decodes image bytes to an upright (H, W, 3) uint8 RGB array."""
  return np.asarray(open_rgb(data, name))


def check_image(data: bytes, name: str) -> None:
  """Raises BadImageError unless `data` decodes completely."""
  open_rgb(data, name)
