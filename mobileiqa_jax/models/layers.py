"""Building blocks that behave like their PyTorch counterparts.

The original networks are PyTorch models; these wrappers pin down the details
where Flax defaults differ: symmetric `k // 2` padding (XLA "SAME" pads
asymmetrically at stride 2), BatchNorm epsilon and momentum, exact GELU.
"""

import functools
import math
from typing import Any

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp

from mobileiqa_jax import errors

Dtype = Any

# Which kernels the graph is written for. 'xla': forms XLA:CPU runs fast
# (depthwise conv as shifted slices, GELU through erf). 'tflite': forms the
# TFLite converter maps onto single LiteRT/XNNPACK ops (DEPTHWISE_CONV_2D,
# GELU), where the XLA forms would become chains of elementwise ops, each a
# pass over memory. 'tflite_int8': 'tflite' with each large depthwise conv
# split into channel slices, for dynamic-range quantisation (see
# `DepthwiseConv`). Same parameters and the same function every way.
KERNELS = ("xla", "tflite", "tflite_int8")

# The TFLite converter's dynamic-range quantisation leaves constant tensors of
# fewer elements than this in float32.
TFLITE_MIN_QUANTIZED_ELEMENTS = 1024

# A band threshold (MobileIQA, MobileViTv2) that no map reaches: never band.
NO_BANDS = 1 << 62


def check_kernels(kernels: str) -> str:
  if kernels not in KERNELS:
    raise errors.InvalidInput(f"kernels must be one of {KERNELS}, got {kernels!r}")
  return kernels


def torch_padding(kernel_size: int, stride: int = 1, dilation: int = 1):
  """PyTorch/timm symmetric padding: ((s - 1) + d * (k - 1)) // 2 on each side."""
  pad = ((stride - 1) + dilation * (kernel_size - 1)) // 2
  return ((pad, pad), (pad, pad))


def conv2d(
  features: int,
  kernel_size: int = 1,
  stride: int = 1,
  *,
  groups: int = 1,
  use_bias: bool = True,
  padding=None,
  name: str | None = None,
  dtype: Dtype = jnp.float32,
  kernels: str = "xla",
) -> nn.Module:
  """`torch.nn.Conv2d` for NHWC inputs (kernel stored HWIO), PyTorch padding.

  Returns an `nn.Conv`; for the 'xla' kernels a `PointwiseConv` when the
  conv is 1x1 at stride 1; or when every channel is its own group a
  `DepthwiseConv` in the form the kernels call for ('shifted' for 'xla';
  'channel_slices' for 'tflite_int8' when the kernel is large enough to be
  quantised). All have the same params
  (`kernel`, `bias`) directly under `name`, which mirrors the PyTorch
  state-dict name, whichever kernels are chosen.
  """
  if padding is None:
    padding = torch_padding(kernel_size, stride)
  form = None
  if groups > 1 and groups == features:
    if check_kernels(kernels) == "xla":
      form = "shifted"
    elif (
      kernels == "tflite_int8"
      and kernel_size * kernel_size * features >= TFLITE_MIN_QUANTIZED_ELEMENTS
    ):
      form = "channel_slices"
  if (
    check_kernels(kernels) == "xla"
    and kernel_size == 1
    and stride == 1
    and groups == 1
    and _spatial_pads(padding) == ((0, 0), (0, 0))
  ):
    return PointwiseConv(features, use_bias=use_bias, dtype=dtype, name=name)
  if form:
    return DepthwiseConv(
      features,
      kernel_size,
      stride,
      padding=padding,
      use_bias=use_bias,
      dtype=dtype,
      form=form,
      name=name,
    )
  return nn.Conv(
    features,
    (kernel_size, kernel_size),
    strides=(stride, stride),
    padding=padding,
    feature_group_count=groups,
    use_bias=use_bias,
    dtype=dtype,
    param_dtype=jnp.float32,
    name=name,
  )


def pointwise_params(module: nn.Module, in_features: int, features: int, use_bias: bool = True):
  """Declares a 1x1 conv's parameters on `module`, as `nn.Conv(features,
  (1, 1))` names, shapes and initialises them; returns (kernel as
  (in_features, features), bias or None)."""
  kernel = module.param(
    "kernel", nn.initializers.lecun_normal(), (1, 1, in_features, features), jnp.float32
  )
  bias = module.param("bias", nn.initializers.zeros, (features,), jnp.float32) if use_bias else None
  return kernel[0, 0], bias


class PointwiseConv(nn.Module):
  """A 1x1 conv at stride 1 as one matrix product over the pixels.

  The parameters are those of `nn.Conv(features, (1, 1))`: `kernel`
  (1, 1, C, features) and optional `bias` (features,), same initialisers, so
  the values drawn at init are the same too. Same function; XLA:CPU runs the
  product and both its gradients as dots, while it runs a convolution's
  kernel gradient through a generic loop: at 16x64x64x16 -> 64 channels, the
  kernel gradient takes 44-70 ms as a conv and 6 ms as a dot, the forward
  pass 3-4 ms and 1.2 ms. 1x1 convs are most of MobileNetV3's and
  MobileViTv2's multiply-adds.
  """

  features: int
  use_bias: bool = True
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    kernel, bias = pointwise_params(self, c, self.features, self.use_bias)
    # Flattened to (pixels, C): a dot_general contracting C alone would leave
    # three batch-like axes, which the kernel gradient then sums over outside
    # the dot (2.5x slower).
    rows = x.astype(self.dtype).reshape(-1, c)
    y = (rows @ kernel.astype(self.dtype)).reshape(*x.shape[:-1], self.features)
    return y if bias is None else y + bias.astype(self.dtype)


