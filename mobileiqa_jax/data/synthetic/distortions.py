"""Distortion families applied to clean synthetic scenes, each at a strength.

Every function takes a (H, W, 3) float32 image in [0, 1], a generator and a
strength in [0, 1] (0 barely visible, 1 severe) and returns a new image.
Spatial parameters scale with the image's size, so a strength means about
the same visible damage at 256 px and at 4K.
"""

import io

import numpy as np
from PIL import Image
from scipy import ndimage


def _scale(image: np.ndarray) -> float:
  """Pixels per "reference pixel" of a 512-px image."""
  return max(image.shape[:2]) / 512.0


def _to_uint8(image: np.ndarray) -> np.ndarray:
  return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def gaussian_blur(image, rng, strength):
  """Out-of-focus-like blur."""
  del rng
  sigma = (0.5 + 7.5 * strength) * _scale(image)
  return ndimage.gaussian_filter(image, sigma=(sigma, sigma, 0), mode="reflect")


def motion_blur(image, rng, strength):
  """Camera shake: a box blur along the rows or the columns."""
  length = max(2, int(round((2 + 38 * strength) * _scale(image))))
  axis = int(rng.integers(0, 2))
  return ndimage.uniform_filter1d(image, size=length, axis=axis, mode="reflect")


def gaussian_noise(image, rng, strength):
  """Sensor noise: luminance noise, sometimes with chroma noise."""
  sigma = 0.01 + 0.14 * strength
  shape = image.shape[:2] + (1,) if rng.random() < 0.5 else image.shape
  noise = rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)
  return np.clip(image + noise, 0.0, 1.0)


def jpeg(image, rng, strength):
  """JPEG compression at a quality from 90 (mild) down to 3 (severe)."""
  del rng
  quality = int(round(90 - 87 * strength))
  buffer = io.BytesIO()
  Image.fromarray(_to_uint8(image)).save(buffer, "JPEG", quality=quality)
  decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
  return decoded.astype(np.float32) / 255.0


def resampling(image, rng, strength):
  """Downscaling then upscaling back, with a random pair of filters."""
  h, w = image.shape[:2]
  factor = 1.0 + 7.0 * strength
  small = (max(2, int(w / factor)), max(2, int(h / factor)))
  down, up = [
    (Image.BILINEAR, Image.NEAREST),
    (Image.BOX, Image.BILINEAR),
    (Image.BICUBIC, Image.BICUBIC),
  ][int(rng.integers(0, 3))]
  pixels = Image.fromarray(_to_uint8(image)).resize(small, down).resize((w, h), up)
  return np.asarray(pixels).astype(np.float32) / 255.0


def contrast(image, rng, strength):
  """Contrast lowered (haze) or raised (clipping) around the mean."""
  mean = image.mean(axis=(0, 1), keepdims=True)
  gain = 1.0 - 0.75 * strength if rng.random() < 0.6 else 1.0 + 1.5 * strength
  return np.clip(mean + (image - mean) * np.float32(gain), 0.0, 1.0)


def colour(image, rng, strength):
  """A colour cast (per-channel gains) or a change of saturation."""
  if rng.random() < 0.5:
    direction = rng.standard_normal(3)
    direction -= direction.mean()
    direction /= np.linalg.norm(direction) + 1e-6
    gains = (1.0 + 0.8 * strength * direction).astype(np.float32)
    return np.clip(image * gains, 0.0, 1.0)
  grey = image.mean(axis=2, keepdims=True)
  amount = 1.0 - strength if rng.random() < 0.6 else 1.0 + 2.0 * strength
  return np.clip(grey + (image - grey) * np.float32(amount), 0.0, 1.0)


def brightness(image, rng, strength):
  """Under- or over-exposure via a gamma curve."""
  gamma = 1.0 + 2.0 * strength if rng.random() < 0.5 else 1.0 / (1.0 + 2.0 * strength)
  return np.power(image, np.float32(gamma))


def quantisation(image, rng, strength):
  """Banding: fewer grey levels per channel."""
  del rng
  levels = max(2, int(round(64 * (1.0 - strength) ** 2 + 2)))
  return np.round(image * (levels - 1)) / np.float32(levels - 1)


FAMILIES = {
  "gaussian_blur": gaussian_blur,
  "motion_blur": motion_blur,
  "gaussian_noise": gaussian_noise,
  "jpeg": jpeg,
  "resampling": resampling,
  "contrast": contrast,
  "colour": colour,
  "brightness": brightness,
  "quantisation": quantisation,
}
