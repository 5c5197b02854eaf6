"""Damage a viewer can judge without the original, at photographic pixel sizes.

Every family takes a (H, W, 3) float32 image in [0, 1], a generator and a
strength in [0, 1] (0 barely visible, 1 severe) and returns a new image in
[0, 1]. Parameters are in pixels of the image as it is, the way a camera
photo carries them at native resolution: a 2-px blur is a 2-px blur in a
128-px crop and in a 4K frame, and JPEG's 8x8 blocks are 8 pixels. So these
images are to be seen as crops of photographs, never shrunk.

Global changes of contrast, colour or exposure are left out on purpose: clean
scenes already vary by them, so their damage cannot be told without the
original.
"""

import io

import numpy as np
from PIL import Image
from scipy import ndimage, signal

# ITU-R BT.601 luma weights, and the chroma axes orthogonal to them.
_LUMA = np.asarray([0.299, 0.587, 0.114], np.float32)


def _to_uint8(image: np.ndarray) -> np.ndarray:
  return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _from_uint8(pixels) -> np.ndarray:
  return np.asarray(pixels, np.float32) / np.float32(255.0)


def _chroma_basis(rng: np.random.Generator) -> np.ndarray:
  """Two random unit colour directions with no luma: (2, 3)."""
  directions = rng.standard_normal((2, 3))
  directions -= (directions @ _LUMA)[:, None] * _LUMA[None, :] / (_LUMA @ _LUMA)
  return (directions / np.linalg.norm(directions, axis=1, keepdims=True)).astype(np.float32)


def gaussian_blur(image, rng, strength):
  """Out of focus: a Gaussian of sigma 0.4 to 4 px."""
  del rng
  sigma = 0.4 + 3.6 * strength
  return ndimage.gaussian_filter(image, sigma=(sigma, sigma, 0), mode="reflect")


def motion_blur(image, rng, strength):
  """Camera shake: a straight streak of 2 to 20 px at a random angle."""
  length = 2.0 + 18.0 * strength
  angle = rng.uniform(0, np.pi)
  radius = int(np.ceil(length / 2))
  # The streak drawn anti-aliased: each kernel pixel weighted by its distance
  # from the segment, so short streaks at any angle stay smooth.
  yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float32)
  along = xx * np.cos(angle) + yy * np.sin(angle)
  across = -xx * np.sin(angle) + yy * np.cos(angle)
  kernel = np.clip(1.0 - np.abs(across), 0, 1) * np.clip(length / 2 + 0.5 - np.abs(along), 0, 1)
  kernel = (kernel / kernel.sum()).astype(np.float32)
  padded = np.pad(image, ((radius, radius), (radius, radius), (0, 0)), mode="reflect")
  out = np.stack(
    [signal.fftconvolve(padded[..., c], kernel, mode="valid") for c in range(3)], axis=-1
  )
  return np.clip(out, 0.0, 1.0).astype(np.float32)


def luma_noise(image, rng, strength):
  """Fine grey grain: white noise of std 0.006 to 0.12 on every channel alike."""
  sigma = 0.006 + 0.114 * strength**1.5
  noise = rng.standard_normal(image.shape[:2] + (1,), dtype=np.float32) * np.float32(sigma)
  return np.clip(image + noise, 0.0, 1.0)


def chroma_noise(image, rng, strength):
  """Colour blotches: noise in the two chroma directions, smoothed over 0.5
  to 1.5 px the way demosaicking spreads it, luma untouched."""
  sigma = 0.01 + 0.2 * strength**1.5
  spread = rng.uniform(0.5, 1.5)
  fields = rng.standard_normal((2,) + image.shape[:2], dtype=np.float32)
  fields = ndimage.gaussian_filter(fields, sigma=(0, spread, spread))
  fields /= fields.std(axis=(1, 2), keepdims=True) + 1e-6
  noise = np.einsum("khw,kc->hwc", fields, _chroma_basis(rng)) * np.float32(sigma)
  return np.clip(image + noise, 0.0, 1.0)


def shot_noise(image, rng, strength):
  """Low light: Poisson-Gaussian sensor noise, each channel on its own, its
  variance growing with the signal (std 0.008 to 0.16 at mid grey)."""
  sigma_mid = 0.008 + 0.152 * strength**1.5
  read_fraction = rng.uniform(0.05, 0.3)  # of the variance at mid grey
  variance = sigma_mid**2 * ((1 - read_fraction) * image / 0.5 + read_fraction)
  noise = rng.standard_normal(image.shape, dtype=np.float32) * np.sqrt(variance)
  return np.clip(image + noise.astype(np.float32), 0.0, 1.0)


def resampling(image, rng, strength):
  """A digital zoom: shrunk by 1.3 to 6 then enlarged back, with a random
  pair of filters (pixelated, soft or ringing)."""
  h, w = image.shape[:2]
  factor = 1.3 + 4.7 * strength
  small = (max(2, round(w / factor)), max(2, round(h / factor)))
  down, up = [
    (Image.NEAREST, Image.NEAREST),
    (Image.BOX, Image.BILINEAR),
    (Image.BICUBIC, Image.BICUBIC),
    (Image.LANCZOS, Image.LANCZOS),
  ][int(rng.integers(0, 4))]
  return _from_uint8(Image.fromarray(_to_uint8(image)).resize(small, down).resize((w, h), up))


def oversharpening(image, rng, strength):
  """A phone's over-eager sharpening: unsharp masking of amount 0.6 to 5 at
  radius 0.8 to 2.5 px, leaving halos along edges and crisper grain."""
  amount = 0.6 + 4.4 * strength
  radius = rng.uniform(0.8, 2.5)
  smooth = ndimage.gaussian_filter(image, sigma=(radius, radius, 0), mode="reflect")
  return np.clip(image + np.float32(amount) * (image - smooth), 0.0, 1.0)


def jpeg(image, rng, strength):
  """JPEG at quality 90 (mild) down to 4 (severe), with 4:2:0 or 4:4:4 chroma."""
  quality = int(round(90 - 86 * strength**0.7))
  subsampling = 2 if rng.random() < 0.7 else 0
  buffer = io.BytesIO()
  Image.fromarray(_to_uint8(image)).save(buffer, "JPEG", quality=quality, subsampling=subsampling)
  return _from_uint8(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


FAMILIES = {
  "gaussian_blur": gaussian_blur,
  "motion_blur": motion_blur,
  "luma_noise": luma_noise,
  "chroma_noise": chroma_noise,
  "shot_noise": shot_noise,
  "resampling": resampling,
  "oversharpening": oversharpening,
  "jpeg": jpeg,
}
# Applied in this order when stacked, as a camera would: optics and motion,
# then sensor noise, then processing and compression.
ORDER = tuple(FAMILIES)
