"""MobileViTv2 backbone: parameter names, parity with timm, the patch resize."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mobileiqa_jax.convert import naming
from mobileiqa_jax.models import mobilevit_v2
from mobileiqa_jax.models.mobilevit_v2 import MobileViTV2
from tests.conftest import max_diff_bound, random_variables, tree_shapes

TAPS = tuple(f"feature{i}" for i in range(5))


@pytest.fixture(scope="module")
def teacher_variables(parity):
  return naming.to_variables(parity.state_dict("teacher"), strip_prefix="global_vit.")


def test_variables_match_state_dict_names(teacher_variables):
  model = MobileViTV2()
  expected = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 224, 224, 3)))
  assert tree_shapes(teacher_variables) == tree_shapes(expected)


def test_matches_timm_at_224(parity, teacher_variables):
  reference = parity.reference("teacher", "1x224x224")
  image = parity.image_nhwc(1, 224, 224)
  out = jax.jit(MobileViTV2().apply)(teacher_variables, image)
  assert tuple(out[k].shape[-1] for k in TAPS) == mobilevit_v2.feature_channels(2.0)
  for tap in TAPS:
    ref = reference[tap].transpose(0, 2, 3, 1)
    assert out[tap].shape == ref.shape, tap
    diff = float(np.max(np.abs(np.asarray(out[tap]) - ref)))
    print(
      f"mobilevitv2_200 {tap} {ref.shape}: max|diff| {diff:.3g} (bound {max_diff_bound(ref):.3g})"
    )
    assert diff <= max_diff_bound(ref), tap


def _torch_bilinear(image, out_h, out_w, align_corners):
  """PyTorch's upsample_bilinear2d, one output pixel at a time, for (H, W)."""
  in_h, in_w = image.shape

  def source(i, n_in, n_out):
    if align_corners:
      return i * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return max((i + 0.5) * n_in / n_out - 0.5, 0.0)

  out = np.empty((out_h, out_w))
  for oy in range(out_h):
    sy = source(oy, in_h, out_h)
    y0 = int(sy)
    y1 = y0 + (y0 < in_h - 1)
    ly = sy - y0
    for ox in range(out_w):
      sx = source(ox, in_w, out_w)
      x0 = int(sx)
      x1 = x0 + (x0 < in_w - 1)
      lx = sx - x0
      out[oy, ox] = (1 - ly) * ((1 - lx) * image[y0, x0] + lx * image[y0, x1]) + ly * (
        (1 - lx) * image[y1, x0] + lx * image[y1, x1]
      )
  return out


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("in_hw", [(7, 5), (13, 17), (4, 9)])
def test_interpolate_bilinear_matches_pytorch(in_hw, align_corners):
  h, w = in_hw
  out_hw = (math.ceil(h / 2) * 2, math.ceil(w / 2) * 2)
  x = np.random.default_rng(1).standard_normal((2, h, w, 3)).astype(np.float32)
  got = np.asarray(mobilevit_v2.interpolate_bilinear(jnp.asarray(x), out_hw, align_corners))
  want = np.stack(
    [
      np.stack([_torch_bilinear(x[b, :, :, c], *out_hw, align_corners) for c in range(3)], -1)
      for b in range(2)
    ]
  )
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_interpolate_align_corners_keeps_a_ramp():
  # With aligned corners output i samples input position i * (n - 1) / (m - 1),
  # so a linear ramp stays exactly linear, edges included.
  ramp = np.arange(7, dtype=np.float32)[None, :, None, None] * np.ones((1, 1, 3, 1), np.float32)
  got = np.asarray(mobilevit_v2.interpolate_bilinear(jnp.asarray(ramp), (8, 3), True))
  np.testing.assert_allclose(got[0, :, 0, 0], np.arange(8) * 6 / 7, atol=1e-6)


def test_block_resizes_odd_map_up_and_keeps_it():
  block = mobilevit_v2.MobileViTV2Block(depth=1)
  x = jnp.ones((1, 7, 9, 16))
  assert jax.jit(block.apply)(random_variables(block, x), x).shape == (1, 8, 10, 16)


def _expected_sizes(h, w):
  """Spatial sizes of the five taps: stride-2 convs, then round up to even."""

  def conv(n):
    return (n - 1) // 2 + 1

  sizes, n = [], (conv(h), conv(w))
  for i, stride in enumerate((1, 2, 2, 2, 2)):
    if stride == 2:
      n = (conv(n[0]), conv(n[1]))
    if i >= 2:  # stages with a MobileViTv2 block
      n = (n[0] + n[0] % 2, n[1] + n[1] % 2)
    sizes.append(n)
  return sizes


def test_tiny_variant_odd_size_batch_two():
  model = MobileViTV2(width=0.5)
  x = jax.random.normal(jax.random.key(1), (2, 97, 131, 3))
  variables = random_variables(model, x)
  out = jax.jit(model.apply)(variables, x)
  channels = mobilevit_v2.feature_channels(0.5)
  assert channels == (32, 64, 128, 192, 256)
  for tap, c, (h, w) in zip(TAPS, channels, _expected_sizes(97, 131)):
    assert out[tap].shape == (2, h, w, c), tap
    assert bool(jnp.all(jnp.isfinite(out[tap]))), tap

  train_out, updates = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))(
    variables, x
  )
  assert tree_shapes(updates["batch_stats"]) == tree_shapes(variables["batch_stats"])
  assert train_out["feature4"].shape == out["feature4"].shape


@pytest.mark.parametrize(
  "h,w,stride,band_values",
  [(23, 9, 2, 40), (24, 9, 2, 40), (23, 9, 1, 40), (11, 6, 2, 1), (11, 6, 1, 1), (9, 5, 2, 10**6)],
)
def test_banded_inverted_residual_equals_whole(monkeypatch, h, w, stride, band_values):
  # Bands of a few rows (odd and even heights, both strides, one-row bands,
  # a band taller than the map) against the block run whole.
  monkeypatch.setattr(mobilevit_v2, "_BAND_VALUES", band_values)
  x = np.random.default_rng(3).standard_normal((2, h, w, 4)).astype(np.float32)
  whole = mobilevit_v2.InvertedResidual(4 if stride == 1 else 6, stride)
  banded = whole.clone(band_threshold=0)
  variables = random_variables(whole, x, seed=4)
  expected = whole.apply(variables, x)
  np.testing.assert_allclose(jax.jit(banded.apply)(variables, x), expected, rtol=1e-5, atol=1e-5)
  assert tree_shapes(banded.init(jax.random.key(0), x)) == tree_shapes(variables)
