"""UHD-IQA: 6,073 4K photos with quality MOS in 0..1 and an official split."""

import pathlib

from mobileiqa_jax.data import labels
from mobileiqa_jax.data.builders import common

_INSTRUCTIONS = """\
Request UHD-IQA from its owners (University of Konstanz, MMSP group):
https://database.mmsp-kn.de/uhd-iqa-benchmark-database.html
Unpack it into the manual folder so that it holds the metadata CSV (any name
ending in .csv with columns image_name, quality_mos and set; the release
calls it uhd-iqa-metadata.csv) and the images, in any subfolders (the release
has challenge/training, challenge/validation, challenge/test)."""

_SPLITS = {
  "training": "train",
  "train": "train",
  "validation": "validation",
  "val": "validation",
  "valid": "validation",
  "test": "test",
  "testing": "test",
}
_COLUMNS = ("image_name", "quality_mos", "set")


def _find_metadata(manual_dir: pathlib.Path) -> pathlib.Path:
  preferred = manual_dir / "uhd-iqa-metadata.csv"
  if preferred.exists():
    return preferred
  for candidate in sorted(manual_dir.rglob("*.csv")):
    with open(candidate, encoding="utf-8-sig") as file:
      header = file.readline().strip().split(",")
    if all(c in header for c in _COLUMNS):
      return candidate
  return common.require(
    preferred, "the UHD-IQA metadata CSV (image_name, quality_mos, set)", _INSTRUCTIONS
  )


class UhdIqa(common.IqaBuilder, skip_registration=True):
  """UHD-IQA (Hosu et al., 2024); labels are quality_mos as given (0..1)."""

  name = "uhd_iqa"
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
  DESCRIPTION = "UHD-IQA benchmark database: 6,073 UHD-1 (4K) photos rated for quality."
  HOMEPAGE = "https://database.mmsp-kn.de/uhd-iqa-benchmark-database.html"
  CITATION = (
    "Hosu, Agnolucci, Wiedemann, Saupe et al. UHD-IQA Benchmark Database: "
    "Pushing the Boundaries of Blind Photo Quality Assessment. ECCV Workshops 2024."
  )
  HAS_OFFICIAL_SPLIT = True

  def read_entries(self, manual_dir):
    common.require(manual_dir, "the UHD-IQA folder", _INSTRUCTIONS)
    metadata = _find_metadata(manual_dir)
    files = common.index_files(manual_dir)
    entries = []
    for line, row in common.read_csv_rows(metadata, _COLUMNS):
      where = f"{metadata} line {line} ({row['image_name']})"
      mos = common.parse_mos(row["quality_mos"], where)
      labels.check_range([mos], 0.0, 1.0, [where])
      split = _SPLITS.get(row["set"].strip().lower())
      if split is None:
        raise ValueError(f"{where}: unknown set {row['set']!r}; expected one of {sorted(_SPLITS)}")
      name = row["image_name"].strip()
      path = files.get(name, manual_dir / name)
      entries.append(common.Entry(name=name, path=path, mos=mos, label=mos, split=split))
    return entries
