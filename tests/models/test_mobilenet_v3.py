"""MobileNetV3 against the PyTorch parity fixtures, plus a tiny-width smoke test."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mobileiqa_jax.convert import naming
from mobileiqa_jax.models import mobilenet_v3
from tests.conftest import max_diff_bound, tree_shapes

PREFIX = "local_cnn."
TAPS = tuple(f"feature{i}" for i in range(5))


@pytest.fixture(scope="module")
def student_variables(parity):
  return naming.to_variables(parity.state_dict("student"), strip_prefix=PREFIX)


_apply_full_width = jax.jit(mobilenet_v3.MobileNetV3().apply)


def test_feature_channels():
  assert mobilenet_v3.feature_channels(1.0) == (16, 24, 40, 112, 960)


def test_variable_tree_matches_checkpoint(student_variables):
  model = mobilenet_v3.MobileNetV3()
  abstract = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 64, 64, 3)))
  assert tree_shapes(student_variables) == tree_shapes(abstract)


@pytest.mark.parametrize("size", ["2x224x224", "1x384x512"])
def test_matches_pytorch(parity, student_variables, size):
  batch, height, width = map(int, size.split("x"))
  reference = parity.reference("student", size)
  image = jnp.asarray(parity.image_nhwc(batch, height, width))
  features = _apply_full_width(student_variables, image)
  assert tuple(features) == TAPS
  for name in TAPS:
    expected = reference[name].transpose(0, 2, 3, 1)
    got = np.asarray(features[name])
    assert got.shape == expected.shape, name
    diff = float(np.max(np.abs(got - expected)))
    bound = max_diff_bound(expected)
    print(f"{size} {name} {got.shape}: max|diff| {diff:.3g} (bound {bound:.3g})")
    assert diff <= bound, name


def test_tiny_width_trains_at_odd_size():
  width = 0.35
  model = mobilenet_v3.MobileNetV3(width=width)
  x = jax.random.normal(jax.random.key(1), (2, 97, 131, 3))
  variables = jax.jit(model.init)(jax.random.key(0), x)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables))

  # One compiled call covers the odd-size shapes and the BatchNorm train path;
  # eval mode is covered by the parity tests.
  features, updates = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))(
    variables, x
  )
  # Every downsampling conv pads k // 2, so each level is ceil(previous / 2).
  heights, widths = [97], [131]
  for _ in TAPS:
    heights.append(-(-heights[-1] // 2))
    widths.append(-(-widths[-1] // 2))
  channels = mobilenet_v3.feature_channels(width)
  for i, name in enumerate(TAPS):
    assert features[name].shape == (2, heights[i + 1], widths[i + 1], channels[i])
    assert bool(jnp.all(jnp.isfinite(features[name])))
  changed = jax.tree.map(
    lambda a, b: bool(jnp.any(a != b)), variables["batch_stats"], updates["batch_stats"]
  )
  assert all(jax.tree.leaves(changed))
