"""Per-example grain transforms (decode + resize, random crops or tiles,
random flips) and `normalise`, which the training steps apply on the device
and the scorers and the exported graph apply the same way.

A raw record (what `pipeline.make_source` yields) is a dict with
  image: encoded bytes, or an already decoded (H, W, 3) uint8 array;
  label: the quality label in 0..1;
  valid: optional, False for padding rows that only fill an evaluation batch;
  and optional metadata (name, mos) the transforms drop, because grain batches
  every leaf and strings do not batch into arrays.
"""

import dataclasses

import grain
import numpy as np
from PIL import Image

from mobileiqa_jax.data import decode, tiles

# The normalisation every network here is trained with; the scorers and the
# TFLite graph (uint8 input) apply the same `normalise`.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_SCALE = (1.0 / (255.0 * np.asarray(IMAGENET_STD))).astype(np.float32)
_SHIFT = (np.asarray(IMAGENET_MEAN) / np.asarray(IMAGENET_STD)).astype(np.float32)


def normalise(images):
  """0..255 RGB (..., 3) of any dtype, NumPy or JAX -> float32
  ImageNet-normalised, (x / 255 - mean) / std.

  Written as one multiply and one subtract per channel wherever it runs
  (input pipeline, scorers, the exported graph), so all agree to the bit.
  """
  if isinstance(images, np.ndarray):
    out = images.astype(np.float32)  # a fresh array: scaled in place, no temporaries
    out *= _SCALE
    out -= _SHIFT
    return out
  return images.astype(np.float32) * _SCALE - _SHIFT


def resize_bicubic(image: np.ndarray, height: int, width: int) -> np.ndarray:
  """Resizes (H, W, 3) uint8 to (height, width, 3) with PIL's bicubic filter.

  PIL is what the reference PyTorch loader resizes with, so the pixels match
  it (PIL's bicubic widens its support when shrinking, i.e. antialiases).
  """
  if image.shape[:2] == (height, width):
    return image
  return np.asarray(Image.fromarray(image).resize((width, height), Image.BICUBIC))


@dataclasses.dataclass(frozen=True)
class DecodeAndResize(grain.transforms.Map):
  """Raw record -> {'image': (height, width, 3) uint8, 'label', 'valid'}."""

  height: int
  width: int

  def map(self, record):
    valid = bool(record.get("valid", True))
    if not valid:
      # Padding rows carry no image; zeros keep the batch shape.
      image = np.zeros((self.height, self.width, 3), np.uint8)
    else:
      image = record["image"]
      if not isinstance(image, np.ndarray):
        name = record.get("name", "<unnamed>")
        if isinstance(name, bytes):
          name = name.decode("utf-8", "replace")
        image = decode.decode_rgb(image, name)
      image = resize_bicubic(image, self.height, self.width)
    return {
      "image": image,
      "label": np.float32(record["label"]),
      "valid": np.bool_(valid),
    }


@dataclasses.dataclass(frozen=True)
class RandomCrop(grain.transforms.RandomMap):
  """A uniformly placed (height, width) crop: training at native resolution.

  Like the flips, its position comes from grain's per-record generator, so it
  is reproducible and survives a checkpoint/restore.
  """

  height: int
  width: int

  def random_map(self, example, rng: np.random.Generator):
    image = example["image"]
    top = int(rng.integers(0, image.shape[0] - self.height + 1))
    left = int(rng.integers(0, image.shape[1] - self.width + 1))
    crop = image[top : top + self.height, left : left + self.width]
    return {**example, "image": np.ascontiguousarray(crop)}


@dataclasses.dataclass(frozen=True)
class Tiles(grain.transforms.Map):
  """(H, W, 3) -> (tiles, height, width, 3), the grid of `tiles.grid`: how a
  network trained on crops sees a whole image in evaluation."""

  height: int
  width: int

  def map(self, example):
    return {**example, "image": tiles.cut(example["image"], self.height, self.width)}


class RandomFlips(grain.transforms.RandomMap):
  """Independent horizontal and vertical flips, each with probability 1/2.

  grain hands every record its own generator seeded from (seed, position), so
  the flips are reproducible and survive a checkpoint/restore.
  """

  def random_map(self, example, rng: np.random.Generator):
    image = example["image"]
    flip_h, flip_v = rng.random(2) < 0.5
    if flip_h:
      image = image[:, ::-1]
    if flip_v:
      image = image[::-1]
    return {**example, "image": np.ascontiguousarray(image)}
