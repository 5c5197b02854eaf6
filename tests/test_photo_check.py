"""The damage-ladder check on photographs (`mobileiqa_jax.photo_check`)."""

import json

import numpy as np
from PIL import Image
import pytest

from mobileiqa_jax import photo_check, scoring
from mobileiqa_jax.data.synthetic import scenes


def _photo(seed, height=96, width=128):
  rng = np.random.default_rng(seed)
  return (np.clip(scenes.render_scene(rng, height, width), 0, 1) * 255 + 0.5).astype(np.uint8)


def _sharpness(images):
  """A stand-in network scoring edge energy (mean |Laplacian|): it ranks
  blur, and reads noise as sharpness, so it ranks noise backwards."""
  grey = images.astype(np.float32).mean(axis=-1)
  laplacian = (
    4 * grey[:, 1:-1, 1:-1]
    - grey[:, :-2, 1:-1]
    - grey[:, 2:, 1:-1]
    - grey[:, 1:-1, :-2]
    - grey[:, 1:-1, 2:]
  )
  return np.abs(laplacian).mean(axis=(1, 2))


def test_a_ladder_starts_at_the_photo_and_repeats_from_its_seed():
  photo = _photo(0)
  for family in photo_check.FAMILIES:
    rungs = photo_check.ladder(photo, family, seed=3)
    assert rungs.shape == (len(photo_check.LADDER), *photo.shape) and rungs.dtype == np.uint8
    np.testing.assert_array_equal(rungs[0], photo)
    np.testing.assert_array_equal(rungs, photo_check.ladder(photo, family, seed=3))
    # Each rung strays further from the photo than the one before.
    distance = [np.abs(r.astype(float) - photo).mean() for r in rungs]
    assert all(a < b for a, b in zip(distance, distance[1:])), (family, distance)
  other = photo_check.ladder(photo, "noise", seed=4)
  assert not np.array_equal(other[1], photo_check.ladder(photo, "noise", seed=3)[1])
  # A photo's damage follows its file name, not its folder.
  assert photo_check.photo_key("a/x.jpg") == photo_check.photo_key("b/x.jpg")
  assert photo_check.photo_key("a/x.jpg") != photo_check.photo_key("a/y.jpg")


def test_the_check_tells_a_score_that_ranks_damage_from_one_that_does_not():
  scorer = scoring.Scorer(_sharpness, (96, 128), batch_size=8)
  photos = [("a.jpg", _photo(1)), ("b.png", _photo(2))]
  results = photo_check.check(scorer, photos)
  assert [(r.photo, r.family) for r in results] == [
    (name, family) for name, _ in photos for family in photo_check.FAMILIES
  ]
  by_family = {f: [r.srcc for r in results if r.family == f] for f in photo_check.FAMILIES}
  assert by_family["blur"] == [1.0, 1.0] and by_family["noise"] == [-1.0, -1.0]
  summary = photo_check.summarize(results)
  assert summary["blur"] == {"mean": 1.0, "min": 1.0, "photos": 2}
  assert summary["noise"]["mean"] == -1.0
  table = photo_check.format_table(results, summary)
  assert "a.jpg" in table and table.splitlines()[-2].startswith("mean")
  # A score that never moves is blind to the damage, not perfectly wrong.
  assert photo_check.ranking(np.full(len(photo_check.LADDER), 0.5)) == 0.0


def test_the_command_skips_unreadable_photos_and_names_them(tmp_path, monkeypatch, capsys):
  Image.fromarray(_photo(5)).save(tmp_path / "good.png")
  (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a whole JPEG")
  monkeypatch.setattr(
    scoring.Scorer,
    "from_checkpoint",
    classmethod(lambda cls, path: cls(_sharpness, (96, 128), description="edge energy")),
  )
  assert photo_check.main(["--checkpoint=x", str(tmp_path), "--json"]) == 0
  out, err = capsys.readouterr()
  assert "broken.jpg" in err and "good.png" not in err
  report = json.loads(out)
  assert report["summary"]["blur"] == {"mean": 1.0, "min": 1.0, "photos": 1}
  assert {r["photo"] for r in report["photos"]} == {str(tmp_path / "good.png")}

  assert photo_check.main(["--checkpoint=x", str(tmp_path / "broken.jpg")]) == 1
  assert "no readable photo" in capsys.readouterr().err
  # From Python, without on_error, an unreadable photo is an error.
  with pytest.raises(scoring.INPUT_ERRORS):
    photo_check.check(scoring.Scorer(_sharpness, (96, 128)), [("b", tmp_path / "broken.jpg")])


def test_the_command_reports_a_missing_checkpoint_in_one_line(tmp_path, capsys):
  Image.fromarray(_photo(6)).save(tmp_path / "good.png")
  assert photo_check.main([f"--checkpoint={tmp_path / 'nothing'}", str(tmp_path)]) == 1
  err = capsys.readouterr().err
  assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("max_tiles", [0, 2])
def test_tiles_cut_at_the_photos_resolution(max_tiles):
  scorer = scoring.Scorer(_sharpness, (32, 32)).in_tiles(max_tiles)
  views = scorer.views(_photo(7, 64, 96))
  assert views.shape[1:] == (32, 32, 3) and len(views) == (max_tiles or 6)
