"""grain input pipelines for training and evaluation.

`make_source` gives the raw records of a split; `make_loader` turns them into
batches: decode (any mode -> RGB, EXIF upright), bicubic resize to
(data.height, data.width), with data.crop a random crop (training) or the
tiles that cover the image (evaluation), random flips when training, and
batching of this process's part of the global batch, as uint8 (the training
and evaluation steps normalise on the device).

Iterator-state contract: `it = iter(loader)` is a grain DataLoaderIterator.
`it.get_state()` returns bytes (JSON) that fit in a checkpoint; on a fresh
loader made by `make_loader` with the same data config, split, batch size,
`train`, seed, num_epochs and process index/count, and with the same
data.num_workers, `it.set_state(state)` makes the iterator continue with
exactly the batches the saved one would have produced next (grain checks the
sampler, the source and the worker count and refuses a mismatched state).
Each process saves and restores its own state.
"""

import math
import sys

from absl import flags
import grain
import jax
import ml_collections

from mobileiqa_jax import errors
from mobileiqa_jax.data import datasets, preprocess, sources, splits
from mobileiqa_jax.data.synthetic import source as synthetic_source

# Storage order of the public sets' TFDS splits; the random split permutes
# their concatenation, so this order is part of its definition.
_STORED_SPLITS = (splits.TRAIN, splits.VALIDATION, splits.TEST, "full")


def _public_source(data_cfg: ml_collections.ConfigDict, split: str):
  # TFDS is only imported for the public sets.
  from mobileiqa_jax.data import build  # pylint: disable=g-import-not-at-top

  stored_size = tuple(data_cfg.get("stored_size", ()))
  if stored_size and stored_size != (data_cfg.height, data_cfg.width):
    raise errors.InvalidInput(
      f"data.stored_size {stored_size} differs from data.height, data.width "
      f"({data_cfg.height}, {data_cfg.width}): a set stored at its training size is read at "
      "that size; build one for this size or set data.stored_size=()"
    )
  builder = build.load_builder(data_cfg.name, data_cfg.data_dir, stored_size or None)
  stored = [s for s in _STORED_SPLITS if s in builder.info.splits]
  if data_cfg.split == "official":
    if not builder.HAS_OFFICIAL_SPLIT:
      raise ValueError(
        f"dataset {data_cfg.name!r} has no official split; "
        "use data.split='random' (a seeded train/validation/test split)"
      )
    return sources.IndexedSource([builder.as_data_source(split)])
  if data_cfg.split != "random":
    raise ValueError(f"data.split must be 'official' or 'random', got {data_cfg.split!r}")
  parts = [builder.as_data_source(s) for s in stored]
  total = sum(len(p) for p in parts)
  indices = splits.random_split(
    total, data_cfg.split_seed, split, data_cfg.test_fraction, data_cfg.validation_fraction
  )
  return sources.IndexedSource(parts, indices)


