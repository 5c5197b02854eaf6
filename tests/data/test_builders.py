"""Each public-set builder on a tiny fake copy in its owner's format."""

import csv
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from mobileiqa_jax.data import build, config, datasets, decode, labels, pipeline
from mobileiqa_jax.data.builders import common
from tests.data import fakes

NAMES = sorted(fakes.MAKERS)
REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  """Every fake set built once: name -> (builder, what the fake holds, data_dir)."""
  root = tmp_path_factory.mktemp("public")
  result = {}
  for name in NAMES:
    expected = fakes.MAKERS[name](root / "manual" / name)
    builder = build.build(name, str(root / "manual" / name), str(root / "tfds"))
    result[name] = (builder, expected, str(root / "tfds"))
  return result


def _data_cfg(name, data_dir, split):
  cfg = config.get_config()
  cfg.name, cfg.data_dir, cfg.split = name, data_dir, split
  return cfg


@pytest.mark.parametrize("name", NAMES)
def test_counts_and_label_scaling(built, name):
  builder, expected, _ = built[name]
  counts = {s: info.num_examples for s, info in builder.info.splits.items()}
  assert counts == {k: v for k, v in expected.items() if k != "mos"}
  records = [r for s in counts for r in builder.as_data_source(s)]
  mos = np.asarray([r["mos"] for r in records], np.float64)
  label = np.asarray([r["label"] for r in records], np.float64)
  np.testing.assert_allclose(np.sort(mos), np.sort(expected["mos"]), rtol=1e-6)
  if name == "uhd_iqa":
    np.testing.assert_allclose(label, mos, rtol=1e-6)  # quality_mos as given
  else:
    np.testing.assert_allclose(label, (mos - mos.min()) / (mos.max() - mos.min()), atol=1e-6)
  # The stored bytes are the owner's file, decodable as is.
  assert decode.decode_rgb(records[0]["image"]).shape == (30, 40, 3)


@pytest.mark.parametrize("name", NAMES)
def test_random_split_is_seeded_train_validation_test(built, name):
  _, expected, data_dir = built[name]
  total = sum(v for k, v in expected.items() if k != "mos")
  cfg = _data_cfg(name, data_dir, "random")
  names = {
    split: [r["name"] for r in pipeline.make_source(cfg, split)]
    for split in ("train", "validation", "test")
  }
  assert len(names["test"]) == round(0.2 * total)
  assert len(names["validation"]) == round(0.1 * total)
  assert len(set().union(*names.values())) == total  # disjoint, and every example in one
  cfg.split_seed += 1
  assert [r["name"] for r in pipeline.make_source(cfg, "train")] != names["train"]


def test_official_splits(built):
  for name in ("uhd_iqa", "koniq10k"):
    _, expected, data_dir = built[name]
    cfg = _data_cfg(name, data_dir, "official")
    for split in ("train", "validation", "test"):
      assert len(pipeline.make_source(cfg, split)) == expected[split]
  with pytest.raises(ValueError, match="no official split"):
    pipeline.make_source(_data_cfg("spaq", built["spaq"][2], "official"), "train")


def test_livec_skips_the_seven_training_images(built):
  builder, _, _ = built["livec"]
  names = [r["name"] for r in builder.as_data_source("full")]
  assert not any(n.startswith(b"t") for n in names)


def test_unbuilt_dataset_says_how_to_build(tmp_path):
  with pytest.raises(common.MissingDataError, match="python -m mobileiqa_jax.data.build"):
    pipeline.make_source(_data_cfg("bid", str(tmp_path), "random"), "train")


@pytest.mark.parametrize("name", NAMES)
def test_missing_folder_names_the_path_and_the_source(tmp_path, name):
  missing = tmp_path / "nowhere"
  with pytest.raises(common.MissingDataError) as error:
    build.build(name, str(missing), str(tmp_path / "tfds"))
  assert str(missing) in str(error.value)
  assert "http" in str(error.value)  # where to get the data


def test_missing_metadata_file_names_it(tmp_path):
  manual = tmp_path / "koniq"
  fakes.make_koniq10k(manual)
  (manual / "koniq10k_distributions_sets.csv").unlink()
  with pytest.raises(common.MissingDataError, match="koniq10k_distributions_sets.csv"):
    build.build("koniq10k", str(manual), str(tmp_path / "tfds"))


def test_truncated_image_fails_naming_it_or_is_skipped(tmp_path):
  manual = tmp_path / "bid"
  fakes.make_bid(manual)
  bad = manual / "DatabaseImage0003.JPG"
  bad.write_bytes(bad.read_bytes()[:200])
  with pytest.raises(decode.BadImageError, match="DatabaseImage0003.JPG"):
    build.build("bid", str(manual), str(tmp_path / "tfds_fail"))
  builder = build.build("bid", str(manual), str(tmp_path / "tfds_skip"), skip_bad_images=True)
  assert builder.info.splits["full"].num_examples == 9
  assert builder.info.metadata["skipped_images"] == {"full": ["DatabaseImage0003.JPG"]}
  reloaded = build.load_builder("bid", str(tmp_path / "tfds_skip"))
  assert reloaded.info.metadata["skipped_images"] == {"full": ["DatabaseImage0003.JPG"]}


