"""The synthetic IQA dataset: a grain random-access source, deterministic per index.

Example i of a split is generated from (seed, split, i) alone, so any worker
or process can produce any example, a resumed run sees the same images, and
nothing is stored. Each example is a clean procedural scene degraded by 0 to
`max_distortions` distortion families at random strengths; its label is the
MS-SSIM of the degraded image (after 8-bit quantisation, i.e. exactly the
pixels the model sees) against the clean scene, stretched to spread over
0..1 (see `label_from_ms_ssim`).
"""

import dataclasses

import numpy as np

from mobileiqa_jax.data.synthetic import distortions, msssim, scenes

SPLIT_IDS = {"train": 0, "validation": 1, "test": 2}
# MS-SSIM is computed on images no larger than this (halving bigger ones),
# which keeps 4K generation affordable; the measure is multi-scale already.
_MAX_SCORED_SIDE = 1024
# MS-SSIM at or below this is labelled 0: it is already severe damage.
_FLOOR = 0.5


def label_from_ms_ssim(score: float) -> float:
  """Maps MS-SSIM onto 0..1: 1 - sqrt((1 - score) / (1 - 0.5)), clipped.

  MS-SSIM is lenient (most visible damage scores above 0.9); the square root
  of the dissimilarity spreads the labels over the whole 0..1 range, while
  keeping the order, which is all SRCC looks at.
  """
  dissimilarity = max(0.0, 1.0 - score) / (1.0 - _FLOOR)
  return float(np.clip(1.0 - np.sqrt(dissimilarity), 0.0, 1.0))


def _shrink_for_scoring(image: np.ndarray) -> np.ndarray:
  while max(image.shape[:2]) > _MAX_SCORED_SIDE:
    image = np.moveaxis(msssim.halve(np.moveaxis(image, -1, 0)), 0, -1)
  return image


def generate(
  seed: int,
  split: str,
  index: int,
  height: int,
  width: int,
  *,
  clean_fraction: float = 0.05,
  max_distortions: int = 2,
) -> dict:
  """Generates one example.

  Args:
    seed: the dataset seed.
    split: 'train', 'validation' or 'test' (disjoint random streams).
    index: the example's index within the split.
    height, width: the image size.
    clean_fraction: probability of an undistorted image (label 1).
    max_distortions: at most this many families are stacked.

  Returns:
    {'image': (height, width, 3) uint8, 'label': float32 in 0..1,
     'mos': the raw MS-SSIM, 'name': str, 'distortions': str}.
  """
  rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
  clean = scenes.render_scene(rng, height, width)
  applied = []
  distorted = clean
  if rng.random() >= clean_fraction:
    count = int(rng.integers(1, max_distortions + 1))
    names = sorted(distortions.FAMILIES)
    for family in rng.choice(names, size=count, replace=False):
      # Strengths lean mild, as most real photos are only mildly damaged.
      strength = float(rng.beta(1.2, 1.6))
      distorted = distortions.FAMILIES[family](distorted, rng, strength)
      applied.append(f"{family}:{strength:.2f}")
  image = (np.clip(distorted, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
  if applied:
    score = msssim.ms_ssim(
      _shrink_for_scoring(clean), _shrink_for_scoring(image.astype(np.float32) / 255.0)
    )
  else:
    score = 1.0
  return {
    "image": image,
    "label": np.float32(label_from_ms_ssim(score)),
    "mos": np.float32(score),
    "name": f"synthetic-{seed}-{split}-{index}",
    "distortions": ",".join(applied),
  }


@dataclasses.dataclass(frozen=True)
class SyntheticSource:
  """A grain random-access source of generated examples.

  Attributes:
    seed: the dataset seed.
    split: 'train', 'validation' or 'test'.
    num_examples: the split's length.
    height, width: generated image size.
    clean_fraction, max_distortions: see `generate`.
  """

  seed: int
  split: str
  num_examples: int
  height: int
  width: int
  clean_fraction: float = 0.05
  max_distortions: int = 2

  def __post_init__(self):
    if self.split not in SPLIT_IDS:
      raise ValueError(f"split must be one of {sorted(SPLIT_IDS)}, got {self.split!r}")

  def __len__(self) -> int:
    return self.num_examples

  def __getitem__(self, index: int) -> dict:
    if not 0 <= index < self.num_examples:
      raise IndexError(f"index {index} out of range for {self.num_examples} examples")
    example = generate(
      self.seed,
      self.split,
      int(index),
      self.height,
      self.width,
      clean_fraction=self.clean_fraction,
      max_distortions=self.max_distortions,
    )
    del example["distortions"]
    return example
