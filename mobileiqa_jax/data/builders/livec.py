"""LIVE In the Wild Image Quality Challenge: 1,162 phone photos, MOS 0..100."""

import numpy as np
import scipy.io

from mobileiqa_jax.data import labels
from mobileiqa_jax.data.builders import common

_INSTRUCTIONS = """\
Request the LIVE In the Wild Image Quality Challenge Database (ChallengeDB_release)
from https://live.ece.utexas.edu/research/ChallengeDB/index.html and unpack it so
that the manual folder holds
  <manual_dir>/Data/AllImages_release.mat
  <manual_dir>/Data/AllMOS_release.mat
  <manual_dir>/Images/<image files>"""

# The release lists 7 training images (t1..t7.bmp, under Images/trainingImages)
# before the 1,162 test images; the paper, like the reference code, skips them.
NUM_SKIPPED = 7


def _names(cell_array: np.ndarray) -> list[str]:
  """File names from a MATLAB cell array of strings, as scipy loads it."""
  names = []
  for cell in np.ravel(cell_array):
    value = cell
    while isinstance(value, np.ndarray):
      value = value.ravel()[0]
    names.append(str(value).strip())
  return names


class Livec(common.IqaBuilder, skip_registration=True):
  """LIVE Challenge (Ghadiyaram & Bovik, 2016); labels are the MOS min-max scaled."""

  name = "livec"
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
  DESCRIPTION = "LIVE In the Wild Image Quality Challenge Database (1,162 images, MOS 0..100)."
  HOMEPAGE = "https://live.ece.utexas.edu/research/ChallengeDB/index.html"
  CITATION = (
    "Ghadiyaram, Bovik. Massive Online Crowdsourced Study of Subjective and "
    "Objective Picture Quality. IEEE TIP 2016."
  )

  def read_entries(self, manual_dir):
    common.require(manual_dir, "the LIVE Challenge folder", _INSTRUCTIONS)
    names_file = common.require(
      manual_dir / "Data" / "AllImages_release.mat", "the LIVE Challenge image list", _INSTRUCTIONS
    )
    mos_file = common.require(
      manual_dir / "Data" / "AllMOS_release.mat", "the LIVE Challenge MOS", _INSTRUCTIONS
    )
    images = common.require(manual_dir / "Images", "the LIVE Challenge image folder", _INSTRUCTIONS)
    names = _names(scipy.io.loadmat(names_file)["AllImages_release"])
    raw = np.ravel(scipy.io.loadmat(mos_file)["AllMOS_release"]).astype(np.float64)
    if len(names) != len(raw):
      raise ValueError(
        f"{names_file} lists {len(names)} images but {mos_file} has {len(raw)} MOS values"
      )
    names, raw = names[NUM_SKIPPED:], raw[NUM_SKIPPED:]
    wheres = [f"{mos_file} entry {i + 1} ({n})" for i, n in enumerate(names, NUM_SKIPPED)]
    mos = labels.check_range(raw, 0.0, 100.0, wheres)
    scaled = labels.min_max_scale(mos)
    return [
      common.Entry(name=n, path=images / n, mos=float(m), label=float(s), split=common.FULL)
      for n, m, s in zip(names, mos, scaled)
    ]
