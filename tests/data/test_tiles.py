"""Tiling: the grid that covers an image, and the crop-trained pipeline around it."""

import numpy as np
import pytest

from mobileiqa_jax.data import config, pipeline, preprocess, tiles


@pytest.mark.parametrize("size", [(64, 64), (64, 100), (130, 64), (200, 333), (1231, 1907)])
def test_grid_covers_the_image_with_the_fewest_tiles(size):
  height, width = size
  boxes = tiles.grid(height, width, 64, 64)
  covered = np.zeros(size, int)
  for top, left in boxes:
    assert 0 <= top <= height - 64 and 0 <= left <= width - 64
    covered[top : top + 64, left : left + 64] += 1
  assert covered.min() >= 1
  assert len(boxes) == -(-height // 64) * -(-width // 64)


def test_max_tiles_keeps_an_even_grid_over_the_whole_image():
  boxes = tiles.grid(1231, 1907, 64, 64, max_tiles=64)
  tops, lefts = sorted({t for t, _ in boxes}), sorted({x for _, x in boxes})
  assert len(boxes) == len(tops) * len(lefts) <= 64 and len(boxes) >= 48
  assert (tops[0], lefts[0], tops[-1], lefts[-1]) == (0, 0, 1231 - 64, 1907 - 64)
  # A long strip keeps as many tiles as it is allowed along its length.
  assert len(tiles.grid(64, 6400, 64, 64, max_tiles=10)) == 10


def test_cut_and_enlarge():
  image = np.arange(100 * 150 * 3, dtype=np.int32).reshape(100, 150, 3)
  cut = tiles.cut(image, 64, 64)
  assert cut.shape == (2 * 3, 64, 64, 3)
  np.testing.assert_array_equal(cut[-1], image[-64:, -64:])
  with pytest.raises(ValueError, match="smaller than one 64x64 tile"):
    tiles.cut(image[:50], 64, 64)
  small = np.zeros((30, 60, 3), np.uint8)
  assert tiles.enlarge_to_hold(small, 64, 64, preprocess.resize_bicubic).shape == (64, 128, 3)
  assert tiles.enlarge_to_hold(image, 64, 64, preprocess.resize_bicubic) is image


def _synthetic(crop):
  cfg = config.get_config()
  cfg.synthetic.height = cfg.synthetic.width = cfg.height = cfg.width = 48
  cfg.synthetic.num_train = cfg.synthetic.num_validation = 4
  cfg.synthetic.cache_dir, cfg.num_workers, cfg.crop = "", 0, crop
  return cfg


def test_training_crops_and_evaluation_tiles_at_native_resolution():
  cfg = _synthetic((32, 32))
  source = pipeline.make_source(cfg, "validation")
  (batch,) = pipeline.make_loader(cfg, "validation", global_batch_size=4, train=False, seed=0)
  assert batch["image"].shape == (4, 4, 32, 32, 3)
  # The tiles are the stored pixels, untouched by any resize.
  np.testing.assert_array_equal(batch["image"][1], tiles.cut(source[1]["image"], 32, 32))

  train = pipeline.make_source(cfg, "train")
  batches = pipeline.make_loader(
    cfg, "train", global_batch_size=4, train=True, seed=0, num_epochs=1
  )
  (batch,) = list(batches)
  assert batch["image"].shape == (4, 32, 32, 3)
  # Every crop is a (possibly flipped) window of one of the images.
  images = [train[i]["image"] for i in range(4)]  # each generated once
  windows = [
    image[t : t + 32, left : left + 32] for image in images for t in range(17) for left in range(17)
  ]
  for crop in batch["image"]:
    flips = [crop, crop[:, ::-1], crop[::-1], crop[::-1, ::-1]]
    assert any(np.array_equal(f, w) for f in flips for w in windows)


def test_a_crop_larger_than_the_images_names_both():
  with pytest.raises(ValueError, match="data.crop 64x32 does not fit in the 48x48"):
    pipeline.make_loader(_synthetic((64, 32)), "train", global_batch_size=2, train=True, seed=0)
  with pytest.raises(ValueError, match="data.crop must be"):
    pipeline.crop_size(_synthetic((32,)))
