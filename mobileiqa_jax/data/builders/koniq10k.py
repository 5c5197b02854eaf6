"""KonIQ-10k: 10,073 in-the-wild photos, MOS 1..5, with an official split."""

from mobileiqa_jax.data import labels
from mobileiqa_jax.data.builders import common

_INSTRUCTIONS = """\
Download KonIQ-10k from https://database.mmsp-kn.de/koniq-10k-database.html :
koniq10k_distributions_sets.csv and the 1024x768 images (koniq10k_1024x768.zip).
Put them into the manual folder as
  <manual_dir>/koniq10k_distributions_sets.csv
  <manual_dir>/1024x768/<image_name>.jpg"""

_SPLITS = {"training": "train", "train": "train", "validation": "validation", "test": "test"}


class Koniq10k(common.IqaBuilder, skip_registration=True):
  """KonIQ-10k (Hosu et al., 2020); labels are the MOS min-max scaled to 0..1."""

  name = "koniq10k"
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
  DESCRIPTION = "KonIQ-10k: 10,073 in-the-wild images with 1..5 MOS from 120 ratings each."
  HOMEPAGE = "https://database.mmsp-kn.de/koniq-10k-database.html"
  CITATION = (
    "Hosu, Lin, Sziranyi, Saupe. KonIQ-10k: An Ecologically Valid Database for "
    "Deep Learning of Blind Image Quality Assessment. IEEE TIP 2020."
  )
  HAS_OFFICIAL_SPLIT = True

  def read_entries(self, manual_dir):
    common.require(manual_dir, "the KonIQ-10k folder", _INSTRUCTIONS)
    metadata = common.require(
      manual_dir / "koniq10k_distributions_sets.csv", "the KonIQ-10k metadata", _INSTRUCTIONS
    )
    images = common.require(manual_dir / "1024x768", "the KonIQ-10k image folder", _INSTRUCTIONS)
    rows = common.read_csv_rows(metadata, ("image_name", "MOS", "set"))
    wheres = [f"{metadata} line {line} ({row['image_name']})" for line, row in rows]
    mos = labels.check_range(
      [common.parse_mos(row["MOS"], where) for (_, row), where in zip(rows, wheres)],
      1.0,
      5.0,
      wheres,
    )
    scaled = labels.min_max_scale(mos)
    entries = []
    for (_, row), where, value, label in zip(rows, wheres, mos, scaled):
      split = _SPLITS.get(row["set"].strip().lower())
      if split is None:
        raise ValueError(f"{where}: unknown set {row['set']!r}")
      name = row["image_name"].strip()
      entries.append(
        common.Entry(
          name=name, path=images / name, mos=float(value), label=float(label), split=split
        )
      )
    return entries
