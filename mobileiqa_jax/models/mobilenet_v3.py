"""MobileNetV3-Large backbone: the student's feature extractor.

Behaves like timm 1.0's `mobilenetv3_large_100` built with `features_only=True`
in eval mode: the stem and the seven block stages, without the head conv or
classifier, returning one feature map at each of the strides 2, 4, 8, 16, 32.

Submodule names follow the PyTorch state dict (`conv_stem`, `bn1`,
`blocks_{stage}_{index}/{conv_pw, bn1, conv_dw, bn2, se, conv_pwl, bn3}`), so
`convert.naming` maps a timm or MobileIQA checkpoint straight onto them.
"""

from collections.abc import Callable
import functools
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from mobileiqa_jax.models import layers

Dtype = Any


class _Block(NamedTuple):
  """One block of the architecture table, before width scaling."""

  kind: str  # "ds" depthwise-separable, "ir" inverted residual, "cn" conv-bn-act
  kernel: int
  stride: int
  out: int
  exp_ratio: float = 1.0
  se: bool = False
  act: Callable = layers.hard_swish


def _stage(repeats: int, block: _Block) -> tuple[_Block, ...]:
  """`repeats` copies of `block`; only the first keeps its stride."""
  return (block,) + (block._replace(stride=1),) * (repeats - 1)


_RELU = nn.relu
# The MobileNetV3-Large table (Howard et al. 2019, Table 1) as timm spells it.
_STAGES: tuple[tuple[_Block, ...], ...] = (
  (_Block("ds", 3, 1, 16, act=_RELU),),
  (_Block("ir", 3, 2, 24, 4.0, act=_RELU), _Block("ir", 3, 1, 24, 3.0, act=_RELU)),
  _stage(3, _Block("ir", 5, 2, 40, 3.0, se=True, act=_RELU)),
  (
    _Block("ir", 3, 2, 80, 6.0),
    _Block("ir", 3, 1, 80, 2.5),
    *_stage(2, _Block("ir", 3, 1, 80, 2.3)),
  ),
  _stage(2, _Block("ir", 3, 1, 112, 6.0, se=True)),
  _stage(3, _Block("ir", 5, 2, 160, 6.0, se=True)),
  (_Block("cn", 1, 1, 960),),
)
_STEM_CHANNELS = 16


def _scaled(channels: int, width: float) -> int:
  return layers.make_divisible(channels * width)


def _stem_channels(width: float) -> int:
  # timm keeps the stem at 16 channels for narrow models (multiplier < 0.75).
  return _STEM_CHANNELS if width < 0.75 else _scaled(_STEM_CHANNELS, width)


def _tap_stages() -> tuple[int, ...]:
  """Stages whose output is a feature level.

  As in timm, a stage ends a level when the next stage downsamples or when it
  is the last one; the stride-1 stages 3 and 5 share a level with their
  successors.
  """
  taps = []
  for i in range(len(_STAGES)):
    if i + 1 == len(_STAGES) or _STAGES[i + 1][0].stride > 1:
      taps.append(i)
  return tuple(taps)


def feature_channels(width: float = 1.0) -> tuple[int, ...]:
  """Channels of feature0..feature4 (16, 24, 40, 112, 960 at width 1.0)."""
  return tuple(_scaled(_STAGES[i][-1].out, width) for i in _tap_stages())


class SqueezeExcite(nn.Module):
  """timm's SqueezeExcite as configured by MobileNetV3.

  ReLU inside whatever the block's activation, a hard-sigmoid gate, and the
  reduced width rounded with `make_divisible` (not `round`).
  """

  rd_ratio: float = 0.25
  dtype: Dtype = jnp.float32
  kernels: str = "xla"

  @nn.compact
  def __call__(self, x):
    channels = x.shape[-1]
    reduced = layers.make_divisible(channels * self.rd_ratio)
    conv = functools.partial(layers.conv2d, dtype=self.dtype, kernels=self.kernels)
    s = jnp.mean(x, axis=(1, 2), keepdims=True)
    s = nn.relu(conv(reduced, 1, name="conv_reduce")(s))
    s = conv(channels, 1, name="conv_expand")(s)
    return x * layers.hard_sigmoid(s)


class DepthwiseSeparable(nn.Module):
  """dw conv -> bn1 + act -> [se] -> pw conv -> bn2 (linear) [+ input]."""

  out: int
  kernel: int
  stride: int
  se: bool
  act: Callable
  dtype: Dtype = jnp.float32
  kernels: str = "xla"

  @nn.compact
  def __call__(self, x, train: bool = False):
    channels = x.shape[-1]
    y = layers.conv2d(
      channels,
      self.kernel,
      self.stride,
      groups=channels,
      use_bias=False,
      name="conv_dw",
      dtype=self.dtype,
      kernels=self.kernels,
    )(x)
    y = self.act(layers.batch_norm(train, "bn1", self.dtype)(y))
    if self.se:
      y = SqueezeExcite(dtype=self.dtype, kernels=self.kernels, name="se")(y)
    y = layers.conv2d(
      self.out, 1, use_bias=False, name="conv_pw", dtype=self.dtype, kernels=self.kernels
    )(y)
    y = layers.batch_norm(train, "bn2", self.dtype)(y)
    if self.stride == 1 and channels == self.out:
      y = y + x
    return y