def test_label_out_of_range_names_the_row(tmp_path):
  manual = tmp_path / "spaq"
  fakes.make_spaq(manual, mos=[10.0, 20.0, 130.0, 40.0])
  with pytest.raises(labels.LabelRangeError, match=r"row 4 \(00003.jpg\)"):
    build.build("spaq", str(manual), str(tmp_path / "tfds"))
  manual = tmp_path / "uhd"
  fakes.make_uhd_iqa(manual, mos=[0.5] * 9 + [1.5])
  with pytest.raises(labels.LabelRangeError, match=r"line 11 \(1009.jpg\)"):
    build.build("uhd_iqa", str(manual), str(tmp_path / "tfds"))


def test_koniq_unknown_set_value_names_the_row(tmp_path):
  manual = tmp_path / "koniq"
  fakes.make_koniq10k(manual)
  path = manual / "koniq10k_distributions_sets.csv"
  rows = list(csv.reader(open(path)))
  rows[2][-1] = "holdout"
  with open(path, "w", newline="") as file:
    csv.writer(file).writerows(rows)
  with pytest.raises(ValueError, match="line 3"):
    build.build("koniq10k", str(manual), str(tmp_path / "tfds"))


def test_public_set_through_loader_with_workers(built):
  _, expected, data_dir = built["koniq10k"]
  cfg = _data_cfg("koniq10k", data_dir, "official")
  cfg.height, cfg.width, cfg.num_workers = 24, 32, 2
  batches = list(
    pipeline.make_loader(cfg, "train", global_batch_size=2, train=True, seed=0, num_epochs=1)
  )
  # 7 training images: 3 batches of 2, cut to whole rounds of one per worker.
  assert len(batches) == 2
  assert batches[0]["image"].shape == (2, 24, 32, 3)
  # Workers change who assembles a batch, not what is in it.
  cfg.num_workers = 0
  alone = list(
    pipeline.make_loader(cfg, "train", global_batch_size=2, train=True, seed=0, num_epochs=1)
  )
  for with_workers, without in zip(batches, alone):
    np.testing.assert_array_equal(with_workers["label"], without["label"])
    np.testing.assert_array_equal(with_workers["image"], without["image"])


def test_a_set_stored_at_its_training_size_gives_the_same_pixels(built, tmp_path):
  _, _, data_dir = built["koniq10k"]
  manual = tmp_path / "manual"
  fakes.MAKERS["koniq10k"](manual)
  # Built beside the original form, in the same data_dir.
  stored = build.build("koniq10k", str(manual), data_dir, stored_size=(24, 32))
  assert pathlib.Path(stored.data_dir).parent.name == "24x32"
  record = stored.as_data_source("train")[0]
  assert decode.decode_rgb(record["image"]).shape == (24, 32, 3)
  assert record["image"][:8] == b"\x89PNG\r\n\x1a\n"

  cfg = _data_cfg("koniq10k", data_dir, "official")
  cfg.height, cfg.width, cfg.num_workers = 24, 32, 0
  load = lambda c: list(
    pipeline.make_loader(c, "train", global_batch_size=2, train=True, seed=0, num_epochs=1)
  )
  original = load(cfg)
  cfg.stored_size = (24, 32)
  for from_stored, from_original in zip(load(cfg), original, strict=True):
    np.testing.assert_array_equal(from_stored["image"], from_original["image"])
    np.testing.assert_array_equal(from_stored["label"], from_original["label"])
  # Stored for another size than the run trains at: said, not silently resized.
  cfg.height = 48
  with pytest.raises(ValueError, match="differs from data.height"):
    pipeline.make_source(cfg, "train")
  # Not built for this size: the error gives the command that builds it.
  cfg.height, cfg.width, cfg.stored_size = 48, 64, (48, 64)
  with pytest.raises(FileNotFoundError, match="--store_size 48x64"):
    pipeline.make_source(cfg, "train")


def test_build_command(tmp_path):
  fakes.make_bid(tmp_path / "manual")
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "mobileiqa_jax.data.build",
      "--dataset",
      "bid",
      "--manual_dir",
      str(tmp_path / "manual"),
      "--data_dir",
      str(tmp_path / "tfds"),
    ],
    cwd=REPO,
    env={**os.environ, "PYTHONPATH": str(REPO)},
    capture_output=True,
    text=True,
    timeout=120,
    check=False,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert "bid full: 10 examples" in result.stdout


def test_one_registry_names_every_set_and_the_builder_of_each_public_one():
  assert set(datasets.NAMES) == {"synthetic", "csv", *datasets.PUBLIC}
  assert set(datasets.PUBLIC) == {"uhd_iqa", "koniq10k", "livec", "spaq", "bid"}
  for name in datasets.PUBLIC:
    assert issubclass(datasets.builder_class(name), common.IqaBuilder), name
  with pytest.raises(ValueError, match="unknown public dataset 'csv'"):
    datasets.builder_class("csv")
