"""A photo with its quality map drawn over it, a colour bar and the score.

`render` makes the picture the scoring CLI writes per photo (`predict --maps`).
Colours run from red (low quality) through pale yellow to blue (high), a
scale that readers with red-green colour blindness can still order, laid over
the photo in grey; pixels the map does not cover (NaN: tiles left out by
`max_tiles`) show the photo as it is. The bar under the photo spans the
colour range, with the score marked on it.
"""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Low -> high quality; linear between these anchors.
_ANCHORS = np.asarray(
  [(215, 48, 39), (252, 141, 89), (254, 224, 144), (145, 191, 219), (69, 117, 180)], np.float32
)
_OPACITY = 0.5
_LUMA = np.asarray([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601
_BAR_HEIGHT = 18


def colours(values: np.ndarray, low: float, high: float) -> np.ndarray:
  """Values -> (..., 3) float32 RGB in 0..255 on the red-yellow-blue scale,
  `low` and below red, `high` and above blue."""
  fraction = np.clip((values - low) / max(high - low, 1e-12), 0.0, 1.0)
  position = np.nan_to_num(fraction) * (len(_ANCHORS) - 1)
  index = np.minimum(position.astype(int), len(_ANCHORS) - 2)
  weight = (position - index)[..., None]
  return (1 - weight) * _ANCHORS[index] + weight * _ANCHORS[index + 1]


def value_range(quality_map: np.ndarray, score: float) -> tuple[float, float]:
  """The finite range of the map and the score, widened if it is a point."""
  values = np.append(quality_map[np.isfinite(quality_map)], score)
  low, high = float(values.min()), float(values.max())
  return (low, high) if high > low else (low - 0.5, high + 0.5)


def render(
  photo: np.ndarray,
  quality_map: np.ndarray,
  score: float,
  value_range: tuple[float, float],
) -> Image.Image:
  """(H, W, 3) uint8 photo and its (H, W) map -> the overlaid picture with a bar.

  The map must already be at the photo's size (`QualityMap.image(size)`).
  """
  if quality_map.shape != photo.shape[:2]:
    raise ValueError(f"a {quality_map.shape} map does not fit a {photo.shape[:2]} photo")
  low, high = value_range
  covered = np.isfinite(quality_map)[..., None]
  # The tint goes over the photo in grey, so that the photo's own colours
  # do not read as quality.
  grey = (photo.astype(np.float32) @ _LUMA)[..., None]
  tinted = (1 - _OPACITY) * grey + _OPACITY * colours(quality_map, low, high)
  picture = np.where(covered, tinted, photo)
  height, width = photo.shape[:2]

  font = ImageFont.load_default(size=max(10, min(width // 40, 24)))
  line = int(font.size * 1.4)
  canvas = Image.new("RGB", (width, height + _BAR_HEIGHT + 2 * line), (255, 255, 255))
  canvas.paste(Image.fromarray(np.round(picture).astype(np.uint8)), (0, 0))
  bar = colours(np.linspace(low, high, width)[None, :].repeat(_BAR_HEIGHT, 0), low, high)
  canvas.paste(Image.fromarray(np.round(bar).astype(np.uint8)), (0, height))
  draw = ImageDraw.Draw(canvas)
  marker = round((np.clip(score, low, high) - low) / (high - low) * (width - 1))
  draw.line([(marker, height), (marker, height + _BAR_HEIGHT - 1)], fill=(0, 0, 0), width=3)
  text_top = height + _BAR_HEIGHT + 2
  draw.text((2, text_top), f"{low:.3g}", fill=(0, 0, 0), font=font)
  draw.text((width - 2, text_top), f"{high:.3g}", fill=(0, 0, 0), font=font, anchor="ra")
  draw.text(
    (width // 2, text_top),
    "low quality  <  map  >  high",
    fill=(80, 80, 80),
    font=font,
    anchor="ma",
  )
  draw.text(
    (width // 2, text_top + line), f"score {score:.4f}", fill=(0, 0, 0), font=font, anchor="ma"
  )
  return canvas
