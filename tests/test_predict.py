"""Scoring: the Scorer API on every input kind, the predict command line, TFLite."""

import csv
import json
import shutil
import subprocess
import sys
import zipfile

import jax
import numpy as np
from PIL import Image
import pytest

from mobileiqa_jax import checkpoints, models, predict, scoring
from mobileiqa_jax.data import decode, preprocess
from tests.conftest import MICRO, random_variables

HEIGHT, WIDTH = 96, 128
SIZE = f"{HEIGHT}x{WIDTH}"
BATCH = 4


@pytest.fixture(scope="module")
def student(tmp_path_factory):
  """(module, variables, checkpoint dir) of the tiny student."""
  model = models.create("student_tiny")
  variables = random_variables(model, np.zeros((1, 64, 64, 3), np.float32))
  # Random heads put every score near 0.5; a steeper last layer spreads them,
  # so that swapped or mis-resized images show in the comparisons.
  params = dict(variables["params"])
  params["fc_score_3"] = dict(params["fc_score_3"], kernel=params["fc_score_3"]["kernel"] * 40)
  variables = dict(variables, params=params)
  directory = tmp_path_factory.mktemp("ckpt") / "student"
  checkpoints.save_model(directory, variables, "student_tiny")
  return model, variables, directory


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
  """A folder of photos in several modes and sizes, one corrupt file and non-images."""
  folder = tmp_path_factory.mktemp("photos")
  rng = np.random.default_rng(0)

  def smooth(h, w, channels=3):
    coarse = rng.integers(0, 256, (4, 5, channels), dtype=np.uint8)
    image = Image.fromarray(coarse.squeeze()).resize((w, h), Image.BICUBIC)
    noise = rng.normal(0, rng.uniform(1, 30), (h, w, channels)).squeeze()
    return np.clip(np.asarray(image) + noise, 0, 255).astype(np.uint8)

  (folder / "nested" / "deeper").mkdir(parents=True)
  Image.fromarray(smooth(150, 200)).save(folder / "a.jpg", quality=90)
  Image.fromarray(smooth(210, 140)).save(folder / "b.PNG")
  Image.fromarray(smooth(90, 120, 4), "RGBA").save(folder / "nested" / "c.png")
  Image.fromarray(smooth(100, 100, 1).squeeze(), "L").save(folder / "nested" / "deeper" / "d.bmp")
  (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
  (folder / "notes.txt").write_text("not an image")
  (folder / "._a.jpg").write_bytes(b"macOS resource fork")
  return folder


GOOD = ["a.jpg", "b.PNG", "nested/c.png", "nested/deeper/d.bmp"]


def rows_by_name(rows, folder):
  return {str(path).removeprefix(str(folder) + "/"): (score, error) for path, score, error in rows}


def read_csv(path):
  with open(path, newline="") as f:
    reader = csv.DictReader(f)
    assert reader.fieldnames == ["path", "score", "error"]
    return [
      (r["path"], float(r["score"]) if r["score"] else None, r["error"] or None) for r in reader
    ]


def read_json(path):
  return [(r["path"], r["score"], r["error"]) for r in json.loads(path.read_text())]


def test_folder_to_csv_json_and_table_with_a_corrupt_file(student, photos, tmp_path, capsys):
  _, _, ckpt = student
  common = ["--checkpoint", str(ckpt), str(photos), "--size", SIZE, "--batch-size", str(BATCH)]
  assert (
    predict.main(common + ["--output", str(tmp_path / "scores.csv")]) == predict.EXIT_SOME_FAILED
  )
  assert (
    predict.main(common + ["--output", str(tmp_path / "scores.json")]) == predict.EXIT_SOME_FAILED
  )
  assert sorted(p.name for p in tmp_path.iterdir()) == [
    "scores.csv",
    "scores.json",
  ]  # no temp files

  from_csv, from_json = read_csv(tmp_path / "scores.csv"), read_json(tmp_path / "scores.json")
  assert from_csv == from_json  # CSV writes the exact float, as JSON does
  by_name = rows_by_name(from_csv, photos)
  # The folder is walked in sorted order; hidden files and .txt are not images.
  assert list(by_name) == ["a.jpg", "b.PNG", "broken.jpg", "nested/c.png", "nested/deeper/d.bmp"]
  score, error = by_name["broken.jpg"]
  assert score is None and "cannot decode image" in error and "broken.jpg" in error
  scores = np.array([by_name[name][0] for name in GOOD])
  assert all(by_name[name][1] is None for name in GOOD) and np.all(np.isfinite(scores))
  assert np.ptp(scores) > 1e-3

  # The API scores the same files the same way.
  scorer = scoring.Scorer.from_checkpoint(ckpt, size=(HEIGHT, WIDTH), batch_size=BATCH)
  np.testing.assert_allclose(
    scorer.score([photos / name for name in GOOD]), scores, rtol=0, atol=1e-6
  )

  # Without --output: a table on stdout, the summary on stderr.
  capsys.readouterr()
  assert predict.main(common) == predict.EXIT_SOME_FAILED
  out, err = capsys.readouterr()
  lines = out.splitlines()
  assert lines[0].split() == ["path", "score", "error"] and len(lines) == 6
  broken = next(line for line in lines if "broken.jpg" in line)
  assert " - " in broken and "cannot decode image" in broken
  assert "1 of 5 image(s) could not be scored" in err and "96x128" in err


def test_globs_missing_files_and_exit_codes(student, photos, tmp_path, capsys):
  _, _, ckpt = student
  common = ["--checkpoint", str(ckpt), "--size", SIZE, "--batch-size", str(BATCH)]
  out = tmp_path / "scores.csv"
  # Quoted globs expand here, '**' recursively; a file named twice is scored once.
  assert (
    predict.main(
      common
      + [f"{photos}/*.jpg", f"{photos}/**/*.png", str(photos / "a.jpg"), "--output", str(out)]
    )
    == predict.EXIT_SOME_FAILED
  )
  assert list(rows_by_name(read_csv(out), photos)) == ["a.jpg", "broken.jpg", "nested/c.png"]

  out.write_text("previous")
  assert (
    predict.main(common + [str(photos / "a.jpg"), str(photos / "nested"), "--output", str(out)])
    == predict.EXIT_OK
  )
  assert [
    name for name, (_, error) in rows_by_name(read_csv(out), photos).items() if error is None
  ] == ["a.jpg", "nested/c.png", "nested/deeper/d.bmp"]

  # Names that match nothing are rows with an error, not silently dropped.
  missing = [str(tmp_path / "missing.jpg"), str(tmp_path / "none-*.png")]
  assert predict.main(common + missing + [str(photos / "a.jpg"), "--output", str(out)]) == 2
  rows = read_csv(out)
  assert [path for path, _, _ in rows] == missing + [str(photos / "a.jpg")]
  assert all("No such file" in error for _, _, error in rows[:2])

  capsys.readouterr()
  assert predict.main(common + [str(tmp_path / "empty-*")]) == 2  # a row, as above
  (tmp_path / "empty").mkdir()
  assert predict.main(common + [str(tmp_path / "empty")]) == predict.EXIT_FATAL
  assert (
    predict.main(["--checkpoint", str(tmp_path / "nothing"), str(photos)]) == predict.EXIT_FATAL
  )
  assert "neither a model checkpoint" in capsys.readouterr().err
  for bad in (
    ["--output", str(tmp_path / "scores.txt")],
    ["--output", str(tmp_path / "no" / "such" / "dir.csv")],
    ["--size", "96"],
  ):
    with pytest.raises(SystemExit) as exit_:
      predict.main(common + [str(photos)] + bad)
    assert exit_.value.code == predict.EXIT_FATAL


def test_api_paths_pil_images_and_arrays_score_identically(student, photos):
  _, _, ckpt = student
  scorer = scoring.Scorer.from_checkpoint(ckpt, size=(HEIGHT, WIDTH), batch_size=BATCH)
  assert scorer.size == (HEIGHT, WIDTH)
  paths = [photos / name for name in GOOD]
  by_path = scorer.score([str(p) for p in paths])
  assert by_path.shape == (4,) and by_path.dtype == np.float32
  pil = [Image.open(p) for p in paths]  # RGB, RGBA, L: converted as files are
  np.testing.assert_array_equal(scorer.score(pil), by_path)
  arrays = [decode.decode_rgb(p.read_bytes()) for p in paths]
  np.testing.assert_array_equal(scorer.score(arrays), by_path)
  np.testing.assert_array_equal(scorer.score([p.read_bytes() for p in paths]), by_path)
  # Mixed kinds in one list, and a single image (padded to the batch: no new compile).
  np.testing.assert_array_equal(scorer.score([paths[0], pil[1], arrays[2], str(paths[3])]), by_path)
  single = scorer.score(arrays[1])
  assert single.shape == (1,)
  np.testing.assert_allclose(single, by_path[1:2], rtol=0, atol=1e-6)
  stacked = np.stack([scoring.fit(a, HEIGHT, WIDTH) for a in arrays])
  np.testing.assert_array_equal(scorer.score(stacked), by_path)  # (N, H, W, 3) is N images
  assert scorer.score([]).shape == (0,)

  with pytest.raises(decode.BadImageError, match="broken.jpg"):
    scorer.score([paths[0], photos / "broken.jpg"])
  with pytest.raises(ValueError, match="uint8"):
    scorer.score(arrays[0].astype(np.float32))
  with pytest.raises(TypeError, match="cannot score"):
    scorer.score([3])

  results = scorer.score_files([paths[0], photos / "broken.jpg", paths[1]])
  (p0, s0, e0), (p1, s1, e1), (_, s2, _) = results
  assert (p0, e0, p1, s1) == (str(paths[0]), None, str(photos / "broken.jpg"), None)
  assert "cannot decode" in e1 and results[0].score == s0
  np.testing.assert_allclose([s0, s2], by_path[:2], rtol=0, atol=1e-6)


def test_scores_are_the_checkpointed_model_on_training_preprocessing(student, photos):
  """Independent reference: PIL decode and bicubic resize, written-out
  normalisation, the module applied to the saved variables."""
  model, variables, ckpt = student
  scorer = scoring.Scorer.from_checkpoint(ckpt, size=(HEIGHT, WIDTH), batch_size=BATCH)
  paths = [photos / name for name in GOOD]
  mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
  images = []
  for path in paths:
    image = Image.open(path).convert("RGB").resize((WIDTH, HEIGHT), Image.BICUBIC)
    images.append(((np.asarray(image) / 255.0 - mean) / std).astype(np.float32))
  reference = jax.jit(lambda v, x: model.apply(v, x)[0])(variables, np.stack(images))
  np.testing.assert_allclose(scorer.score(paths), reference, rtol=0, atol=1e-5)

  # A converted checkpoint records no size: the paper's, as long as no size is asked.
  assert scoring.Scorer.from_checkpoint(ckpt).size == scoring.PAPER_SIZE == (1231, 1907)


def test_package_import_stays_light():
  code = (
    "import sys, mobileiqa_jax; assert 'jax' not in sys.modules; "
    "assert mobileiqa_jax.Scorer.__module__ == 'mobileiqa_jax.scoring'"
  )
  subprocess.run([sys.executable, "-c", code], check=True)


def test_trained_size_comes_from_the_workdir_config(tmp_path):
  assert scoring.trained_size(tmp_path)[0] == (1231, 1907)
  (tmp_path / "config.json").write_text(json.dumps({"data": {"height": 384, "width": 512}}))
  size, origin = scoring.trained_size(tmp_path)
  assert size == (384, 512) and "config.json" in origin


def test_keep_aspect_letterboxes_with_the_mean_colour(student, photos):
  wide = np.full((40, 160, 3), 200, np.uint8)  # 1:4 into 96x128 (3:4): 32 rows of content
  boxed = scoring.fit(wide, HEIGHT, WIDTH, keep_aspect=True)
  assert boxed.shape == (HEIGHT, WIDTH, 3)
  assert np.all(boxed[:32] == scoring.PAD_RGB) and np.all(boxed[-32:] == scoring.PAD_RGB)
  assert np.all(boxed[32:64] == 200)
  # The border is ~0 after normalisation: it adds no colour of its own.
  assert np.abs(preprocess.normalise(np.array(scoring.PAD_RGB, np.uint8))).max() < 0.01
  tall = scoring.fit(np.zeros((300, 100, 3), np.uint8), HEIGHT, WIDTH, keep_aspect=True)
  assert np.all(tall[:, :48] == scoring.PAD_RGB) and np.all(tall[:, 48:80] == 0)
  # Already the right shape: the same pixels as stretching.
  same = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
  np.testing.assert_array_equal(
    scoring.fit(same, HEIGHT, WIDTH, True), scoring.fit(same, HEIGHT, WIDTH)
  )

  _, _, ckpt = student
  boxed_scorer = scoring.Scorer.from_checkpoint(
    ckpt, size=(HEIGHT, WIDTH), keep_aspect=True, batch_size=BATCH
  )
  stretched = scoring.Scorer.from_checkpoint(ckpt, size=(HEIGHT, WIDTH), batch_size=BATCH)
  paths = [photos / name for name in GOOD]
  assert not np.allclose(boxed_scorer.score(paths), stretched.score(paths), rtol=0, atol=1e-6)


def test_tflite_scores_like_jax(photos, tmp_path, capsys):
  export = pytest.importorskip("mobileiqa_jax.export")
  pytest.importorskip("ai_edge_litert")
  model = models.create("student_tiny", **MICRO)
  variables = random_variables(model, np.zeros((1, 64, 64, 3), np.float32))
  checkpoints.save_model(tmp_path / "ckpt", variables, "student_tiny", MICRO)
  tflite = tmp_path / "app" / "student.tflite"
  tflite.parent.mkdir()
  # float32 input: the scorer normalises, which is the path that can go wrong.
  export.export_tflite(
    model,
    variables,
    tflite,
    HEIGHT,
    WIDTH,
    "float32",
    "float32",
    model_name="student_tiny",
    samples=1,
    quality_map=True,
  )

  paths = [photos / name for name in GOOD]
  jax_scorer = scoring.Scorer.from_checkpoint(tmp_path / "ckpt", size=(HEIGHT, WIDTH))
  jax_scores, jax_maps = jax_scorer.score(paths, maps=True)
  scorer = scoring.Scorer.from_checkpoint(tflite)
  assert scorer.size == (HEIGHT, WIDTH) and "float32 input" in scorer.description
  np.testing.assert_allclose(scorer.score(paths), jax_scores, rtol=0, atol=1e-4)
  # The map output: the same cells, placed the same way (grid 6: one cell).
  scores, maps = scorer.score(paths, maps=True)
  np.testing.assert_allclose(scores, jax_scores, rtol=0, atol=1e-4)
  for ours, theirs in zip(maps, jax_maps):
    assert ours.cells.shape == (1, 1, 1) and (ours.grid, ours.pool) == (6, 2)
    np.testing.assert_allclose(ours.cells, theirs.cells, rtol=0, atol=1e-4)
  assert scorer.score_range == (0.0, 1.0)  # the student ends in a sigmoid

  out = tmp_path / "scores.json"
  assert predict.main(["--checkpoint", str(tflite), str(photos), "--output", str(out)]) == 2
  by_name = rows_by_name(read_json(out), photos)
  np.testing.assert_allclose([by_name[name][0] for name in GOOD], jax_scores, rtol=0, atol=1e-4)
  assert by_name["broken.jpg"][0] is None

  # A fixed-size file refuses another size.
  assert predict.main(["--checkpoint", str(tflite), str(photos), "--size", "64x64"]) == 1
  assert "takes 96x128 images only" in capsys.readouterr().err

  # Without its JSON the input dtype says the same; a JSON that disagrees is refused.
  alone = tmp_path / "alone.tflite"
  shutil.copy(tflite, alone)
  np.testing.assert_array_equal(
    scoring.Scorer.from_checkpoint(alone).score(paths), scorer.score(paths)
  )
  # ... but without it, nothing says where the map's cells lie.
  with pytest.raises(ValueError, match="beside its JSON"):
    scoring.Scorer.from_checkpoint(alone).score(paths, maps=True)
  report = json.loads(tflite.with_suffix(".json").read_text())
  report["input"]["kind"] = "uint8"
  alone.with_suffix(".json").write_text(json.dumps(report))
  with pytest.raises(ValueError, match="describes a uint8"):
    scoring.Scorer.from_checkpoint(alone)


def test_a_crop_trained_run_scores_photos_in_tiles_at_their_own_size(student, photos, tmp_path):
  """A workdir whose config trained on 64x64 crops: each photo scores as the
  mean over the tiles that cover it, nothing resized; a size asked for
  resizes instead."""
  model, variables, ckpt = student
  workdir = tmp_path / "run"
  shutil.copytree(ckpt, workdir)
  (workdir / "config.json").write_text(
    json.dumps({"data": {"height": 128, "width": 128, "crop": [64, 64]}})
  )
  scorer = scoring.Scorer.from_checkpoint(workdir, batch_size=BATCH)
  assert scorer.tiled and scorer.size == (64, 64) and "tiled" in scorer.description
  apply = jax.jit(lambda x: model.apply(variables, x)[0])
  paths = [photos / name for name in GOOD]
  expected = []
  for path in paths:
    image = np.asarray(Image.open(path).convert("RGB"))
    height, width = image.shape[:2]
    views = [image[t : t + 64, x : x + 64] for t, x in scoring.tiles.grid(height, width, 64, 64)]
    expected.append(float(np.mean(apply(preprocess.normalise(np.stack(views))))))
  np.testing.assert_allclose(scorer.score(paths), expected, rtol=0, atol=1e-5)
  # The cap keeps an even grid: fewer tiles, another (close) estimate.
  capped = scoring.Scorer.from_checkpoint(workdir, batch_size=BATCH, max_tiles=2)
  assert len(capped.prepare(paths[0])) == 2
  # A photo smaller than a tile is enlarged to hold one, keeping its shape.
  assert scorer.prepare(np.zeros((20, 40, 3), np.uint8)).shape == (2, 64, 64, 3)
  # An explicit size resizes whole photos, as for any run.
  assert not scoring.Scorer.from_checkpoint(workdir, size=(HEIGHT, WIDTH)).tiled
  with pytest.raises(ValueError, match="tiles at their own resolution"):
    scoring.Scorer.from_checkpoint(workdir, keep_aspect=True)


def test_quality_maps_are_the_networks_cells_placed_on_each_photo(student, photos, tmp_path):
  model, variables, ckpt = student
  cells_of = jax.jit(lambda x: model.apply(variables, x)[1]["quality_map"])
  paths = [photos / name for name in GOOD]
  scorer = scoring.Scorer.from_checkpoint(ckpt, size=(HEIGHT, WIDTH), batch_size=BATCH)
  scores, maps = scorer.score(paths, maps=True)
  np.testing.assert_array_equal(scores, scorer.score(paths))  # maps leave scores alone
  for path, found in zip(paths, maps):
    expected = cells_of(preprocess.normalise(scorer.prepare(path)[None]))
    np.testing.assert_allclose(found.cells, expected, rtol=0, atol=1e-5)
    with Image.open(path) as image:
      assert found.image_size == (image.height, image.width)
    assert np.isfinite(found.image()).all() and found.image().shape == found.image_size

  # In tiles: one map per tile, placed where the tile lies.
  workdir = tmp_path / "run"
  shutil.copytree(ckpt, workdir)
  (workdir / "config.json").write_text(json.dumps({"data": {"crop": [64, 64]}}))
  tiled = scoring.Scorer.from_checkpoint(workdir, batch_size=BATCH)
  _, (found,) = tiled.score(paths[0], maps=True)
  np.testing.assert_allclose(
    found.cells, cells_of(preprocess.normalise(tiled.views(paths[0]))), rtol=0, atol=1e-5
  )
  assert len(found.boxes) == 12 and np.isfinite(found.image()).all()  # 150x200: 3x4 tiles
  # Tiles left out by the cap leave their pixels unknown.
  capped = scoring.Scorer.from_checkpoint(workdir, batch_size=BATCH, max_tiles=2)
  _, (found,) = capped.score(paths[0], maps=True)
  unknown = np.isnan(found.image())
  assert unknown.any() and not unknown.all()

  # Letterboxed, the view reaches past the photo, which it still covers.
  boxed = scoring.Scorer.from_checkpoint(
    ckpt, size=(HEIGHT, WIDTH), keep_aspect=True, batch_size=BATCH
  )
  _, (found,) = boxed.score(photos / "b.PNG", maps=True)  # 210x140 in 96x128
  top, left, box_h, box_w = found.boxes[0]
  assert top == 0 and left < 0 and box_h == 210 and box_w > 140
  assert np.isfinite(found.image()).all()

  rows = scorer.score_files([paths[0], photos / "broken.jpg"], maps=True)
  assert rows[0].quality_map.cells.shape == (1, 2, 2) and rows[0].score == scores[0]
  assert rows[1].quality_map is None and "cannot decode" in rows[1].error


def test_cli_draws_a_quality_map_per_photo(student, photos, tmp_path, capsys):
  _, _, ckpt = student
  maps = tmp_path / "maps"
  common = ["--checkpoint", str(ckpt), str(photos), "--size", SIZE, "--batch-size", str(BATCH)]
  code = predict.main(common + ["--maps", str(maps), "--output", str(tmp_path / "s.csv")])
  assert code == predict.EXIT_SOME_FAILED
  assert "wrote 4 quality map(s)" in capsys.readouterr().err
  assert sorted(p.name for p in maps.iterdir()) == ["a.png", "b.png", "c.png", "d.png"]
  with open(tmp_path / "s.csv", newline="") as f:
    rows = {r["path"].removeprefix(str(photos) + "/"): r for r in csv.DictReader(f)}
  assert rows["a.jpg"]["map"] == str(maps / "a.png") and rows["broken.jpg"]["map"] == ""
  with Image.open(maps / "b.png") as picture, Image.open(photos / "b.PNG") as photo:
    # The photo at its size, the bar and the score under it.
    assert picture.width == photo.width and picture.height > photo.height + 18

  writer = predict.MapWriter(tmp_path)
  assert [writer._name(p).name for p in ["x/a.jpg", "y/a.png", "A.jpg"]] == [
    "a.png",
    "a-2.png",
    "A-3.png",
  ]
  # Bad options fail before any scoring, with status 1.
  for extra, message in [
    (["--map-range", "0,1"], "--map-range needs --maps"),
    (["--maps", str(maps), "--map-range", "1,0"], "LOW < HIGH"),
    (["--maps", str(tmp_path / "s.csv")], "is a file, not a folder"),
  ]:
    with pytest.raises(SystemExit) as exit_info:
      predict.main(common + extra)
    assert exit_info.value.code == predict.EXIT_FATAL and message in capsys.readouterr().err


def test_the_authors_pkl_scores_in_one_command(parity, photos, tmp_path, capsys):
  """An original state dict (.pkl) is recognised, converted in memory and scored
  at the paper's size unless told otherwise; a bad one is one line on stderr."""
  from tests import torch_format

  path = tmp_path / "best.pkl"
  torch_format.save(parity.state_dict("student"), path)
  scorer = scoring.Scorer.from_checkpoint(path)
  assert scorer.size == scoring.PAPER_SIZE and scorer.description.startswith("student from")
  out = tmp_path / "scores.json"
  args = ["--checkpoint", str(path), str(photos / "a.jpg"), "--size", "64x64", "--output", str(out)]
  assert predict.main(args) == predict.EXIT_OK
  ((_, score, error),) = read_json(out)
  assert error is None and 0 < score < 1

  evil = tmp_path / "evil.pkl"
  with zipfile.ZipFile(evil, "w") as archive:
    archive.writestr("evil/data.pkl", b"\x80\x02cposix\nsystem\nq\x00.")
  (tmp_path / "cut.pkl").write_bytes(path.read_bytes()[:1000])
  capsys.readouterr()
  for bad, message in [
    (evil, "refusing to load 'posix.system'"),
    (tmp_path / "cut.pkl", "truncated"),
  ]:
    assert predict.main(["--checkpoint", str(bad), str(photos / "a.jpg")]) == predict.EXIT_FATAL
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
