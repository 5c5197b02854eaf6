"""Tiny fake copies of the public IQA sets, in their owners' file formats."""

import csv
import pathlib

import numpy as np
import openpyxl
from PIL import Image
import scipy.io


def write_image(path: pathlib.Path, seed: int, size=(40, 30), fmt="JPEG") -> None:
  """A small random-looking photo at `path`."""
  rng = np.random.default_rng(seed)
  width, height = size
  base = rng.integers(0, 256, (height // 5 + 1, width // 5 + 1, 3), dtype=np.uint8)
  image = Image.fromarray(base).resize((width, height), Image.BILINEAR)
  path.parent.mkdir(parents=True, exist_ok=True)
  image.save(path, fmt)


def write_xlsx(path: pathlib.Path, header, rows) -> None:
  workbook = openpyxl.Workbook()
  sheet = workbook.active
  sheet.append(list(header))
  for row in rows:
    sheet.append(list(row))
  path.parent.mkdir(parents=True, exist_ok=True)
  workbook.save(path)


def make_uhd_iqa(root: pathlib.Path, mos=None) -> dict:
  """6 train, 2 validation, 2 test images; MOS given in 0..1."""
  sets = ["training"] * 6 + ["validation"] * 2 + ["test"] * 2
  mos = list(np.linspace(0.2, 0.8, len(sets))) if mos is None else mos
  root.mkdir(parents=True, exist_ok=True)
  with open(root / "uhd-iqa-metadata.csv", "w", newline="") as file:
    writer = csv.writer(file)
    writer.writerow(["image_name", "quality_mos", "set"])
    for i, (split, value) in enumerate(zip(sets, mos)):
      name = f"{1000 + i}.jpg"
      writer.writerow([name, value, split])
      write_image(root / "challenge" / split / name, seed=i)
  return {"train": 6, "validation": 2, "test": 2, "mos": mos}


def make_koniq10k(root: pathlib.Path) -> dict:
  """7 training, 1 validation, 2 test images; MOS in 1..5."""
  sets = ["training"] * 7 + ["validation"] + ["test"] * 2
  mos = [1.5, 2.0, 4.5, 3.0, 2.5, 3.5, 1.2, 4.0, 2.2, 3.3]
  root.mkdir(parents=True, exist_ok=True)
  with open(root / "koniq10k_distributions_sets.csv", "w", newline="") as file:
    writer = csv.writer(file)
    writer.writerow(
      ["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "MOS_zscore", "set"]
    )
    for i, (split, value) in enumerate(zip(sets, mos)):
      name = f"{826373 + i}.jpg"
      writer.writerow([name, 1, 2, 3, 4, 5, 15, value, 0.5, value * 20, split])
      write_image(root / "1024x768" / name, seed=100 + i)
  return {"train": 7, "validation": 1, "test": 2, "mos": mos}


def make_livec(root: pathlib.Path) -> dict:
  """7 skipped training images, then 10 images with MOS in 0..100."""
  names = [f"t{i}.bmp" for i in range(1, 8)] + [f"{i}.JPG" for i in range(100, 110)]
  mos = [50.0] * 7 + [10.0, 20.5, 33.0, 47.0, 55.5, 60.0, 71.0, 80.0, 85.0, 90.0]
  (root / "Data").mkdir(parents=True, exist_ok=True)
  cells = np.empty((len(names), 1), dtype=object)
  for i, name in enumerate(names):
    cells[i, 0] = np.array([name])
  scipy.io.savemat(root / "Data" / "AllImages_release.mat", {"AllImages_release": cells})
  scipy.io.savemat(
    root / "Data" / "AllMOS_release.mat",
    {"AllMOS_release": np.asarray(mos, np.float64).reshape(1, -1)},
  )
  for i, name in enumerate(names):
    folder = root / "Images" / ("trainingImages" if i < 7 else "")
    write_image(folder / name, seed=200 + i, fmt="BMP" if name.endswith(".bmp") else "JPEG")
  return {"full": 10, "mos": mos[7:]}


def make_spaq(root: pathlib.Path, mos=None) -> dict:
  """10 images with MOS in 0..100, annotations in an .xlsx."""
  mos = [12.0, 25.0, 38.5, 41.0, 55.0, 63.0, 70.0, 78.0, 86.0, 94.0] if mos is None else mos
  names = [f"{i:05d}.jpg" for i in range(1, len(mos) + 1)]
  write_xlsx(
    root / "Annotations" / "MOS_and_Image_attribute_scores.xlsx",
    ["Image name", "MOS", "Brightness", "Colorfulness", "Contrast", "Noisiness", "Sharpness"],
    [[n, m, 50, 50, 50, 50, 50] for n, m in zip(names, mos)],
  )
  for i, name in enumerate(names):
    write_image(root / "img" / name, seed=300 + i)
  return {"full": len(mos), "mos": mos}


def make_bid(root: pathlib.Path) -> dict:
  """10 images with grades in 0..5, grades in an .xlsx."""
  grades = [0.5, 1.0, 1.8, 2.2, 2.9, 3.1, 3.6, 4.0, 4.4, 4.8]
  rows = [[i, g, 0.7] for i, g in enumerate(grades, start=1)]
  write_xlsx(
    root / "DatabaseGrades.xlsx", ["Image Number", "Average Subjective Grade", "std"], rows
  )
  for i in range(1, len(grades) + 1):
    write_image(root / f"DatabaseImage{i:04d}.JPG", seed=400 + i)
  return {"full": 10, "mos": grades}


MAKERS = {
  "uhd_iqa": make_uhd_iqa,
  "koniq10k": make_koniq10k,
  "livec": make_livec,
  "spaq": make_spaq,
  "bid": make_bid,
}
