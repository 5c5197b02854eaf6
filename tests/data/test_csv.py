"""'Your own data': a CSV of paths and MOS values becomes a dataset."""

import numpy as np
import pytest

from mobileiqa_jax.data import config, labels, pipeline
from tests.data import fakes


def _write(tmp_path, rows, header="path,mos,split"):
  lines = [header] + [",".join(str(v) for v in row) for row in rows]
  (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
  return tmp_path / "data.csv"


def _cfg(csv_path, **overrides):
  cfg = config.get_config()
  cfg.name, cfg.csv = "csv", str(csv_path)
  for key, value in overrides.items():
    cfg[key] = value
  return cfg


@pytest.fixture
def images(tmp_path):
  for i in range(10):
    fakes.write_image(tmp_path / "imgs" / f"{i}.jpg", seed=i)
  return tmp_path


def test_official_split_column_and_range_scaling(images):
  rows = [
    (f"imgs/{i}.jpg", 1 + i * 0.4, "train" if i < 6 else "val" if i < 8 else "test")
    for i in range(10)
  ]
  cfg = _cfg(_write(images, rows), split="official", csv_mos_range=(1.0, 5.0))
  train = pipeline.make_source(cfg, "train")
  assert [len(pipeline.make_source(cfg, s)) for s in ("train", "validation", "test")] == [6, 2, 2]
  record = train[1]
  assert record["name"].endswith("1.jpg")
  np.testing.assert_allclose([record["mos"], record["label"]], [1.4, 0.1], rtol=1e-6)
  assert isinstance(record["image"], bytes)


def test_random_split_and_min_max_without_a_range(images):
  rows = [(images / "imgs" / f"{i}.jpg", 10 * i) for i in range(10)]  # absolute paths
  cfg = _cfg(_write(images, rows, header="path,mos"), split="random", csv_mos_range=())
  train, validation, test = (pipeline.make_source(cfg, s) for s in ("train", "validation", "test"))
  assert (len(train), len(validation), len(test)) == (7, 1, 2)
  all_labels = sorted(float(r["label"]) for r in [*train, *validation, *test])
  np.testing.assert_allclose(all_labels, np.arange(10) / 9, atol=1e-6)


def test_image_root(images):
  rows = [(f"{i}.jpg", 0.5) for i in range(10)]
  cfg = _cfg(_write(images, rows, header="path,mos"), image_root=str(images / "imgs"))
  assert len(pipeline.make_source(cfg, "train")) == 7


def test_bad_inputs(images, tmp_path):
  with pytest.raises(FileNotFoundError, match="missing.csv"):
    pipeline.make_source(_cfg(tmp_path / "missing.csv"), "train")
  rows = [(f"imgs/{i}.jpg", 0.5) for i in range(10)] + [("imgs/3.jpg", 1.7)]
  with pytest.raises(labels.LabelRangeError, match=r"line 12 \(imgs/3.jpg\)"):
    pipeline.make_source(_cfg(_write(images, rows, header="path,mos")), "train")
  rows = [(f"imgs/{i}.jpg", 0.5) for i in range(10)] + [("imgs/gone.jpg", 0.5)]
  cfg = _cfg(_write(images, rows, header="path,mos"), split_seed=1)
  with pytest.raises(FileNotFoundError, match="gone.jpg"):
    [pipeline.make_source(cfg, s) for s in ("train", "validation", "test")]
  (images / "imgs" / "5.jpg").write_bytes(b"garbage")
  cfg.skip_bad_images = True
  kept = sum(len(pipeline.make_source(cfg, s)) for s in ("train", "validation", "test"))
  assert kept == 9


def test_main_reports_a_bad_csv_in_one_line(images, tmp_path):
  import subprocess
  import sys

  from tests.conftest import REPO

  rows = [(f"imgs/{i}.jpg", 7.5 if i == 3 else 3.0) for i in range(10)]
  csv_path = _write(images, rows, header="path,mos")
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "mobileiqa_jax.main",
      "--config=configs/teacher.py:csv,runlocal",
      f"--config.data.csv={csv_path}",
      "--config.data.csv_mos_range=(1.0,5.0)",
      f"--workdir={tmp_path / 'run'}",
    ],
    capture_output=True,
    text=True,
    cwd=REPO,
    timeout=300,
  )
  assert result.returncode == 1, result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ") and "line 5 (imgs/3.jpg): MOS 7.5 is outside" in last
  assert "Traceback" not in result.stderr and "np.float64" not in result.stderr
