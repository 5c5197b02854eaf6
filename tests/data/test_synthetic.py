"""The generated IQA set: deterministic, well-labelled, learnable, not trivial."""

import numpy as np
from scipy import ndimage, stats

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
  scores = [
    msssim.ms_ssim(clean, distortions.gaussian_noise(clean, rng, s)) for s in (0.1, 0.5, 1.0)
  ]
  assert scores[0] > scores[1] > scores[2]


def test_every_family_keeps_shape_and_range():
  clean = scenes.render_scene(np.random.default_rng(2), 48, 64)
  for name, family in distortions.FAMILIES.items():
    out = family(clean, np.random.default_rng(0), 0.7)
    assert out.shape == clean.shape, name
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0, name


def _features(image: np.ndarray) -> np.ndarray:
  """Hand-made no-reference statistics: sharpness, noise, contrast, colour."""
  gray = image.astype(np.float32).mean(axis=2) / 255.0
  feats = []
  for sigma in (0.0, 1.0, 2.0):
    smooth = ndimage.gaussian_filter(gray, sigma) if sigma else gray
    gy, gx = np.gradient(smooth)
    magnitude = np.hypot(gx, gy)
    feats += [magnitude.mean(), np.percentile(magnitude, 90), np.percentile(magnitude, 99)]
  laplacian = ndimage.laplace(gray)
  feats += [
    np.abs(laplacian).mean(),
    np.median(np.abs(laplacian)),
    gray.std(),
    image.std(axis=2).mean() / 255.0,
    len(np.unique(image[..., 1])) / 256.0,
  ]
  return np.log(np.asarray(feats) + 1e-4)


def test_learnable_but_not_trivial():
  train = [source.generate(0, "train", i, 96, 96) for i in range(240)]
  test = [source.generate(0, "test", i, 96, 96) for i in range(120)]

  def design(examples):
    x = np.stack([_features(e["image"]) for e in examples])
    return np.concatenate([x, x**2, np.ones((len(x), 1))], axis=1)

  x_train, x_test = design(train), design(test)
  mean, std = x_train.mean(0), x_train.std(0) + 1e-6
  std[-1], mean[-1] = 1.0, 0.0
  x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
  y_train = np.asarray([e["label"] for e in train])
  y_test = np.asarray([e["label"] for e in test])
  weights = np.linalg.solve(
    x_train.T @ x_train + 1.0 * np.eye(x_train.shape[1]), x_train.T @ y_train
  )
  srcc = stats.spearmanr(x_test @ weights, y_test).statistic
  # A few global statistics already rank quality well above chance...
  assert srcc > 0.5, srcc
  # ...but far from perfectly: the label depends on content too.
  assert srcc < 0.95, srcc
  assert np.std(y_test) > 0.15  # labels spread over the range
