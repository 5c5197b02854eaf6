"""The PyTorch-behaving building blocks against their plain Flax/JAX equivalents."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mobileiqa_jax.models import layers


@pytest.mark.parametrize(
  "h,w,kernel,stride", [(9, 13, 3, 1), (9, 13, 3, 2), (10, 7, 5, 2), (11, 11, 5, 1), (2, 3, 3, 2)]
)
@pytest.mark.parametrize("use_bias", [False, True])
def test_depthwise_conv_equals_grouped_nn_conv(h, w, kernel, stride, use_bias):
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, h, w, 8)).astype(np.float32)
  grouped = nn.Conv(
    8,
    (kernel, kernel),
    strides=(stride, stride),
    padding=layers.torch_padding(kernel, stride),
    feature_group_count=8,
    use_bias=use_bias,
  )
  variables = grouped.init(jax.random.key(0), x)
  variables = jax.tree.map(
    lambda a: a + 0.1 * rng.standard_normal(a.shape).astype(np.float32), variables
  )
  depthwise = layers.conv2d(8, kernel, stride, groups=8, use_bias=use_bias)
  assert isinstance(depthwise, layers.DepthwiseConv)
  assert not isinstance(
    layers.conv2d(8, kernel, stride, groups=8, kernels="tflite"), layers.DepthwiseConv
  )
  assert jax.tree.map(np.shape, depthwise.init(jax.random.key(0), x)) == jax.tree.map(
    np.shape, variables
  )
  np.testing.assert_allclose(
    depthwise.apply(variables, x), grouped.apply(variables, x), rtol=1e-5, atol=1e-5
  )


@pytest.mark.parametrize("use_bias", [False, True])
def test_pointwise_conv_equals_nn_conv_with_its_init_and_gradients(use_bias):
  x = jnp.asarray(np.random.default_rng(3).standard_normal((2, 5, 7, 6)).astype(np.float32))
  conv = nn.Conv(4, (1, 1), padding=((0, 0), (0, 0)), use_bias=use_bias)
  pointwise = layers.conv2d(4, use_bias=use_bias)
  assert isinstance(pointwise, layers.PointwiseConv)
  for kernels in ("tflite", "tflite_int8"):
    assert isinstance(layers.conv2d(4, use_bias=use_bias, kernels=kernels), nn.Conv)
  assert isinstance(layers.conv2d(4, 1, 2), nn.Conv)  # strided: not a plain product
  # The same initialisers under the same names draw the same values.
  variables = conv.init(jax.random.key(0), x)
  jax.tree.map(np.testing.assert_array_equal, pointwise.init(jax.random.key(0), x), variables)
  variables = jax.tree.map(lambda a: a + 0.1, variables)  # a non-zero bias
  np.testing.assert_allclose(
    pointwise.apply(variables, x), conv.apply(variables, x), rtol=1e-5, atol=1e-6
  )
  loss = lambda module: lambda v, x: jnp.sum(jnp.sin(module.apply(v, x)))
  actual = jax.grad(loss(pointwise), argnums=(0, 1))(variables, x)
  expected = jax.grad(loss(conv), argnums=(0, 1))(variables, x)
  close = lambda a, e: np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)
  jax.tree.map(close, actual, expected)


@pytest.mark.parametrize("kernel,channels,stride", [(5, 120, 2), (3, 240, 1), (5, 40, 1)])
def test_channel_grouped_depthwise_conv_equals_grouped_nn_conv(kernel, channels, stride):
  # The int8 export's form: kernels of under 1024 values per slice of channels.
  x = np.random.default_rng(2).standard_normal((1, 11, 9, channels)).astype(np.float32)
  padding = layers.torch_padding(kernel, stride)
  grouped = nn.Conv(
    channels,
    (kernel, kernel),
    strides=(stride, stride),
    padding=padding,
    feature_group_count=channels,
  )
  variables = grouped.init(jax.random.key(0), x)
  variables = jax.tree.map(lambda a: a + 0.1, variables)  # a non-zero bias
  split = layers.conv2d(channels, kernel, stride, groups=channels, kernels="tflite_int8")
  assert (isinstance(split, layers.DepthwiseConv) and split.form == "channel_slices") == (
    kernel * kernel * channels >= 1024
  )
  assert jax.tree.map(np.shape, split.init(jax.random.key(0), x)) == jax.tree.map(
    np.shape, variables
  )
  np.testing.assert_allclose(
    split.apply(variables, x), grouped.apply(variables, x), rtol=1e-5, atol=1e-5
  )


@pytest.mark.parametrize(
  "h,w,kernel,stride,padding",
  [
    (9, 13, 3, 1, None),
    (10, 7, 5, 2, None),
    (2, 3, 3, 2, None),
    (11, 8, 3, 2, "VALID"),
    (12, 9, 5, 2, "VALID"),
    # Row bands (mobilevit_v2.InvertedResidual) pad the columns only.
    (6, 9, 3, 1, ((0, 0), (1, 1))),
  ],
)
def test_depthwise_conv_gradients_equal_grouped_nn_conv(h, w, kernel, stride, padding):
  # The custom backward pass (a flipped-kernel correlation for x, one tap at
  # a time for the kernel) against autodiff of XLA's conv.
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.standard_normal((2, h, w, 8)).astype(np.float32))
  weights = jnp.asarray(rng.standard_normal((kernel, kernel, 8)).astype(np.float32))
  padding = padding or layers.torch_padding(kernel, stride)

  def grouped(x, weights):
    return jax.lax.conv_general_dilated(
      x,
      weights[:, :, None, :],
      (stride, stride),
      padding,
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
      feature_group_count=8,
    )

  out_grad = jnp.asarray(rng.standard_normal(grouped(x, weights).shape).astype(np.float32))
  expected = jax.vjp(grouped, x, weights)[1](out_grad)
  actual = jax.vjp(lambda x, k: layers.depthwise_conv(x, k, stride, padding), x, weights)[1](
    out_grad
  )
  for a, e in zip(actual, expected):
    np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)


def test_gelu_is_the_erf_form():
  x = np.linspace(-6, 6, 101).astype(np.float32)
  expected = [v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)]
  np.testing.assert_allclose(layers.gelu(jnp.asarray(x)), expected, rtol=1e-6, atol=1e-6)
  # The TFLite form is the same function, wrapped for the converter.
  np.testing.assert_allclose(
    jax.jit(lambda x: layers.gelu(x, "tflite"))(x), expected, rtol=1e-6, atol=1e-6
  )
