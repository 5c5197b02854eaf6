"""gs:// paths (a pod's shared bucket) reach the file system with their scheme.

A fake bucket serves gs://bucket/... from a local folder through etils'
epath test backend; a path that lost its scheme on the way (pathlib turns
gs://bucket into gs:/bucket) is not in the bucket, so the code under test
fails instead of passing by accident.
"""

import contextlib
import os

from etils import epath
from etils.epath import gpath
import numpy as np
import pytest

from mobileiqa_jax.data import build, config, datasets, pipeline
from tests.data import fakes


@contextlib.contextmanager
def fake_bucket(root, monkeypatch):
  """Serves gs://... from `root`; yields the list of gs:// paths asked for."""
  # With TensorFlow installed epath sends gs:// to tf.io.gfile, past the test
  # backend. Its switch, EPATH_USE_TF=false, is read once per process and
  # cached, so an earlier gs:// path in the same pytest worker would already
  # have chosen TensorFlow: patch the cached check itself.
  monkeypatch.setattr(gpath, "_is_tf_installed", lambda: False)
  asked = []

  def local(path):
    path = os.fspath(path)
    if path.startswith("gs://"):
      asked.append(path)
      return str(root / path.removeprefix("gs://"))
    return path

  def on_local(original, path, *args, **kwargs):
    return original(local(path), *args, **kwargs)

  with epath.testing.mock_epath(
    open=on_local, exists=on_local, isdir=on_local, stat=on_local, listdir=on_local
  ):
    yield asked


def test_a_csv_and_its_images_are_read_from_the_bucket(tmp_path, monkeypatch):
  folder = tmp_path / "bucket" / "koniq"
  for i in range(6):
    fakes.write_image(folder / "images" / f"{i}.jpg", seed=i)
  # Relative paths resolve against the CSV's folder in the bucket; a row may
  # also name its image by URL.
  rows = [f"images/{i}.jpg,{1 + i * 0.5},train" for i in range(5)]
  rows.append("gs://bucket/koniq/images/5.jpg,3.5,train")
  (folder / "scores.csv").write_text("\ufeffpath,mos,split\n" + "\n".join(rows) + "\n")

  cfg = config.get_config()
  cfg.name, cfg.csv, cfg.split = "csv", "gs://bucket/koniq/scores.csv", "official"
  cfg.csv_mos_range = (1.0, 5.0)
  with fake_bucket(tmp_path, monkeypatch) as asked:
    source = pipeline.make_source(cfg, "train")
    records = [source[i] for i in range(len(source))]
  assert len(records) == 6
  assert [r["name"] for r in records] == [
    *(f"gs://bucket/koniq/images/{i}.jpg" for i in range(5)),
    "gs://bucket/koniq/images/5.jpg",
  ]
  for i, record in enumerate(records):
    assert record["image"] == (folder / "images" / f"{i}.jpg").read_bytes()
  np.testing.assert_allclose([r["label"] for r in records], [0, 0.125, 0.25, 0.375, 0.5, 0.625])
  assert "gs://bucket/koniq/scores.csv" in asked


def test_a_missing_csv_in_the_bucket_is_named_with_its_scheme(tmp_path, monkeypatch):
  (tmp_path / "bucket").mkdir()
  cfg = config.get_config()
  cfg.name, cfg.csv = "csv", "gs://bucket/nowhere.csv"
  with fake_bucket(tmp_path, monkeypatch), pytest.raises(FileNotFoundError) as error:
    pipeline.make_source(cfg, "train")
  assert "'gs://bucket/nowhere.csv'" in str(error.value)


def test_a_data_dir_in_the_bucket_reaches_the_builder_whole(monkeypatch):
  assert build.data_dir_path("gs://bucket/tfds") == "gs://bucket/tfds"
  assert build.data_dir_path("~/tensorflow_datasets") == os.path.expanduser("~/tensorflow_datasets")
  given = []

  class UnbuiltSet:
    MANUAL_DOWNLOAD_INSTRUCTIONS = "download it"

    def __init__(self, data_dir, stored_size):
      given.append(data_dir)
      self.data_dir = f"{data_dir}/koniq10k/1.0.0"

    def is_prepared(self):
      return False

  monkeypatch.setattr(datasets, "builder_class", lambda name: UnbuiltSet)
  with pytest.raises(FileNotFoundError, match="under gs://bucket/tfds/koniq10k"):
    build.load_builder("koniq10k", "gs://bucket/tfds")
  assert given == ["gs://bucket/tfds"]
