"""The generated IQA set: deterministic, cached, well-labelled, learnable, not trivial."""

import dataclasses

import numpy as np
import pytest
from scipy import stats

from mobileiqa_jax import hand_features
from mobileiqa_jax.data.synthetic import distortions, msssim, scenes, source


def test_deterministic_and_split_disjoint():
  a = source.generate(7, "train", 3, 64, 96)
  b = source.generate(7, "train", 3, 64, 96)
  c = source.generate(7, "test", 3, 64, 96)
  assert a["image"].shape == (64, 96, 3) and a["image"].dtype == np.uint8
  np.testing.assert_array_equal(a["image"], b["image"])
  assert a["label"] == b["label"] and 0.0 <= a["label"] <= 1.0
  assert not np.array_equal(a["image"], c["image"])


def test_any_resolution():
  image = scenes.render_scene(np.random.default_rng(0), 37, 300)
  assert image.shape == (37, 300, 3) and image.dtype == np.float32
  assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.02


def test_ms_ssim_properties():
  clean = scenes.render_scene(np.random.default_rng(1), 128, 128)
  assert msssim.ms_ssim(clean, clean) == 1.0
  rng = np.random.default_rng(0)
  scores = [msssim.ms_ssim(clean, distortions.luma_noise(clean, rng, s)) for s in (0.1, 0.5, 1.0)]
  assert scores[0] > scores[1] > scores[2]


def test_every_family_keeps_shape_and_range():
  clean = scenes.render_scene(np.random.default_rng(2), 48, 64)
  for name, family in distortions.FAMILIES.items():
    out = family(clean, np.random.default_rng(0), 0.7)
    assert out.shape == clean.shape, name
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0, name


def test_labels_fall_with_every_family():
  """Labels are monotone in damage: more of any family, never a higher label."""
  for seed in range(3):
    clean = scenes.render_scene(np.random.default_rng(seed), 96, 96)
    for name, family in distortions.FAMILIES.items():
      labels = []
      for strength in (0.0, 0.35, 0.7, 1.0):
        # The same draws at every strength: only the amount of damage changes.
        damaged = family(clean, np.random.default_rng(100 + seed), strength)
        pixels = np.round(np.clip(damaged, 0, 1) * 255) / 255
        labels.append(source.label_from_ms_ssim(msssim.ms_ssim(clean, pixels)))
      assert np.all(np.diff(labels) <= 0.005), (seed, name, labels)
      assert labels[-1] < labels[0] - 0.05, (seed, name, labels)


def test_cache_holds_exactly_what_generation_makes(tmp_path, monkeypatch):
  cached = source.SyntheticSource(
    seed=5, split="validation", num_examples=6, height=48, width=40, cache_dir=str(tmp_path)
  )
  fresh = dataclasses.replace(cached, cache_dir="")
  for i in range(6):
    a, b = cached[i], fresh[i]
    np.testing.assert_array_equal(a["image"], b["image"])
    assert (a["label"], a["mos"], a["name"]) == (b["label"], b["mos"], b["name"])
  # One finished folder, nothing half-written beside it.
  assert [p.name for p in tmp_path.iterdir()] == [cached.cache_path.name]
  # Read back, not generated again; other settings get their own folder.
  expected = fresh[3]["image"]
  monkeypatch.setattr(source, "generate", None)
  np.testing.assert_array_equal(dataclasses.replace(cached)[3]["image"], expected)
  assert dataclasses.replace(cached, max_distortions=2).cache_path != cached.cache_path


def test_cache_made_on_several_cores_keeps_the_order(tmp_path):
  cached = source.SyntheticSource(
    seed=2, split="train", num_examples=source._CHUNK + 5, height=32, width=32,
    cache_dir=str(tmp_path),
  )  # fmt: skip
  fresh = dataclasses.replace(cached, cache_dir="")
  for i in (0, source._CHUNK - 1, source._CHUNK, source._CHUNK + 4):
    np.testing.assert_array_equal(cached[i]["image"], fresh[i]["image"])
    assert cached[i]["label"] == fresh[i]["label"]


def test_hand_features_rank_quality_but_far_from_perfectly():
  # 64 px, 160 + 96 images: SRCC 0.73 here (0.77 at 96 px with 240 + 120),
  # far inside both bounds, in 40% of the time.
  train = [source.generate(0, "train", i, 64, 64) for i in range(160)]
  test = [source.generate(0, "test", i, 64, 64) for i in range(96)]
  rows = {
    name: np.stack([hand_features.features(e["image"]) for e in examples])
    for name, examples in (("train", train), ("test", test))
  }
  assert rows["train"].shape == (160, len(hand_features.FEATURE_NAMES))
  fit = hand_features.RidgeFit().fit(rows["train"], [e["label"] for e in train])
  srcc = stats.spearmanr(fit.predict(rows["test"]), [e["label"] for e in test]).statistic
  # Global statistics rank quality well above chance...
  assert srcc > 0.4, srcc
  # ...but far from perfectly: the label depends on content too.
  assert srcc < 0.9, srcc
  assert np.std([e["label"] for e in test]) > 0.15  # labels spread over the range


def test_hand_features_refuse_what_they_cannot_measure():
  with pytest.raises(ValueError, match="uint8"):
    hand_features.features(np.zeros((32, 32, 3), np.float32))
  with pytest.raises(ValueError, match="16 px"):
    hand_features.features(np.zeros((8, 32, 3), np.uint8))
  with pytest.raises(ValueError, match="before fit"):
    hand_features.RidgeFit().predict(np.zeros((2, len(hand_features.FEATURE_NAMES))))
