"""Procedural "natural-looking" clean images at any resolution.

A scene is a dead-leaves picture: shapes (ellipses, rotated rectangles,
convex polygons, thin lines) with power-law sizes fall on a smooth coloured
background and hide one another, which gives natural images' occlusions and
1/f spectrum. Fills are flat-shaded, striped, checkered, textured (fractal,
1/f) or grainy down to single pixels; edges range from crisp to out of
focus, up to a depth of field drawn per scene. That mix matters for the
labels: the same noise costs a flat scene far more quality than a grainy
one, the same blur costs a sharp scene more than a soft one, so the label is
not a function of the distortion alone (the "content interplay" a quality
model has to learn). Object sizes are relative to the image and edge widths
and grain are in pixels, so a scene at any size looks like a crop of a
photograph at its native resolution.
"""

import numpy as np
from PIL import Image
from scipy import ndimage


def upsample(small: np.ndarray, height: int, width: int) -> np.ndarray:
  """Bicubic upsampling of a small 2-D float array (PIL's C code, fast at 4K)."""
  image = Image.fromarray(np.ascontiguousarray(small, np.float32), "F")
  return np.asarray(image.resize((width, height), Image.BICUBIC))


def fractal_noise(
  rng: np.random.Generator,
  height: int,
  width: int,
  beta: float,
  coarsest: int = 3,
  finest: int | None = None,
) -> np.ndarray:
  """Zero-mean, unit-std noise with a power-law spectrum (sum of octaves).

  Args:
    rng: the generator.
    height, width: output size.
    beta: how fast octave amplitudes fall (amplitude 2**(-beta) per octave);
      larger is smoother.
    coarsest: grid cells along the long side of the coarsest octave.
    finest: grid cells of the finest octave (default: a quarter of the pixels).
  """
  long_side = max(height, width)
  finest = finest or max(coarsest, long_side // 4)
  total = np.zeros((height, width), np.float32)
  cells, amplitude = coarsest, 1.0
  while cells <= finest:
    rows = max(2, int(np.ceil(cells * height / long_side)) + 1)
    cols = max(2, int(np.ceil(cells * width / long_side)) + 1)
    total += amplitude * upsample(rng.standard_normal((rows, cols)), height, width)
    cells *= 2
    amplitude *= 2.0 ** (-beta)
  total -= total.mean()
  return total / (total.std() + 1e-6)


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
  """A uniform draw as a Python float.

  NumPy 2 treats a NumPy float64 scalar as float64 in arithmetic with float32
  arrays; plain floats keep the image math in float32, about twice as fast.
  """
  return float(rng.uniform(low, high))


def _random_colour(rng: np.random.Generator) -> np.ndarray:
  """A colour with natural-ish statistics: mostly muted, sometimes saturated."""
  grey = _uniform(rng, 0.15, 0.85)
  saturation = rng.beta(1.5, 3.0)
  hue_direction = rng.standard_normal(3)
  hue_direction -= hue_direction.mean()
  hue_direction /= np.linalg.norm(hue_direction) + 1e-6
  return np.clip(grey + saturation * 0.6 * hue_direction, 0.02, 0.98).astype(np.float32)


def _shape_distance(rng, kind, xx, yy, cx, cy, size):
  """Approximate signed distance in pixels (negative inside) to a random shape."""
  angle = _uniform(rng, 0, np.pi)
  cos, sin = float(np.cos(angle)), float(np.sin(angle))
  u = (xx - cx) * cos + (yy - cy) * sin
  v = -(xx - cx) * sin + (yy - cy) * cos
  if kind == "ellipse":
    a, b = size * _uniform(rng, 0.3, 1.0), size * _uniform(rng, 0.3, 1.0)
    radius = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    return (radius - 1.0) * min(a, b)
  if kind == "rectangle":
    a, b = size * _uniform(rng, 0.3, 1.0), size * _uniform(rng, 0.3, 1.0)
    return np.maximum(np.abs(u) - a, np.abs(v) - b)
  if kind == "line":
    a, b = size * _uniform(rng, 0.8, 2.0), _uniform(rng, 0.6, 3.0) * max(1.0, size / 200)
    return np.maximum(np.abs(u) - a, np.abs(v) - b)
  # A convex polygon: the intersection of half-planes around the centre.
  sides = rng.integers(3, 8)
  angles = np.sort(rng.uniform(0, 2 * np.pi, sides))
  radius = size * _uniform(rng, 0.4, 1.0)
  distance = np.full(u.shape, -np.inf, np.float32)
  for theta in angles:
    distance = np.maximum(distance, u * float(np.cos(theta)) + v * float(np.sin(theta)) - radius)
  return distance


def _fill(rng, xx, yy, colour, scale):
  """The fill of one shape over its bounding box: (h, w, 3) in about 0..1."""
  kind = rng.choice(
    ["flat", "stripes", "checker", "texture", "grain"], p=[0.3, 0.15, 0.1, 0.3, 0.15]
  )
  h, w = xx.shape
  # Shading: a linear light gradient across the shape.
  gx, gy = (float(g) for g in rng.normal(0, 0.4, 2) / scale)
  shade = 1.0 + gx * (xx - xx.mean()) + gy * (yy - yy.mean())
  base = colour[None, None, :] * shade[..., None]
  if kind == "flat":
    return base
  other = _random_colour(rng)[None, None, :] * shade[..., None]
  if kind in ("stripes", "checker"):
    period = float(rng.choice([_uniform(rng, 2.5, 12.0), scale * _uniform(rng, 0.02, 0.2)]))
    angle = _uniform(rng, 0, np.pi)
    phase = (xx * np.cos(angle) + yy * np.sin(angle)) * (2 * np.pi / period)
    mix = 0.5 + 0.5 * np.sin(phase)
    if kind == "checker":
      phase2 = (-xx * np.sin(angle) + yy * np.cos(angle)) * (2 * np.pi / period)
      mix = ((np.sin(phase) > 0) ^ (np.sin(phase2) > 0)).astype(np.float32)
    else:
      sharpness = _uniform(rng, 1.0, 6.0)
      mix = np.clip((mix - 0.5) * sharpness + 0.5, 0.0, 1.0)
    return base * (1 - mix[..., None]) + other * mix[..., None]
  if kind == "grain":
    # Sand, foliage, fabric: detail down to single pixels that looks like
    # noise but stays inside its object, and that hides real noise.
    size = max(h, w)
    texture = np.stack(
      [fractal_noise(rng, h, w, beta=_uniform(rng, 0.0, 0.5), coarsest=2, finest=size)] * 2
      + [fractal_noise(rng, h, w, beta=_uniform(rng, 0.0, 0.5), coarsest=2, finest=size)],
      axis=-1,
    )
    return base * (1.0 + _uniform(rng, 0.04, 0.25) * texture)
  texture = fractal_noise(rng, h, w, beta=_uniform(rng, 0.3, 1.2), coarsest=2)
  amount = _uniform(rng, 0.05, 0.35)
  return base * (1.0 + amount * texture[..., None])


_MAX_LEAVES = 400


def _leaf_radius(rng: np.random.Generator, smallest: float, largest: float) -> float:
  """A radius with density proportional to r**-3 on [smallest, largest]: the
  dead-leaves law, whose occlusions give the scene a 1/f spectrum at every
  scale between the two."""
  u = _uniform(rng, 0.0, 1.0)
  return smallest / np.sqrt(1.0 - u * (1.0 - (smallest / largest) ** 2))


def render_scene(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
  """A clean scene as (height, width, 3) float32 in [0, 1].

  A dead-leaves picture: shapes with power-law sizes fall on a textured
  background and hide one another. How busy a scene is varies a lot (the
  smallest leaf is 0.5% to 10% of the long side, 8 to 160 leaves), so the
  same damage is glaring on some scenes and masked on others.
  """
  long_side = max(height, width)
  # Background: two colours blended by a smooth field, plus fine texture.
  field = fractal_noise(rng, height, width, beta=_uniform(rng, 1.2, 2.0), coarsest=2, finest=16)
  blend = 1.0 / (1.0 + np.exp(-1.5 * field))
  image = (
    _random_colour(rng)[None, None, :] * (1 - blend[..., None])
    + _random_colour(rng)[None, None, :] * blend[..., None]
  )
  grain_amount = float(rng.choice([0.0, _uniform(rng, 0.02, 0.15)]))
  if grain_amount:
    image *= (
      1.0
      + grain_amount * fractal_noise(rng, height, width, beta=_uniform(rng, 0.2, 1.0))[..., None]
    )

  # How far out of focus the farthest things are, in pixels of edge width.
  depth_blur = float(np.exp(_uniform(rng, np.log(0.6), np.log(8.0))))
  image = ndimage.gaussian_filter(image, sigma=(depth_blur / 2, depth_blur / 2, 0))

  smallest = max(1.0, long_side * float(np.exp(_uniform(rng, np.log(0.005), np.log(0.1)))))
  largest = long_side * 0.5
  # Leaves fall until their areas add up to 0.3 to 3 times the frame: from a
  # few objects on open ground to a thicket where the ground never shows.
  coverage = height * width * float(np.exp(_uniform(rng, np.log(0.3), np.log(3.0))))
  for _ in range(_MAX_LEAVES):
    if coverage <= 0:
      break
    kind = rng.choice(["ellipse", "rectangle", "polygon", "line"], p=[0.35, 0.25, 0.25, 0.15])
    size = _leaf_radius(rng, smallest, largest)
    coverage -= np.pi * size * size
    cx, cy = _uniform(rng, 0, width), _uniform(rng, 0, height)
    reach = size * (2.2 if kind == "line" else 1.2) + 4
    x0, x1 = int(max(0, cx - reach)), int(min(width, cx + reach + 1))
    y0, y1 = int(max(0, cy - reach)), int(min(height, cy + reach + 1))
    if x1 - x0 < 2 or y1 - y0 < 2:
      continue
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    distance = _shape_distance(rng, kind, xx, yy, cx, cy, size)
    # Edge softness from crisp (half a pixel) up to the scene's depth of
    # field: some scenes are sharp throughout, others have most things
    # out of focus around a sharp subject.
    softness = 0.5 if rng.random() < 0.4 else _uniform(rng, 0.5, depth_blur)
    alpha = np.clip(0.5 - distance / (2 * softness), 0.0, 1.0)[..., None]
    if not alpha.any():
      continue
    fill = _fill(rng, xx, yy, _random_colour(rng), size)
    patch = image[y0:y1, x0:x1]
    image[y0:y1, x0:x1] = patch * (1 - alpha) + fill * alpha

  # Global illumination: a gentle vignette-like gradient.
  light = 1.0 + 0.25 * fractal_noise(rng, height, width, beta=2.0, coarsest=1, finest=4)
  image *= np.clip(light, 0.6, 1.4)[..., None]
  return np.clip(image, 0.0, 1.0).astype(np.float32)
