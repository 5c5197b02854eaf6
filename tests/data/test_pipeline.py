"""The grain loaders: preprocessing, sharding, padding, determinism, resumption."""

import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
from PIL import Image
import pytest

from mobileiqa_jax.data import config, pipeline, preprocess

REPO = pathlib.Path(__file__).resolve().parents[2]
NUM_ROWS = 23  # prime, so no batch size divides it


@pytest.fixture(scope="module")
def labelled_csv(tmp_path_factory):
  """23 small images; row i has MOS i, so a label identifies its row."""
  root = tmp_path_factory.mktemp("csvset")
  lines = ["path,mos"]
  for i in range(NUM_ROWS):
    pixels = np.full((12, 16, 3), (10 * i) % 256, np.uint8)
    pixels[:, :8, 0] = 255  # left half red: shows horizontal flips
    Image.fromarray(pixels).save(root / f"{i}.png")
    lines.append(f"{i}.png,{i}")
  (root / "set.csv").write_text("\n".join(lines) + "\n")
  return root / "set.csv"


def _cfg(csv_path, workers=0, size=(8, 10)):
  cfg = config.get_config()
  cfg.name, cfg.csv, cfg.csv_mos_range = "csv", str(csv_path), (0.0, 100.0)
  cfg.height, cfg.width = size
  cfg.num_workers = workers
  return cfg


def _rows(labels):
  return np.rint(np.asarray(labels) * 100).astype(int)


def test_batch_format_and_normalisation(labelled_csv):
  cfg = _cfg(labelled_csv, size=(12, 16))
  batch = next(iter(pipeline.make_loader(cfg, "test", global_batch_size=4, train=False, seed=0)))
  # Batches carry the decoded pixels; the steps normalise them on the device.
  assert batch["image"].shape == (4, 12, 16, 3) and batch["image"].dtype == np.uint8
  assert batch["label"].dtype == np.float32 and batch["valid"].dtype == np.bool_
  row = _rows(batch["label"][:1])[0]
  value = (10 * row) % 256
  np.testing.assert_array_equal(batch["image"][0, 0, 0], [255, value, value])
  expected = (
    np.array([255, value, value]) / 255 - preprocess.IMAGENET_MEAN
  ) / preprocess.IMAGENET_STD
  for normalise in (preprocess.normalise, jax.jit(preprocess.normalise)):
    np.testing.assert_allclose(normalise(batch["image"])[0, 0, 0], expected, rtol=1e-5)


def test_resize_is_pil_bicubic():
  image = np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8)
  expected = np.asarray(Image.fromarray(image).resize((20, 7), Image.BICUBIC))
  np.testing.assert_array_equal(preprocess.resize_bicubic(image, 7, 20), expected)


def test_training_flips_and_is_deterministic(labelled_csv):
  cfg = _cfg(labelled_csv, size=(12, 16))

  def first_epoch(seed):
    loader = pipeline.make_loader(
      cfg, "train", global_batch_size=3, train=True, seed=seed, num_epochs=1
    )
    return list(loader)

  a, b, c = first_epoch(1), first_epoch(1), first_epoch(2)
  assert len(a) == 16 // 3  # 16 training rows (23 less 5 test, 2 validation), whole batches
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["image"], y["image"])
  assert not all(np.array_equal(x["label"], y["label"]) for x, y in zip(a, c))
  images = np.concatenate([x["image"] for x in a])
  red_left = images[:, :, 0, 0] > images[:, :, -1, 0]
  flipped = ~red_left[:, 0]
  assert 0 < flipped.sum() < len(images)  # some images flipped horizontally, not all


@pytest.mark.parametrize("workers", [0, 2])
def test_resumed_iterator_yields_the_same_batches(labelled_csv, workers):
  cfg = _cfg(labelled_csv, workers=workers)

  def loader():
    return pipeline.make_loader(cfg, "train", global_batch_size=2, train=True, seed=5, num_epochs=3)

  uninterrupted = [b for b in iter(loader())]
  interrupted = iter(loader())
  seen = [next(interrupted) for _ in range(7)]
  state = interrupted.get_state()
  del interrupted
  resumed = iter(loader())
  resumed.set_state(state)
  rest = list(resumed)
  assert len(seen) + len(rest) == len(uninterrupted)
  for got, want in zip(seen + rest, uninterrupted):
    for key in ("image", "label", "valid"):
      np.testing.assert_array_equal(got[key], want[key])
  if workers:
    return  # each worker batches its own slice, so batches straddle epochs
  # Epochs are reshuffled: the three epochs are not the same order.
  per_epoch = len(uninterrupted) // 3
  orders = [
    _rows(np.concatenate([b["label"] for b in epoch]))
    for epoch in (uninterrupted[:per_epoch], uninterrupted[per_epoch : 2 * per_epoch])
  ]
  assert sorted(orders[0]) == sorted(orders[1]) and list(orders[0]) != list(orders[1])


