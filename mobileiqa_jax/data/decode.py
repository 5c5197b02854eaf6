"""Image bytes -> RGB uint8 arrays, whatever the file's mode.

Photos arrive as JPEG/PNG/BMP/TIFF in many modes: grayscale, palette, RGBA,
CMYK, 16-bit, with EXIF orientation. Everything becomes (H, W, 3) uint8 RGB,
upright as a viewer shows it.
"""

import io

import numpy as np
from PIL import Image, ImageOps

from mobileiqa_jax import errors


class BadImageError(errors.InvalidInput):
  """An image file that cannot be decoded (unreadable, truncated, not an image)."""


def to_rgb(image: Image.Image) -> Image.Image:
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


def encode_png(image: np.ndarray) -> bytes:
  """(H, W, 3) uint8 -> PNG bytes: lossless, so decoding gives `image` back
  exactly (a second JPEG pass would change the very quality being scored)."""
  buffer = io.BytesIO()
  Image.fromarray(image, "RGB").save(buffer, "PNG")
  return buffer.getvalue()


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
  failures = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
  try:
    image = Image.open(io.BytesIO(data))
  except Image.DecompressionBombError as error:
    raise BadImageError(f"cannot decode image {name!r}: too large ({error})") from error
  except failures as error:
    raise BadImageError(f"cannot decode image {name!r}: {_not_an_image(data)}") from error
  try:
    # load() forces the full decode so truncated files fail here, not later.
    image.load()
    image = ImageOps.exif_transpose(image)
    return to_rgb(image)
  except failures as error:
    what = f"{image.format} image" if image.format else "image"
    if "truncated" in str(error).lower() or "end of file" in str(error).lower():
      problem = f"truncated {what}: the file ends early ({len(data)} bytes)"
    else:
      problem = f"damaged {what}: {error}"
    raise BadImageError(f"cannot decode image {name!r}: {problem}") from error


# Formats people mistake for images, by their first bytes.
_SIGNATURES = (
  (b"%PDF", "a PDF document"),
  (b"PK\x03\x04", "a zip archive"),
  (b"\x1f\x8b", "gzip-compressed data"),
)
_IMAGE_SIGNATURES = (
  (b"\xff\xd8\xff", "JPEG"),
  (b"\x89PNG", "PNG"),
  (b"GIF8", "GIF"),
  (b"BM", "BMP"),
  (b"RIFF", "WebP"),
  (b"II*\x00", "TIFF"),
  (b"MM\x00*", "TIFF"),
)


def _not_an_image(data: bytes) -> str:
  """Why bytes that PIL cannot identify are not an image we read."""
  if not data:
    return "empty file"
  head = data[:64]
  if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc", b"ftypavif"):
    return "a HEIF/AVIF image, which this reader does not decode; convert it to JPEG or PNG"
  for signature, kind in _SIGNATURES:
    if head.startswith(signature):
      return f"not an image: {kind}"
  for signature, kind in _IMAGE_SIGNATURES:
    if head.startswith(signature):
      return f"truncated or damaged {kind}: its header does not decode ({len(data)} bytes)"
  try:
    text = head.decode("utf-8")
  except UnicodeDecodeError:
    return f"not an image format this reader knows (it starts {head[:8]!r})"
  if all(c.isprintable() or c.isspace() for c in text):
    shown = " ".join(text.split())[:30]
    return f"not an image: looks like text ({shown!r}...)"
  return f"not an image format this reader knows (it starts {head[:8]!r})"


def decode_rgb(data: bytes, name: str = "<bytes>") -> np.ndarray:
  """Decodes image bytes to an upright (H, W, 3) uint8 RGB array."""
  return np.asarray(open_rgb(data, name))


def check_image(data: bytes, name: str) -> None:
  """Raises BadImageError unless `data` decodes completely."""
  open_rgb(data, name)