class DepthwiseConv(nn.Module):
  """Depthwise conv (groups == channels) in a form a backend runs well.

  The parameters are those of `nn.Conv(features, feature_group_count=features)`:
  `kernel` (k, k, 1, C) and optional `bias` (C,), same initialisers.

  Forms:
    'shifted' (XLA): a sum of k*k shifted, scaled maps (`depthwise_conv`).
      The same multiply-adds; XLA fuses them into one pass over the map,
      where its grouped convolution on CPU runs 3-8x slower (0.9 s against
      7.1 s for a 3x3 over 616x954x256).
    'channel_slices' (TFLite int8): one grouped conv per slice of channels,
      each slice's kernel under `TFLITE_MIN_QUANTIZED_ELEMENTS`, so that the
      converter's dynamic-range quantisation keeps it float32 and the conv
      stays a float DEPTHWISE_CONV_2D inside the XNNPACK delegate. Quantised
      whole, it becomes a hybrid op that XNNPACK does not take: LiteRT runs
      it outside the delegate, and each one cuts the delegated graph in two
      (the student at 1231x1907, 2 threads: 0.46 s with 12 such ops, 0.44 s
      without; float32 0.50 s).
  """

  features: int
  kernel_size: int
  stride: int = 1
  padding: Any = "VALID"
  use_bias: bool = True
  dtype: Dtype = jnp.float32
  form: str = "shifted"

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    if c != self.features:
      raise ValueError(f"depthwise conv of {self.features} channels got {c}")
    k = self.kernel_size
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, 1, c), jnp.float32)
    conv = {"shifted": depthwise_conv, "channel_slices": _channel_sliced_conv}[self.form]
    y = conv(x.astype(self.dtype), kernel[:, :, 0].astype(self.dtype), self.stride, self.padding)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (c,), jnp.float32).astype(self.dtype)
    return y