class InvertedResidual(nn.Module):
  """pw expand + act -> dw conv + act -> [se] -> pw project (linear) [+ input]."""

  out: int
  kernel: int
  stride: int
  exp_ratio: float
  se: bool
  act: Callable
  dtype: Dtype = jnp.float32
  kernels: str = "xla"

  @nn.compact
  def __call__(self, x, train: bool = False):
    channels = x.shape[-1]
    # The expansion is rounded from the block's actual input width, with no
    # further width multiplier (timm: make_divisible(in_chs * exp_ratio)).
    mid = layers.make_divisible(channels * self.exp_ratio)
    y = layers.conv2d(
      mid, 1, use_bias=False, name="conv_pw", dtype=self.dtype, kernels=self.kernels
    )(x)
    y = self.act(layers.batch_norm(train, "bn1", self.dtype)(y))
    y = layers.conv2d(
      mid,
      self.kernel,
      self.stride,
      groups=mid,
      use_bias=False,
      name="conv_dw",
      dtype=self.dtype,
      kernels=self.kernels,
    )(y)
    y = self.act(layers.batch_norm(train, "bn2", self.dtype)(y))
    if self.se:
      y = SqueezeExcite(dtype=self.dtype, kernels=self.kernels, name="se")(y)
    y = layers.conv2d(
      self.out, 1, use_bias=False, name="conv_pwl", dtype=self.dtype, kernels=self.kernels
    )(y)
    y = layers.batch_norm(train, "bn3", self.dtype)(y)
    if self.stride == 1 and channels == self.out:
      y = y + x
    return y


class ConvBnAct(nn.Module):
  """conv -> bn1 + act; timm gives this block no skip in MobileNetV3."""

  out: int
  kernel: int
  stride: int
  act: Callable
  dtype: Dtype = jnp.float32
  kernels: str = "xla"

  @nn.compact
  def __call__(self, x, train: bool = False):
    y = layers.conv2d(
      self.out,
      self.kernel,
      self.stride,
      use_bias=False,
      name="conv",
      dtype=self.dtype,
      kernels=self.kernels,
    )(x)
    return self.act(layers.batch_norm(train, "bn1", self.dtype)(y))


def _make_block(spec: _Block, width: float, name: str, dtype: Dtype, kernels: str) -> nn.Module:
  out = _scaled(spec.out, width)
  if spec.kind == "ds":
    return DepthwiseSeparable(
      out, spec.kernel, spec.stride, spec.se, spec.act, dtype=dtype, kernels=kernels, name=name
    )
  if spec.kind == "ir":
    return InvertedResidual(
      out,
      spec.kernel,
      spec.stride,
      spec.exp_ratio,
      spec.se,
      spec.act,
      dtype=dtype,
      kernels=kernels,
      name=name,
    )
  if spec.kind == "cn":
    return ConvBnAct(
      out, spec.kernel, spec.stride, spec.act, dtype=dtype, kernels=kernels, name=name
    )
  raise ValueError(f"unknown block kind {spec.kind!r}")


class MobileNetV3(nn.Module):
  """MobileNetV3-Large trunk returning five feature levels.

  Attributes:
    width: channel multiplier; 1.0 is `mobilenetv3_large_100`, smaller values
      give the narrow variants used in tests (channels rounded as timm does).
    dtype: compute dtype; parameters are always float32.
    kernels: the form of the depthwise and 1x1 convs
      (`layers.KERNELS`); the parameters are the same.
  """

  width: float = 1.0
  dtype: Dtype = jnp.float32
  kernels: str = "xla"

  @nn.compact
  def __call__(self, x, train: bool = False) -> dict[str, jax.Array]:
    """Features of an NHWC, ImageNet-normalised batch.

    Args:
      x: (B, H, W, 3) float32.
      train: use batch statistics in BatchNorm (and update `batch_stats`).

    Returns:
      {"feature0": ..., "feature4": ...}, NHWC at strides 2, 4, 8, 16, 32 with
      `feature_channels(width)` channels.
    """
    x = x.astype(self.dtype)
    x = layers.conv2d(
      _stem_channels(self.width), 3, 2, use_bias=False, name="conv_stem", dtype=self.dtype
    )(x)
    x = layers.hard_swish(layers.batch_norm(train, "bn1", self.dtype)(x))
    taps = _tap_stages()
    features = {}
    for i, stage in enumerate(_STAGES):
      for j, spec in enumerate(stage):
        x = _make_block(spec, self.width, f"blocks_{i}_{j}", self.dtype, self.kernels)(x, train)
      if i in taps:
        features[f"feature{len(features)}"] = x
    return features
