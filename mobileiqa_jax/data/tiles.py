"""Scoring an image of any size with a network trained on crops of it.

A network trained on random (h, w) crops at native resolution (data.crop)
has only ever seen (h, w) views, at the image's own pixel scale, which is the
scale JPEG blocks and sensor noise live at. So an image is scored the same
way at evaluation and in `Scorer`: cut into (h, w) tiles on an evenly spaced
grid that covers it, each tile scored, and the image's score is the tiles'
mean. Nothing is resized, except an image smaller than one tile, which is
enlarged to hold it (the score of such an image is an extrapolation).

`grid` chooses ceil(H / h) x ceil(W / w) tiles, the fewest that cover the
image, spread evenly so that neighbours overlap by less than a tile; with
`max_tiles`, a large photo keeps a coarser grid of the same shape, spread
over the whole image, so its score is an estimate from a sample of views.
"""

import math

import numpy as np


def _starts(length: int, tile: int, count: int) -> list[int]:
  if count == 1:
    return [(length - tile) // 2]
  return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def grid(
  height: int, width: int, tile_h: int, tile_w: int, max_tiles: int = 0
) -> list[tuple[int, int]]:
  """(top, left) of every tile, row by row.

  Args:
    height, width: the image, at least one tile in each dimension.
    tile_h, tile_w: the tile.
    max_tiles: at most this many tiles (0: no limit). Each side's count is
      scaled down by the same factor, keeping at least one per side.
  """
  if height < tile_h or width < tile_w:
    raise ValueError(f"a {height}x{width} image is smaller than one {tile_h}x{tile_w} tile")
  rows, cols = math.ceil(height / tile_h), math.ceil(width / tile_w)
  if max_tiles and rows * cols > max_tiles:
    scale = math.sqrt(max_tiles / (rows * cols))
    rows, cols = max(1, int(rows * scale)), max(1, int(cols * scale))
    # One side clamped at 1 may leave room on the other.
    if rows == 1:
      cols = min(math.ceil(width / tile_w), max_tiles)
    elif cols == 1:
      rows = min(math.ceil(height / tile_h), max_tiles)
  return [
    (top, left) for top in _starts(height, tile_h, rows) for left in _starts(width, tile_w, cols)
  ]


def cut(image: np.ndarray, tile_h: int, tile_w: int, max_tiles: int = 0) -> np.ndarray:
  """(H, W, C) -> (tiles, tile_h, tile_w, C), the tiles of `grid`."""
  height, width = image.shape[:2]
  return np.stack(
    [
      image[top : top + tile_h, left : left + tile_w]
      for top, left in grid(height, width, tile_h, tile_w, max_tiles)
    ]
  )


def enlarge_to_hold(image: np.ndarray, tile_h: int, tile_w: int, resize) -> np.ndarray:
  """An image smaller than a tile in either dimension, scaled up (keeping its
  shape) until one tile fits; larger images are returned as they are.

  `resize(image, height, width)` does the scaling (the pipeline's bicubic).
  """
  height, width = image.shape[:2]
  scale = max(tile_h / height, tile_w / width)
  if scale <= 1:
    return image
  return resize(
    image, max(tile_h, math.ceil(height * scale)), max(tile_w, math.ceil(width * scale))
  )
