"""Random-access sources (len + getitem) that the grain loaders read.

All of them yield raw records in the form `preprocess` expects: a dict with
`image` (encoded bytes or a uint8 array), `label` (0..1), `mos` (raw) and
`name` (str). Their reprs are stable and describe the data, because grain
checks them when an iterator state is restored.
"""

from collections.abc import Sequence
import csv
import hashlib
import io
import logging

from etils import epath
import numpy as np

from mobileiqa_jax import errors
from mobileiqa_jax.data import decode, labels, splits


def _digest(indices: np.ndarray) -> str:
  return hashlib.sha1(np.ascontiguousarray(indices, np.int64).tobytes()).hexdigest()[:12]


def _as_str(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class IndexedSource:
  """Selected examples of one or more concatenated sources.

  Args:
    parts: random-access sources, read as if concatenated in this order.
    indices: positions in the concatenation, in the order to expose them
      (default: all).
  """

  def __init__(self, parts: Sequence, indices: np.ndarray | None = None):
    self._parts = list(parts)
    self._offsets = np.cumsum([0] + [len(p) for p in self._parts])
    total = int(self._offsets[-1])
    self._indices = np.arange(total) if indices is None else np.asarray(indices, np.int64)
    if len(self._indices) and (self._indices.min() < 0 or self._indices.max() >= total):
      raise ValueError(f"indices out of range for {total} examples")

  def __len__(self) -> int:
    return len(self._indices)

  def __getitem__(self, index: int) -> dict:
    position = int(self._indices[index])
    part = int(np.searchsorted(self._offsets, position, side="right")) - 1
    record = dict(self._parts[part][position - int(self._offsets[part])])
    record["name"] = _as_str(record.get("name", ""))
    return record

  def __repr__(self) -> str:
    return f"IndexedSource(parts={self._parts!r}, n={len(self)}, indices={_digest(self._indices)})"


class PaddedSource:
  """A source extended to `length` with padding records (valid=False).

  Evaluation pads the last global batch this way, so every process yields the
  same number of batches and every real example is seen exactly once.
  """

  def __init__(self, source, length: int):
    if length < len(source):
      raise ValueError(f"cannot pad {len(source)} examples down to {length}")
    self._source = source
    self._length = length

  def __len__(self) -> int:
    return self._length

  def __getitem__(self, index: int) -> dict:
    if index < len(self._source):
      return {**self._source[index], "valid": True}
    return {
      "image": None,
      "label": np.float32(0.0),
      "mos": np.float32(0.0),
      "name": "",
      "valid": False,
    }

  def __repr__(self) -> str:
    return f"PaddedSource({self._source!r}, length={self._length})"


def _image_path(root: epath.Path, written: str) -> epath.Path:
  """A CSV row's image: a URL or absolute path as written, else under `root`."""
  return epath.Path(written) if "://" in written else root / written


_CSV_SPLITS = {
  "train": splits.TRAIN,
  "training": splits.TRAIN,
  "validation": splits.VALIDATION,
  "val": splits.VALIDATION,
  "valid": splits.VALIDATION,
  "test": splits.TEST,
  "testing": splits.TEST,
}


class CsvSource:
  """ "Your own data": images listed in a CSV with their MOS.

  The CSV has a header with columns `path` and `mos`, and optionally `split`
  (train/validation/test). Relative paths are resolved against `image_root`
  (default: the CSV's folder). Images are read from disk on access; nothing
  needs building.

  Args:
    csv_path: the CSV file.
    split: 'train', 'validation' or 'test'.
    image_root: folder relative paths start from ('' = the CSV's folder).
    mos_range: (low, high) of the MOS scale: values outside fail, labels are
      scaled from it to 0..1. Empty: labels are min-max scaled over the whole
      CSV (all splits), as the paper does for public sets.
    split_mode: 'official' uses the CSV's split column; 'random' makes the
      seeded train/validation/test split (`splits.random_split`).
    split_seed, test_fraction, validation_fraction: of the random split.
    skip_bad_images: leave out missing or undecodable images (decoding each
      once now, which takes a while for big sets) instead of failing.
  """

  def __init__(
    self,
    csv_path: str,
    split: str,
    *,
    image_root: str = "",
    mos_range: Sequence[float] = (),
    split_mode: str = "random",
    split_seed: int = 0,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.1,
    skip_bad_images: bool = False,
  ):
    # epath, not pathlib: the CSV and its images may be on gs:// (a pod's
    # shared bucket), whose scheme pathlib would collapse.
    path = epath.Path(csv_path).expanduser()
    if not csv_path or not path.is_file():
      raise errors.MissingInput(
        f"expected the dataset CSV at {str(path)!r} (data.csv), which does not exist. "
        "Write a CSV with a header `path,mos[,split]`, one image per row, and set "
        "data.csv to it (data.image_root to the image folder if paths are relative)."
      )
    root = epath.Path(image_root).expanduser() if image_root else path.parent
    # Bytes first: epath opens text as plain UTF-8, and a CSV saved by a
    # spreadsheet often starts with a byte-order mark.
    text = path.read_bytes().decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = reader.fieldnames or []
    if "path" not in columns or "mos" not in columns:
      raise errors.InvalidInput(f"{path}: needs columns 'path' and 'mos', found {columns}")
    rows = list(enumerate(reader, start=2))
    if not rows:
      raise errors.InvalidInput(f"{path}: no rows")
    wheres = [f"{path} line {line} ({row['path']})" for line, row in rows]
    values = []
    for (_, row), where in zip(rows, wheres):
      try:
        values.append(float(row["mos"]))
      except (TypeError, ValueError):
        raise labels.LabelRangeError(f"{where}: MOS {row['mos']!r} is not a number") from None
    if mos_range:
      low, high = (float(v) for v in mos_range)
      try:
        mos = labels.check_range(values, low, high, wheres)
      except labels.LabelRangeError as error:
        raise labels.LabelRangeError(
          f"{error}; set data.csv_mos_range to your scale's (low, high), or to () "
          "to min-max scale over the CSV"
        ) from None
      scaled = labels.range_scale(mos, low, high)
    else:
      mos = labels.check_range(values, -np.inf, np.inf, wheres)
      scaled = labels.min_max_scale(mos)

    if split_mode == "official":
      if "split" not in columns:
        raise errors.InvalidInput(
          f"{path}: split='official' needs a 'split' column; add one or use split='random'"
        )
      chosen = []
      for i, ((_, row), where) in enumerate(zip(rows, wheres)):
        value = _CSV_SPLITS.get(row["split"].strip().lower())
        if value is None:
          raise errors.InvalidInput(
            f"{where}: unknown split {row['split']!r}; expected one of {sorted(_CSV_SPLITS)}"
          )
        if value == split:
          chosen.append(i)
      chosen = np.asarray(chosen, np.int64)
    elif split_mode == "random":
      chosen = splits.random_split(len(rows), split_seed, split, test_fraction, validation_fraction)
    else:
      raise errors.InvalidInput(f"split must be 'official' or 'random', got {split_mode!r}")

    self._csv = str(path)
    self._split = split
    self._paths, self._mos, self._labels = [], [], []
    self.skipped: list[str] = []
    for i in chosen:
      _, row = rows[i]
      image_path = _image_path(root, row["path"])
      if not image_path.is_file():
        if not skip_bad_images:
          raise errors.MissingInput(f"{wheres[i]}: image {str(image_path)!r} does not exist")
        self.skipped.append(str(image_path))
        continue
      if skip_bad_images:
        try:
          decode.check_image(image_path.read_bytes(), str(image_path))
        except decode.BadImageError:
          self.skipped.append(str(image_path))
          continue
      self._paths.append(str(image_path))
      self._mos.append(float(mos[i]))
      self._labels.append(float(scaled[i]))
    if self.skipped:
      logging.warning(
        "%s: skipped %d unreadable image(s) of split %s", path, len(self.skipped), split
      )
    if not self._paths:
      raise errors.InvalidInput(f"{path}: split {split!r} has no images")

  def __len__(self) -> int:
    return len(self._paths)

  def __getitem__(self, index: int) -> dict:
    path = self._paths[index]
    return {
      "image": epath.Path(path).read_bytes(),
      "label": np.float32(self._labels[index]),
      "mos": np.float32(self._mos[index]),
      "name": path,
    }

  def __repr__(self) -> str:
    return (
      f"CsvSource(csv={self._csv!r}, split={self._split!r}, n={len(self)}, "
      f"paths={hashlib.sha1(chr(0).join(self._paths).encode()).hexdigest()[:12]})"
    )