@pytest.mark.parametrize("workers", [0, 2])
def test_evaluation_pads_and_covers_every_example_once(labelled_csv, workers):
  cfg = _cfg(labelled_csv, workers=workers)
  cfg.split = "random"
  seen, batches = [], []
  for process in range(2):
    loader = pipeline.make_loader(
      cfg, "test", global_batch_size=4, train=False, seed=0, process_index=process, process_count=2
    )
    out = list(loader)
    batches.append(len(out))
    assert all(b["label"].shape == (2,) for b in out)
    for b in out:
      seen += list(_rows(b["label"][b["valid"]]))
  assert batches[0] == batches[1]
  expected = sorted(_rows([r["label"] for r in pipeline.make_source(cfg, "test")]))
  assert sorted(seen) == expected  # every held-out row exactly once


def test_training_shards_are_disjoint(labelled_csv):
  cfg = _cfg(labelled_csv)
  shards = []
  for process in range(2):
    loader = pipeline.make_loader(
      cfg,
      "train",
      global_batch_size=4,
      train=True,
      seed=0,
      num_epochs=1,
      process_index=process,
      process_count=2,
    )
    shards.append(set(_rows(np.concatenate([b["label"] for b in loader]))))
  assert not shards[0] & shards[1]
  assert len(shards[0]) == len(shards[1]) == 8  # 18 rows: 9 per shard, 4 whole batches of 2


def _free_port() -> int:
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


def test_two_jax_processes_read_disjoint_shards_covering_the_set(labelled_csv, tmp_path):
  port = _free_port()
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO)}
  procs = [
    subprocess.Popen(
      [
        sys.executable,
        "-m",
        "tests.data.distributed_reader",
        str(port),
        str(i),
        str(labelled_csv),
        str(tmp_path / f"{i}.npz"),
      ],
      cwd=REPO,
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
    )
    for i in range(2)
  ]
  for proc in procs:
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output.decode()[-3000:]
  results = [np.load(tmp_path / f"{i}.npz") for i in range(2)]
  assert [int(r["process_index"]) for r in results] == [0, 1]
  assert all(int(r["process_count"]) == 2 for r in results)
  assert results[0]["eval_batches"] == results[1]["eval_batches"]
  evaluated = [set(_rows(r["eval_labels"][r["eval_valid"]])) for r in results]
  trained = [set(_rows(r["train_labels"])) for r in results]
  assert not evaluated[0] & evaluated[1] and not trained[0] & trained[1]
  cfg = _cfg(labelled_csv)
  everything = set(_rows([r["label"] for r in pipeline.make_source(cfg, "train")]))
  assert evaluated[0] | evaluated[1] == everything
  assert len(trained[0]) == len(trained[1]) == 8


def test_synthetic_default_through_the_loader():
  cfg = config.get_config()
  assert cfg.name == "synthetic"
  cfg.synthetic.height, cfg.synthetic.width = 40, 48
  cfg.height, cfg.width, cfg.num_workers = 32, 32, 0
  cfg.synthetic.num_validation = 5
  batches = list(pipeline.make_loader(cfg, "validation", global_batch_size=4, train=False, seed=0))
  assert [b["valid"].sum() for b in batches] == [4, 1]
  assert batches[0]["image"].shape == (4, 32, 32, 3)
  assert ((batches[0]["label"] >= 0) & (batches[0]["label"] <= 1)).all()


def test_benchmark_smoke():
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "mobileiqa_jax.benchmark",
      "--smoke",
      "--only=pipeline:48x80",
      "--only=pipeline_stored:48x80",
      "--only=generator:64x64",
    ],
    cwd=REPO,
    env={**os.environ, "PYTHONPATH": str(REPO)},
    capture_output=True,
    text=True,
    timeout=120,
    check=False,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  rows = [line.split() for line in result.stdout.splitlines()]
  input_rows = [
    row for row in rows if row and row[0] in ("pipeline", "pipeline_stored", "generator")
  ]
  assert [row[:2] for row in input_rows] == [
    ["pipeline", "48x80"],
    ["pipeline_stored", "48x80"],
    ["generator", "64x64"],
  ]
  # The loader rows give images/s per core beside the total; both positive.
  assert all(float(row[2]) > 0 and float(row[3]) > 0 for row in input_rows[:2])
  assert "stored 80x48 PNG" in result.stdout


def test_global_batches_do_not_depend_on_process_count(labelled_csv):
  cfg = _cfg(labelled_csv)

  def batches(process_index, process_count):
    loader = pipeline.make_loader(
      cfg,
      "train",
      global_batch_size=4,
      train=True,
      seed=3,
      num_epochs=2,
      process_index=process_index,
      process_count=process_count,
    )
    return [(b["label"], b["image"]) for b in loader]

  alone = batches(0, 1)
  halves = [batches(0, 2), batches(1, 2)]
  assert len(alone) == len(halves[0]) == len(halves[1]) == 8  # 2 epochs of 16, batches of 4
  for k, (labels, images) in enumerate(alone):
    np.testing.assert_array_equal(labels, np.concatenate([halves[0][k][0], halves[1][k][0]]))
    np.testing.assert_array_equal(images, np.concatenate([halves[0][k][1], halves[1][k][1]]))