class GlobalBatchSampler:
  """One shuffled order of the whole split, cut into global batches, of which
  each process reads its own contiguous slice.

  Global batch k is therefore the same examples, with the same flips, however
  many processes share it: a run on 2 hosts sees exactly the data of a run on
  1 host (so results can be compared, and a run can resume on another
  topology), while every process still reads only the examples it trains on.
  A global batch may straddle an epoch boundary; each epoch is reshuffled.

  grain's workers take every `num_workers`-th sampler index and batch
  consecutive ones, then their batches are interleaved; indices are laid out
  so that this still yields the slices of global batches 0, 1, 2, ... in
  order. With a finite num_epochs, whole rounds of batches (one per worker)
  are kept.
  """

  def __init__(
    self,
    num_records: int,
    global_batch_size: int,
    process_index: int,
    process_count: int,
    *,
    seed: int,
    num_epochs: int | None,
    num_workers: int = 0,
  ):
    self._global = global_batch_size
    self._local = global_batch_size // process_count
    self._process_index = process_index
    self._workers = max(1, num_workers)
    self._order = grain.samplers.IndexSampler(
      num_records, shuffle=True, num_epochs=num_epochs, seed=seed
    )
    self._repr = (
      f"GlobalBatchSampler({num_records}, {global_batch_size}, {process_index}, "
      f"{process_count}, seed={seed}, num_epochs={num_epochs}, "
      f"num_workers={num_workers})"
    )
    if num_epochs is None:
      self._length = sys.maxsize
    else:
      batches = num_records * num_epochs // global_batch_size
      self._length = batches - batches % self._workers
      self._length *= self._local

  def __len__(self) -> int:
    return self._length

  def __repr__(self) -> str:
    return self._repr

  def __getitem__(self, index: int):
    if index < 0 or index >= self._length:
      raise IndexError(f"index {index} out of range for {self._repr}")
    # Worker `index % W` makes its (r // B)-th batch from this index: that
    # batch comes out as local batch n, at offset r % B.
    worker, r = index % self._workers, index // self._workers
    batch = (r // self._local) * self._workers + worker
    offset = r % self._local
    position = batch * self._global + self._process_index * self._local + offset
    chosen = self._order[position]  # its rng (the flips) depends on the global position
    return grain.RecordMetadata(index=index, record_key=chosen.record_key, rng=chosen.rng)


def make_source(data_cfg: ml_collections.ConfigDict, split: str):
  """The raw records of one split, as a grain random-access source.

  Args:
    data_cfg: the data config (`config.get_config()`).
    split: 'train', 'validation' or 'test'. Sets without an official split
      (LIVE Challenge, SPAQ, BID, a CSV without a split column, or any set
      with data.split='random') are cut by `splits.random_split`: test is the
      paper's held-out 20%, validation comes out of its training 80%. The
      synthetic set has three disjoint generated splits.

  Returns:
    A source with len() and [] yielding dicts with `image` (bytes or uint8
    array), `label` (float, 0..1), `mos` (the raw score) and `name`.
  """
  if split not in splits.SPLITS:
    raise ValueError(f"split must be one of {splits.SPLITS}, got {split!r}")
  name = data_cfg.name
  if name not in datasets.NAMES:
    raise errors.InvalidInput(f"data.name must be one of {datasets.NAMES}, got {name!r}")
  if name == "synthetic":
    synthetic = data_cfg.synthetic
    return synthetic_source.SyntheticSource(
      seed=synthetic.seed,
      split=split,
      num_examples={
        "train": synthetic.num_train,
        "validation": synthetic.num_validation,
        "test": synthetic.num_test,
      }[split],
      height=synthetic.height,
      width=synthetic.width,
      clean_fraction=synthetic.clean_fraction,
      max_distortions=synthetic.max_distortions,
      cache_dir=synthetic.cache_dir,
    )
  if name == "csv":
    return sources.CsvSource(
      data_cfg.csv,
      split,
      image_root=data_cfg.image_root,
      mos_range=tuple(data_cfg.csv_mos_range),
      split_mode=data_cfg.split,
      split_seed=data_cfg.split_seed,
      test_fraction=data_cfg.test_fraction,
      validation_fraction=data_cfg.validation_fraction,
      skip_bad_images=data_cfg.skip_bad_images,
    )
  return _public_source(data_cfg, split)


def crop_size(data_cfg: ml_collections.ConfigDict) -> tuple[int, int] | None:
  """data.crop as (h, w), or None for whole images; checked against the image size."""
  crop = tuple(data_cfg.get("crop", ()) or ())
  if not crop:
    return None
  if len(crop) != 2 or not all(isinstance(c, int) and c > 0 for c in crop):
    raise ValueError(f"data.crop must be () or (height, width) in pixels, got {crop!r}")
  if crop[0] > data_cfg.height or crop[1] > data_cfg.width:
    raise ValueError(
      f"data.crop {crop[0]}x{crop[1]} does not fit in the {data_cfg.height}x{data_cfg.width} "
      "images (data.height x data.width); make the crop smaller or the images larger"
    )
  return crop


def make_loader(
  data_cfg: ml_collections.ConfigDict,
  split: str,
  *,
  global_batch_size: int,
  train: bool,
  seed: int,
  num_epochs: int | None = None,
  process_index: int | None = None,
  process_count: int | None = None,
) -> grain.DataLoader:
  """A grain DataLoader over this process's shard of a split.

  Each process reads only its own part of each batch and yields
  global_batch_size // process_count examples per batch, as dicts of NumPy
  arrays: image uint8 (B, H, W, 3) RGB as decoded, label float32 (B,),
  valid bool (B,). With data.crop = (h, w), training images are (B, h, w, 3)
  random crops and evaluation images (B, tiles, h, w, 3), every image's tiles
  (`tiles.grid`), which `steps.eval_step` scores as their mean.

  Training: the shard is reshuffled every epoch with `seed` (each epoch a new
  order), random horizontal and vertical flips, an incomplete last batch is
  dropped; num_epochs=None repeats forever (batches then run across epoch
  boundaries). Training batches come from `GlobalBatchSampler`: the global
  batch at each step does not depend on the number of processes.

  Evaluation (train=False): one pass, no flips; the split is padded with
  valid=False rows to a multiple of global_batch_size (times num_workers), so
  every process yields the same number of full batches and every real
  example appears exactly once across processes. With num_workers=0 the
  order is the storage order; with workers each batch is assembled by one
  worker from every num_workers-th example, a fixed interleaving.
  `num_epochs` is ignored.

  With workers, arrays arrive as grain SharedMemoryArray (an np.ndarray
  subclass); np.asarray or jax.device_put accept them as they are.

  See the module docstring for the iterator-state contract.

  Args:
    data_cfg: the data config.
    split: 'train', 'validation' or 'test'.
    global_batch_size: examples per step across all processes; must divide by
      process_count.
    train: training or evaluation behaviour (above).
    seed: shuffle and flip seed (a non-negative 32-bit int).
    num_epochs: training epochs (None: repeat forever).
    process_index, process_count: this process and how many there are
      (default: jax.process_index() and jax.process_count()).
  """
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  if global_batch_size % process_count:
    raise ValueError(
      f"global batch {global_batch_size} does not split over {process_count} processes"
    )
  local_batch_size = global_batch_size // process_count
  source = make_source(data_cfg, split)

  operations = [preprocess.DecodeAndResize(data_cfg.height, data_cfg.width)]
  crop = crop_size(data_cfg)
  if crop:
    operations.append(preprocess.RandomCrop(*crop) if train else preprocess.Tiles(*crop))
  if train:
    operations.append(preprocess.RandomFlips())
  # Batches stay uint8: train/steps.py normalises them on the device,
  # which takes a quarter of the bytes to copy there and spares each worker
  # a float32 pass over every image (a quarter of its time at 1231x1907).
  operations.append(grain.transforms.Batch(local_batch_size, drop_remainder=train))

  if train:
    if len(source) < global_batch_size:
      raise ValueError(
        f"split {split!r} has {len(source)} examples, fewer than one global "
        f"batch of {global_batch_size}"
      )
    sampler = GlobalBatchSampler(
      len(source),
      global_batch_size,
      process_index,
      process_count,
      seed=seed,
      num_epochs=num_epochs,
      num_workers=data_cfg.num_workers,
    )
    # The sampler already gives this process its slice of every global batch.
    shard_options = grain.sharding.NoSharding()
  else:
    # grain batches inside each worker, and worker w of W takes every W-th
    # example of the process's shard; padding to a multiple of
    # global_batch_size * W gives every worker whole batches only.
    chunk = global_batch_size * max(1, data_cfg.num_workers)
    padded_length = math.ceil(len(source) / chunk) * chunk
    source = sources.PaddedSource(source, padded_length)
    shard_options = grain.sharding.ShardOptions(process_index, process_count, drop_remainder=False)
    sampler = grain.samplers.IndexSampler(
      len(source), shard_options=shard_options, shuffle=False, num_epochs=1, seed=seed
    )
  if data_cfg.num_workers and not flags.FLAGS.is_parsed():
    # grain's worker pool reads its absl flags; outside absl.app.run (tests,
    # notebooks) they are unparsed and reading them raises. Their defaults
    # are what we want.
    flags.FLAGS.mark_as_parsed()
  return grain.DataLoader(
    data_source=source,
    sampler=sampler,
    operations=operations,
    worker_count=data_cfg.num_workers,
    worker_buffer_size=data_cfg.worker_buffer_size,
    shard_options=shard_options,
  )
