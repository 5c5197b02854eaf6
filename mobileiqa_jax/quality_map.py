"""Where a photo is bad: the network's quality map, placed on the photo.

MobileIQA computes quality on a spatial grid before it averages it away. The
score head (`models.heads.score_head`) turns the fused S x S feature into an
M x M map of cells (1x1 conv, `pool` x `pool` average pool, 3x3 valid conv;
M = S // pool - 2, 9x9 for the student and 3x3 for the teacher at the paper's
settings, 2x2 for the tiny presets), averages the cells, and reads the score
from the average with two linear layers. The quality map is those two layers
read from each cell on its own: cell (i, j) is the score the network would
give an image whose every cell looked like that one, on the score's scale.
The score is not the map's mean (a ReLU sits between the two layers), but a
map whose cells are equal holds the score everywhere.

What a cell sees. Cell i's 3x3 window covers pooled rows i..i+2, i.e. fused
rows pool*i .. pool*(i+3) - 1, and the fused grid spreads the image evenly
over its S rows, so the cell summarises the band of the image from
pool*i / S to pool*(i+3) / S of its height (likewise for columns); its centre
is at (pool*i + 1.5*pool) / S. The windows overlap, and the attention layers
before the head mix every position with every other through residual paths,
so a cell leans on its region without being confined to it; whether the map
finds damage where it is, is measured (README, "Quality maps").

On the photo, each view the network scored (the resized photo, or each tile of
a photo scored in tiles) lays its cells at their centres, interpolates
linearly between them and holds the outermost value beyond them; where tiles
overlap their maps are averaged, and pixels no tile covered (a photo with
more tiles than `max_tiles`) are NaN.
"""

import dataclasses

import numpy as np


def cell_centres(grid: int, pool: int) -> np.ndarray:
  """Where each map cell's region is centred, as fractions of the view's side."""
  cells = grid // pool - 2
  if cells < 1:
    raise ValueError(f"a head grid of {grid} pooled by {pool} leaves no 3x3 window for a map")
  return (pool * np.arange(cells) + 1.5 * pool) / grid


def interpolation(positions: np.ndarray, centres: np.ndarray) -> np.ndarray:
  """(len(positions), len(centres)) weights that interpolate values given at
  `centres` linearly at `positions` (fractions of a side), constant beyond
  the first and last centre. Rows sum to one."""
  eye = np.eye(len(centres))
  return np.stack([np.interp(positions, centres, eye[k]) for k in range(len(centres))], axis=1)


@dataclasses.dataclass(frozen=True)
class QualityMap:
  """One photo's quality map: the cells of each view and where the views lie.

  Attributes:
    cells: (views, M, M) float32, each view's map on the score's scale.
    boxes: (views, 4) float (top, left, height, width) of each view in the
      photo's pixels; a letterboxed view's box reaches past the photo.
    image_size: the photo's (height, width).
    grid, pool: the head's grid side S and pool (fix the cells' centres).
  """

  cells: np.ndarray
  boxes: np.ndarray
  image_size: tuple[int, int]
  grid: int
  pool: int

  def image(self, size: tuple[int, int] | None = None) -> np.ndarray:
    """The map over the photo: (height, width) float32, NaN where no view lay.

    Args:
      size: (height, width) to draw it at; default: the photo's own. Another
        size samples the same map over the photo stretched to it.
    """
    height, width = size or self.image_size
    centres = cell_centres(self.grid, self.pool)
    total = np.zeros((height, width), np.float64)
    count = np.zeros((height, width), np.float64)
    # Output pixel centres, in the photo's pixels.
    pixel_rows = (np.arange(height) + 0.5) * self.image_size[0] / height
    pixel_cols = (np.arange(width) + 0.5) * self.image_size[1] / width
    for cells, (top, left, box_h, box_w) in zip(self.cells, self.boxes):
      rows = np.flatnonzero((pixel_rows >= top) & (pixel_rows < top + box_h))
      cols = np.flatnonzero((pixel_cols >= left) & (pixel_cols < left + box_w))
      if not len(rows) or not len(cols):
        continue
      along_rows = interpolation((pixel_rows[rows] - top) / box_h, centres)
      along_cols = interpolation((pixel_cols[cols] - left) / box_w, centres)
      total[np.ix_(rows, cols)] += along_rows @ cells @ along_cols.T
      count[np.ix_(rows, cols)] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
      return np.where(count > 0, total / count, np.nan).astype(np.float32)
