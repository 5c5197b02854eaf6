"""BID (Blurred Image Database): 586 photos with blur, grades 0..5."""

from mobileiqa_jax.data import labels
from mobileiqa_jax.data.builders import common

_INSTRUCTIONS = """\
Download BID from the authors (Ciancio et al., UFRJ; the ImageDatabase.zip
linked from https://www.lps.ufrj.br/profs/eduardo/ImageDatabase.htm) and unpack
it so that the manual folder holds
  <manual_dir>/DatabaseGrades.xlsx
  <manual_dir>/DatabaseImage0001.JPG ... DatabaseImage0586.JPG"""

_NUMBER, _GRADE = "Image Number", "Average Subjective Grade"


class Bid(common.IqaBuilder, skip_registration=True):
  """BID (Ciancio et al., 2011); labels are the grades min-max scaled to 0..1."""

  name = "bid"
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
  DESCRIPTION = "BID: 586 naturally blurred photos with average subjective grades (0..5)."
  HOMEPAGE = "https://www.lps.ufrj.br/profs/eduardo/ImageDatabase.htm"
  CITATION = (
    "Ciancio, da Costa, da Silva, Said, Samadani, Obrador. No-Reference Blur "
    "Assessment of Digital Pictures Based on Multifeature Classifiers. IEEE TIP 2011."
  )

  def read_entries(self, manual_dir):
    common.require(manual_dir, "the BID folder", _INSTRUCTIONS)
    sheet = common.require(manual_dir / "DatabaseGrades.xlsx", "the BID grades", _INSTRUCTIONS)
    rows = common.read_xlsx_rows(sheet, (_NUMBER, _GRADE))
    names, wheres = [], []
    for number, row in rows:
      where = f"{sheet} row {number}"
      try:
        names.append(f"DatabaseImage{int(row[_NUMBER]):04d}.JPG")
      except (TypeError, ValueError):
        raise ValueError(f"{where}: image number {row[_NUMBER]!r} is not an integer") from None
      wheres.append(f"{where} ({names[-1]})")
    mos = labels.check_range(
      [common.parse_mos(row[_GRADE], where) for (_, row), where in zip(rows, wheres)],
      0.0,
      5.0,
      wheres,
    )
    scaled = labels.min_max_scale(mos)
    return [
      common.Entry(name=n, path=manual_dir / n, mos=float(m), label=float(s), split=common.FULL)
      for n, m, s in zip(names, mos, scaled)
    ]