def _channel_sliced_conv(x, kernel, stride, padding):
  """Depthwise conv of NHWC x with a (k, k, C) kernel, as grouped convs over
  slices of channels whose kernels hold fewer than
  `TFLITE_MIN_QUANTIZED_ELEMENTS` values each."""
  k, c = kernel.shape[0], kernel.shape[-1]
  group = max(1, (TFLITE_MIN_QUANTIZED_ELEMENTS - 1) // (k * k))
  parts = [
    lax.conv_general_dilated(
      x[..., lo : lo + group],
      kernel[:, :, None, lo : lo + group],
      (stride, stride),
      padding,
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
      feature_group_count=min(group, c - lo),
    )
    for lo in range(0, c, group)
  ]
  # XNNPACK leaves a CONCATENATION of more than five inputs (960 channels of
  # 5x5: 24) to LiteRT, a copy outside the delegate; the converter merges
  # nested ones, so that stays.
  return jnp.concatenate(parts, axis=-1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def depthwise_conv(x, kernel, stride: int = 1, padding="VALID"):
  """Depthwise conv of NHWC x with a (k, k, C) kernel: k*k shifted, scaled slices.

  Differentiated, it keeps only x and the kernel for the backward pass
  (`_depthwise_backward`), not the k*k shifted copies of x that autodiff of
  the slices would keep. The gradients are the same sums.

  Args:
    x: (B, H, W, C).
    kernel: (k, k, C).
    stride: the same along both axes.
    padding: "VALID" or ((top, bottom), (left, right)).
  """
  return _shifted_sum(x, kernel, stride, padding)


def _depthwise_forward(x, kernel, stride, padding):
  return _shifted_sum(x, kernel, stride, padding), (x, kernel)


def _depthwise_backward(stride, padding, residuals, grad):
  x, kernel = residuals
  grad_x = _depthwise_input_gradient(grad, kernel, stride, padding, x.shape)
  # The kernel's gradient, one tap per loop step. Differentiating the shifts
  # directly makes XLA materialise all k*k shifted copies of x (0.7 GB for
  # the student at batch 2, 512x512), early in the forward pass and alive
  # until here; XLA's grouped-convolution gradient instead builds a dense
  # (k, k, C, C) kernel.
  b, _, _, c = x.shape
  k = kernel.shape[0]
  x = _pad_spatial(x, padding)
  out_h, out_w = grad.shape[1:3]
  window = (b, (out_h - 1) * stride + 1, (out_w - 1) * stride + 1, c)

  def tap(index):
    shifted = lax.dynamic_slice(x, (0, index // k, index % k, 0), window)
    return jnp.sum(shifted[:, ::stride, ::stride] * grad, axis=(0, 1, 2))

  grad_kernel = lax.map(tap, jnp.arange(k * k)).reshape(k, k, c)
  return grad_x, grad_kernel


depthwise_conv.defvjp(_depthwise_forward, _depthwise_backward)


def _depthwise_input_gradient(grad, kernel, stride, padding, x_shape):
  """The gradient of `_shifted_sum` with respect to x, as one more shifted sum.

  x_pad[m] receives grad[o] * kernel[t] wherever o * stride + t == m: the
  correlation of grad, spread `stride` apart and padded by k - 1, with the
  kernel flipped; then the padding is cropped off. Autodiff of the slices
  writes the same sums as k*k padded copies of grad added one by one, which
  XLA:CPU does not fuse: 2x slower over the student_tiny backbone's
  backward pass (16 x 128 x 128).
  """
  k = kernel.shape[0]
  (top, bottom), (left, right) = _spatial_pads(padding)
  _, h, w, _ = x_shape
  out_h, out_w = grad.shape[1:3]
  # k - 1 zeros before the spread grad, and after it as many as make the
  # correlation's output the padded input's size (at least k - 1).
  rows_after = h + top + bottom - ((out_h - 1) * stride + 1)
  cols_after = w + left + right - ((out_w - 1) * stride + 1)
  spread = lax.pad(
    grad,
    jnp.zeros((), grad.dtype),
    ((0, 0, 0), (k - 1, rows_after, stride - 1), (k - 1, cols_after, stride - 1), (0, 0, 0)),
  )
  grad_padded = _shifted_sum(spread, kernel[::-1, ::-1], 1, "VALID")
  return grad_padded[:, top : top + h, left : left + w]


def _spatial_pads(padding):
  """((top, bottom), (left, right)) of "VALID" or such a pair itself."""
  return ((0, 0), (0, 0)) if padding == "VALID" else padding


def _pad_spatial(x, padding):
  """NHWC x padded with zeros by "VALID" or ((top, bottom), (left, right))."""
  return jnp.pad(x, ((0, 0), *_spatial_pads(padding), (0, 0)))


def _shifted_sum(x, kernel, stride, padding):
  b, _, _, c = x.shape
  k = kernel.shape[0]
  x = _pad_spatial(x, padding)
  out_h = (x.shape[1] - k) // stride + 1
  out_w = (x.shape[2] - k) // stride + 1
  y = None
  for i in range(k):
    for j in range(k):
      tap = (
        lax.slice(
          x,
          (0, i, j, 0),
          (b, i + (out_h - 1) * stride + 1, j + (out_w - 1) * stride + 1, c),
          (1, stride, stride, 1),
        )
        * kernel[i, j]
      )
      y = tap if y is None else y + tap
  return y


def batch_norm(train: bool, name: str | None = None, dtype: Dtype = jnp.float32):
  """`torch.nn.BatchNorm2d` defaults: eps 1e-5, running-average momentum 0.1."""
  return nn.BatchNorm(
    use_running_average=not train,
    momentum=0.9,
    epsilon=1e-5,
    dtype=dtype,
    param_dtype=jnp.float32,
    name=name,
  )


def gelu(x, kernels: str = "xla"):
  """PyTorch's default GELU, x * (1 + erf(x / sqrt(2))) / 2, the exact form.

  Spelled out rather than `nn.gelu(x, approximate=False)`: that computes it
  through erfc, which XLA CPU evaluates about four times slower than erf, and
  the first level adapter applies it to 3*10^8 values per UHD image. erf is
  also the form PyTorch itself computes.

  With the TFLite kernels the same function is wrapped in the StableHLO
  composite `aten.gelu.default` (approximate 'none'), which the TFLite
  converter lowers to one exact GELU op; unwrapped, erf reaches TFLite as a
  rational polynomial of ~25 elementwise ops, each a pass over the map.
  """
  if check_kernels(kernels) != "xla":
    return _gelu_composite(x, approximate="none")
  return _gelu_erf(x)


def _gelu_erf(x, **unused_attributes):
  # A Python float is weakly typed: bfloat16 inputs stay bfloat16.
  return x * (1.0 + lax.erf(x * math.sqrt(0.5))) * 0.5


# The name and attribute are those the converter's composite lowering matches
# (the ones ai-edge-torch emits for torch's GELU).
_gelu_composite = lax.composite(_gelu_erf, name="aten.gelu.default")


def hard_sigmoid(x):
  """PyTorch `F.hardsigmoid`: relu6(x + 3) / 6."""
  return jnp.clip(x + 3.0, 0.0, 6.0) / 6.0


def hard_swish(x):
  """PyTorch `F.hardswish`: x * relu6(x + 3) / 6."""
  return x * hard_sigmoid(x)


def make_divisible(value: float, divisor: int = 8, round_limit: float = 0.9) -> int:
  """timm's channel rounding: nearest multiple of `divisor`, never below 90%."""
  rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
  if rounded < round_limit * value:
    rounded += divisor
  return rounded
