"""Quality maps: where the cells lie on a photo, and the picture drawn of them."""

import numpy as np
import pytest

from mobileiqa_jax import overlay, quality_map


def test_cells_are_centred_on_the_regions_they_summarise():
  # The student's head at the paper's settings: 22 // 2 - 2 = 9 cells, the
  # first covering fused rows 0..5 of 22, centred at 3 / 22.
  centres = quality_map.cell_centres(22, 2)
  assert len(centres) == 9
  np.testing.assert_allclose(centres, (2 * np.arange(9) + 3) / 22)
  # The teacher's: 22 // 4 - 2 = 3 cells; the pool drops the last 2 rows.
  np.testing.assert_allclose(quality_map.cell_centres(22, 4), [6 / 22, 10 / 22, 14 / 22])
  with pytest.raises(ValueError, match="no 3x3 window"):
    quality_map.cell_centres(5, 2)


def test_the_image_map_passes_through_the_cells_and_holds_beyond_them():
  # grid 8, pool 2: two cells a side, centred at 3/8 and 5/8 of the view; on a
  # 4x4 photo those are the centres of pixels 1 and 2, and pixels 0 and 3 lie
  # beyond, so every quadrant holds its cell's value.
  cells = np.asarray([[[0.1, 0.2], [0.3, 0.4]]], np.float32)
  whole = quality_map.QualityMap(cells, np.asarray([[0, 0, 4, 4]]), (4, 4), grid=8, pool=2)
  np.testing.assert_allclose(whole.image(), np.kron(cells[0], np.ones((2, 2))), atol=1e-7)
  # Halfway between two centres is their mean (an 8-pixel side: the centres
  # at 3 and 5 pixels, pixel 3's centre at 3.5 a quarter of the way).
  big = whole.image(size=(8, 8))
  np.testing.assert_allclose(big[3, 0], 0.75 * 0.1 + 0.25 * 0.3, atol=1e-6)
  np.testing.assert_allclose(big[:, 0], big[:, 1])  # columns left of the first centre hold


def test_tiles_average_where_they_overlap_and_leave_the_rest_unknown():
  ones, threes = np.ones((2, 2)), 3 * np.ones((2, 2))
  # Two 4x4 tiles on a 4x10 photo, at columns 0..3 and 3..6; columns 7..9 unseen.
  boxes = np.asarray([[0, 0, 4, 4], [0, 3, 4, 4]])
  image = quality_map.QualityMap(np.stack([ones, threes]), boxes, (4, 10), 8, 2).image()
  np.testing.assert_allclose(image[:, :3], 1)
  np.testing.assert_allclose(image[:, 3], 2)
  np.testing.assert_allclose(image[:, 4:7], 3)
  assert np.isnan(image[:, 7:]).all()


def test_the_picture_tints_the_photo_with_a_bar_and_keeps_unseen_pixels():
  photo = np.full((40, 60, 3), 128, np.uint8)
  values = np.tile(np.linspace(0, 1, 60, dtype=np.float32), (40, 1))
  values[:, :10] = np.nan
  picture = np.asarray(overlay.render(photo, values, 0.5, (0.0, 1.0)))
  assert picture.shape[1] == 60 and picture.shape[0] > 40  # the bar and text below
  np.testing.assert_array_equal(picture[:40, :10], photo[:, :10])  # unseen: the photo alone
  left, right = picture[20, 12].astype(int), picture[20, 59].astype(int)
  assert left[0] > left[2] and right[2] > right[0]  # low quality red, high blue
  np.testing.assert_allclose(overlay.colours(np.asarray([0.0, 1.0]), 0, 1)[:, 0], [215, 69])
  # The finite map's range (columns 10..59), widened to hold the score.
  np.testing.assert_allclose(overlay.value_range(values, 0.5), (10 / 59, 1.0), rtol=1e-6)
  np.testing.assert_allclose(overlay.value_range(values, 0.05), (0.05, 1.0), rtol=1e-6)
  assert overlay.value_range(np.full((2, 2), 0.3), 0.3) == (pytest.approx(-0.2), pytest.approx(0.8))
  with pytest.raises(ValueError, match="does not fit"):
    overlay.render(photo, values[:10], 0.5, (0.0, 1.0))


class _SharpnessMaps:
  """A stand-in network whose map is each cell's edge energy (mean |Laplacian|
  over the region the cell summarises): it finds blur, and reads noise as
  sharpness, so it gets noise backwards."""

  map_geometry = (20, 2)  # an 8x8 map

  def __call__(self, images):
    return self.with_maps(images)[0]

  def with_maps(self, images):
    grid, pool = self.map_geometry
    grey = images.astype(np.float32).mean(axis=-1)
    energy = np.abs(
      4 * grey[:, 1:-1, 1:-1]
      - grey[:, :-2, 1:-1]
      - grey[:, 2:, 1:-1]
      - grey[:, 1:-1, :-2]
      - grey[:, 1:-1, 2:]
    )
    side = energy.shape[1]
    bounds = [(side * pool * i // grid, side * pool * (i + 3) // grid) for i in range(8)]
    cells = np.asarray(
      [[[e[a:b, c:d].mean() for c, d in bounds] for a, b in bounds] for e in energy]
    )
    return cells.mean(axis=(1, 2)), cells


def test_the_half_damage_check_tells_a_map_that_finds_damage_from_one_that_does_not():
  from mobileiqa_jax import map_check, scoring

  image, mask, strength = map_check.half_damaged("jpeg", 3, 64, 96)
  again, _, _ = map_check.half_damaged("jpeg", 3, 64, 96)
  np.testing.assert_array_equal(image, again)  # one seed, one case
  assert image.dtype == np.uint8 and mask.mean() == 0.5 and 0.4 <= strength <= 1
  for side in map_check.SIDES:
    assert map_check.half_mask(side, 64, 96).sum() == 64 * 48

  scorer = scoring.Scorer(_SharpnessMaps(), (96, 96), batch_size=8)
  results = map_check.check(scorer, count=12)
  assert results["blur"].passed >= 0.9 and results["blur"].mean_gap > 0
  assert results["noise"].passed <= 0.1 and results["noise"].mean_gap < 0
  # In tiles, each half of a scene twice the size gets its own 2 x 2 views.
  assert len(scorer.in_tiles().views(np.zeros((96, 96, 3), np.uint8))) == 1
  assert len(scorer.in_tiles().views(np.zeros((192, 192, 3), np.uint8))) == 4
  with pytest.raises(ValueError, match="gives no quality maps"):
    map_check.check(scoring.Scorer(lambda images: np.zeros(len(images)), (96, 96)))
