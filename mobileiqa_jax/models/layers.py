"""Building blocks that behave like their PyTorch counterparts.

The original networks are PyTorch models; these wrappers pin down the details
where Flax defaults differ: symmetric `k // 2` padding (XLA "SAME" pads
asymmetrically at stride 2), BatchNorm epsilon and momentum, exact GELU.
"""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

Dtype = Any


def torch_padding(kernel_size: int, stride: int = 1, dilation: int = 1):
  """PyTorch/timm symmetric padding: ((s - 1) + d * (k - 1)) // 2 on each side."""
  pad = ((stride - 1) + dilation * (kernel_size - 1)) // 2
  return ((pad, pad), (pad, pad))


def conv2d(features: int, kernel_size: int = 1, stride: int = 1, *,
           groups: int = 1, use_bias: bool = True, padding=None,
           name: str | None = None, dtype: Dtype = jnp.float32) -> nn.Conv:
  """`torch.nn.Conv2d` for NHWC inputs (kernel stored HWIO), PyTorch padding.

  Returns a plain `nn.Conv` so its params (`kernel`, `bias`) sit directly under
  `name`, which mirrors the PyTorch state-dict name.
  """
  if padding is None:
    padding = torch_padding(kernel_size, stride)
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


def gelu(x):
  """PyTorch's default GELU is the exact (erf) form, not the tanh approximation."""
  return nn.gelu(x, approximate=False)


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
