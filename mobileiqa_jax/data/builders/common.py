"""What every public-set builder shares: features, file checks, example writing.

A builder reads the owner's metadata into `Entry` rows (one per image, with
its raw MOS, its 0..1 label and its official split, or FULL when the set has
none) and writes ArrayRecord files with the image file's bytes untouched, so
grain reads them back without TensorFlow and decoding happens in the pipeline.
Examples keep the metadata's order (shuffling is disabled), so a split's
indices mean the same thing on every machine and the seeded random split is
reproducible.
"""

import abc
from collections.abc import Iterable, Sequence
import csv
import dataclasses
import logging
import os
import pathlib

import numpy as np
import tensorflow_datasets as tfds

from mobileiqa_jax import errors
from mobileiqa_jax.data import decode, labels, preprocess

# The single split of sets without an official one; 'all' is taken by TFDS.
FULL = "full"


class MissingDataError(errors.MissingInput):
  """A file or folder of a manually downloaded dataset is not where expected."""


@dataclasses.dataclass(frozen=True)
class Entry:
  """One image of a dataset, as its metadata describes it."""

  name: str
  path: pathlib.Path
  mos: float
  label: float
  split: str


def require(path: pathlib.Path, what: str, instructions: str) -> pathlib.Path:
  """Returns `path`, or fails saying what was expected there and how to get it."""
  if not path.exists():
    raise MissingDataError(f"expected {what} at {path}, which does not exist.\n{instructions}")
  return path


def read_csv_rows(path: pathlib.Path, columns: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
  """Reads a CSV as (line number, row) pairs, checking the columns exist."""
  with open(path, newline="", encoding="utf-8-sig") as file:
    reader = csv.DictReader(file)
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
      raise ValueError(f"{path}: missing column(s) {missing}; found {reader.fieldnames}")
    # Line 1 is the header.
    return [(line, row) for line, row in enumerate(reader, start=2)]


def read_xlsx_rows(
  path: pathlib.Path, columns: Sequence[str]
) -> list[tuple[int, dict[str, object]]]:
  """Reads the first sheet of an .xlsx as (row number, row) pairs.

  The first row is the header; reading stops at the first row whose first
  requested column is empty (the owners' sheets carry notes below the table).
  """
  import openpyxl  # pylint: disable=g-import-not-at-top  # only builders need it

  workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
  try:
    rows = workbook.worksheets[0].iter_rows(values_only=True)
    header = [str(h).strip() if h is not None else "" for h in next(rows, ())]
    missing = [c for c in columns if c not in header]
    if missing:
      raise ValueError(f"{path}: missing column(s) {missing}; found {header}")
    result = []
    for number, values in enumerate(rows, start=2):
      row = dict(zip(header, values))
      if row.get(columns[0]) in (None, ""):
        break
      result.append((number, row))
    return result
  finally:
    workbook.close()


def parse_mos(value, where: str) -> float:
  """A MOS cell as a float, or an error naming where it is."""
  try:
    return float(value)
  except (TypeError, ValueError):
    raise labels.LabelRangeError(f"{where}: MOS {value!r} is not a number") from None


def index_files(root: pathlib.Path) -> dict[str, pathlib.Path]:
  """Maps every file name under `root` to its path (first found wins)."""
  found = {}
  for folder, _, names in sorted(os.walk(root)):
    for name in sorted(names):
      found.setdefault(name, pathlib.Path(folder) / name)
  return found


class IqaBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the public-set builders; subclasses implement `read_entries`.

  Args (beyond TFDS's data_dir etc.):
    skip_bad_images: skip unreadable, truncated or missing images, counting
      them in `info.metadata['skipped_images']`, instead of failing on the
      first one.
    stored_size: None stores each file's bytes as distributed. (H, W) stores
      each image resized to H x W as the pipeline resizes it (bicubic), as PNG:
      lossless, so training reads exactly the pixels it would get from the
      original, without decoding a 4K JPEG every epoch. Built as the TFDS
      config 'HxW', beside the original form (data_dir/NAME/HxW/VERSION).
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  DESCRIPTION = ""
  HOMEPAGE = ""
  CITATION = ""
  # Whether the set ships its own train/validation/test assignment.
  HAS_OFFICIAL_SPLIT = False

  def __init__(
    self, *, skip_bad_images: bool = False, stored_size: Sequence[int] | None = None, **kwargs
  ):
    self._skip_bad_images = skip_bad_images
    self._stored_size = tuple(stored_size) if stored_size else None
    if self._stored_size:
      height, width = self._stored_size
      kwargs["config"] = tfds.core.BuilderConfig(
        name=f"{height}x{width}",
        description=f"images resized (bicubic) to {height}x{width}, stored as PNG",
      )
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      description=self.DESCRIPTION,
      homepage=self.HOMEPAGE,
      citation=self.CITATION,
      features=tfds.features.FeaturesDict(
        {
          # The file's bytes as distributed: decoding (EXIF, CMYK, 16 bit)
          # is the pipeline's job, and re-encoding would alter the pixels.
          "image": tfds.features.Tensor(shape=(), dtype=np.object_),
          "name": tfds.features.Text(),
          "mos": tfds.features.Scalar(dtype=np.float32),
          "label": tfds.features.Scalar(dtype=np.float32),
        }
      ),
      disable_shuffling=True,
      metadata=tfds.core.MetadataDict(),
    )

  @abc.abstractmethod
  def read_entries(self, manual_dir: pathlib.Path) -> list[Entry]:
    """Reads the owner's metadata into entries, validating labels."""

  def _split_generators(self, dl_manager):
    manual_dir = pathlib.Path(dl_manager.manual_dir)
    entries = self.read_entries(manual_dir)
    by_split: dict[str, list[Entry]] = {}
    for entry in entries:
      by_split.setdefault(entry.split, []).append(entry)
    mos = np.asarray([e.mos for e in entries])
    self.info.metadata["num_entries"] = len(entries)
    self.info.metadata["mos_min"] = float(mos.min())
    self.info.metadata["mos_max"] = float(mos.max())
    self.info.metadata["skipped_images"] = {}
    return {split: self._generate_examples(split, rows) for split, rows in by_split.items()}

  def _generate_examples(self, split: str, entries: Iterable[Entry]):
    skipped = []
    for entry in entries:
      try:
        try:
          data = entry.path.read_bytes()
        except OSError as error:
          raise decode.BadImageError(f"cannot read image {str(entry.path)!r}: {error}") from error
        if self._stored_size:
          image = decode.decode_rgb(data, str(entry.path))
          data = decode.encode_png(preprocess.resize_bicubic(image, *self._stored_size))
        else:
          decode.check_image(data, str(entry.path))
      except decode.BadImageError as error:
        if not self._skip_bad_images:
          raise decode.BadImageError(
            f"{error}\n(pass skip_bad_images to leave such files out)"
          ) from error
        logging.warning("skipping %s", error)
        skipped.append(entry.name)
        self.info.metadata["skipped_images"][split] = list(skipped)
        continue
      yield (
        entry.name,
        {
          "image": data,
          "name": entry.name,
          "mos": entry.mos,
          "label": entry.label,
        },
      )
