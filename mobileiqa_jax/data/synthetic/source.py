"""The synthetic IQA dataset: a grain random-access source, deterministic per index.

Example i of a split is generated from (seed, split, i) alone, so any worker
or process can produce any example and a resumed run sees the same images.
Each example is a clean dead-leaves scene (`scenes.py`) damaged by 0 to
`max_distortions` families of `distortions.py` (blur, motion blur, three
kinds of sensor noise, resampling, oversharpening, JPEG) at random strengths,
at photographic pixel sizes: the images are crops of photographs, not
shrunk ones.

The label is the MS-SSIM of the damaged image (after 8-bit quantisation, i.e.
exactly the pixels the model sees) against the clean scene, stretched over
0..1 (`label_from_ms_ssim`). It is monotone in visible damage: for a given
scene, more of any family never raises it (tests/data/test_synthetic.py
checks each family), and it is content-aware, as MS-SSIM's contrast and
structure terms are: noise costs a flat sky more than a thicket, blur costs
a sharp scene more than one already out of focus. So the label is not a
function of the distortion alone, and a model has to see the content.

With `cache_dir` set, a split is generated once (about 0.1 s an image at
128 px on one core) and memory-mapped from then on.
"""

import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import pathlib
import shutil
import tempfile
import time

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
  max_distortions: int = 1,
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
    chosen = set(rng.choice(distortions.ORDER, size=count, replace=False))
    for family in [name for name in distortions.ORDER if name in chosen]:
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


log = logging.getLogger(__name__)
# Examples per task when a split is generated on several cores.
_CHUNK = 32

# Bump whenever `generate` changes what it makes, so stale caches are not read.
GENERATOR_VERSION = 2


@dataclasses.dataclass(frozen=True)
class SyntheticSource:
  """A grain random-access source of generated examples.

  Attributes:
    seed: the dataset seed.
    split: 'train', 'validation' or 'test'.
    num_examples: the split's length.
    height, width: generated image size.
    clean_fraction, max_distortions: see `generate`.
    cache_dir: where the split is generated once and then read back (memory
      mapped); '' generates every example each time it is read.
  """

  seed: int
  split: str
  num_examples: int
  height: int
  width: int
  clean_fraction: float = 0.05
  max_distortions: int = 1
  cache_dir: str = ""

  def __post_init__(self):
    if self.split not in SPLIT_IDS:
      raise ValueError(f"split must be one of {sorted(SPLIT_IDS)}, got {self.split!r}")

  def __len__(self) -> int:
    return self.num_examples

  def __getitem__(self, index: int) -> dict:
    if not 0 <= index < self.num_examples:
      raise IndexError(f"index {index} out of range for {self.num_examples} examples")
    index = int(index)
    if self.cache_dir:
      images, labels, scores = self._cached
      return {
        "image": np.asarray(images[index]),
        "label": labels[index],
        "mos": scores[index],
        "name": f"synthetic-{self.seed}-{self.split}-{index}",
      }
    example = self._generate(index)
    del example["distortions"]
    return example

  def _generate(self, index: int) -> dict:
    return generate(
      self.seed,
      self.split,
      index,
      self.height,
      self.width,
      clean_fraction=self.clean_fraction,
      max_distortions=self.max_distortions,
    )

  @property
  def cache_path(self) -> pathlib.Path:
    """The split's cache folder, named by everything that shapes its examples."""
    fields = dataclasses.asdict(self)
    del fields["cache_dir"]
    fields["version"] = GENERATOR_VERSION
    key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
    return pathlib.Path(self.cache_dir).expanduser() / f"{self.split}-{key}"

  @functools.cached_property
  def _cached(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    path = self.cache_path
    if not (path / "labels.npy").exists():
      self._write_cache(path)
    return (
      np.load(path / "images.npy", mmap_mode="r"),
      np.load(path / "labels.npy"),
      np.load(path / "mos.npy"),
    )

  def _write_cache(self, path: pathlib.Path):
    """Generates the split into a private folder, then renames it into place,
    so a reader never sees a half-written cache (and of two processes that
    generate it at once, one simply wins)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    log.info(
      "Generating %d synthetic %s images (%dx%d) once into %s",
      self.num_examples,
      self.split,
      self.height,
      self.width,
      path,
    )
    start = time.perf_counter()
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
      images = np.lib.format.open_memmap(
        staging / "images.npy",
        mode="w+",
        dtype=np.uint8,
        shape=(self.num_examples, self.height, self.width, 3),
      )
      labels = np.zeros(self.num_examples, np.float32)
      scores = np.zeros(self.num_examples, np.float32)
      first = 0
      for chunk in self._generate_chunks():
        last = first + len(chunk["label"])
        images[first:last], labels[first:last], scores[first:last] = (
          chunk["image"],
          chunk["label"],
          chunk["mos"],
        )
        first = last
      images.flush()
      del images
      np.save(staging / "mos.npy", scores)
      np.save(staging / "labels.npy", labels)  # written last: marks the cache complete
      try:
        staging.rename(path)
      except OSError:
        if not (path / "labels.npy").exists():
          raise
    finally:
      shutil.rmtree(staging, ignore_errors=True)
    log.info("Generated %s in %.0f s", path.name, time.perf_counter() - start)

  def _generate_chunks(self):
    """Yields the split's examples in index order, _CHUNK at a time, made on
    every core (in fresh 'spawn' processes: forking a process that runs
    JAX's threads is unsafe)."""
    bounds = [
      (first, min(first + _CHUNK, self.num_examples))
      for first in range(0, self.num_examples, _CHUNK)
    ]
    workers = min(os.cpu_count() or 1, len(bounds))
    if workers == 1:
      yield from map(self._generate_chunk, bounds)
      return
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
      yield from pool.map(self._generate_chunk, bounds)

  def _generate_chunk(self, bounds: tuple[int, int]) -> dict:
    examples = [self._generate(i) for i in range(*bounds)]
    return {key: np.stack([e[key] for e in examples]) for key in ("image", "label", "mos")}

  def __getstate__(self):
    # Workers map the cache themselves instead of receiving a pickled copy.
    state = dict(self.__dict__)
    state.pop("_cached", None)
    return state

  def __setstate__(self, state):
    self.__dict__.update(state)
