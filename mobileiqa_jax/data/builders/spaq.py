"""SPAQ: 11,125 smartphone photos, MOS 0..100."""

from mobileiqa_jax.data import labels
from mobileiqa_jax.data.builders import common

_INSTRUCTIONS = """\
Download SPAQ (Smartphone Photography Attribute and Quality) from
https://github.com/h4nwei/SPAQ (links to the images and annotations) and arrange
the manual folder as
  <manual_dir>/Annotations/MOS_and_Image_attribute_scores.xlsx
  <manual_dir>/img/<Image name>   (e.g. 00001.jpg)
The original photos are up to 4000x4000; many users resize them (short side
512) first, which this builder accepts as long as the names stay."""


class Spaq(common.IqaBuilder, skip_registration=True):
  """SPAQ (Fang et al., 2020); labels are the MOS min-max scaled to 0..1."""

  name = "spaq"
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
  DESCRIPTION = "SPAQ: 11,125 smartphone photos with MOS (0..100) and attribute scores."
  HOMEPAGE = "https://github.com/h4nwei/SPAQ"
  CITATION = (
    "Fang, Zhu, Zeng, Ma, Wang. Perceptual Quality Assessment of Smartphone Photography. CVPR 2020."
  )

  def read_entries(self, manual_dir):
    common.require(manual_dir, "the SPAQ folder", _INSTRUCTIONS)
    sheet = common.require(
      manual_dir / "Annotations" / "MOS_and_Image_attribute_scores.xlsx",
      "the SPAQ annotations",
      _INSTRUCTIONS,
    )
    images = common.require(manual_dir / "img", "the SPAQ image folder", _INSTRUCTIONS)
    rows = common.read_xlsx_rows(sheet, ("Image name", "MOS"))
    wheres = [f"{sheet} row {number} ({row['Image name']})" for number, row in rows]
    mos = labels.check_range(
      [common.parse_mos(row["MOS"], where) for (_, row), where in zip(rows, wheres)],
      0.0,
      100.0,
      wheres,
    )
    scaled = labels.min_max_scale(mos)
    return [
      common.Entry(
        name=str(row["Image name"]).strip(),
        path=images / str(row["Image name"]).strip(),
        mos=float(m),
        label=float(s),
        split=common.FULL,
      )
      for (_, row), m, s in zip(rows, mos, scaled)
    ]
