"""MobileViTv2 backbone, the teacher's feature extractor.

Behaves as timm 1.0's `mobilevitv2_*` with `features_only=True,
out_indices=(0, 1, 2, 3, 4)` in eval mode: five taps, the outputs of the five
stages. Submodule names follow timm's flattened feature-model state dict
(`stages_2.1.transformer.0.attn.qkv_proj` -> `stages_2_1/transformer_0/...`).

Layout notes. PyTorch unfolds a map (B, C, H, W) into patches (B, C, P, N),
P = pixels in a patch, N = number of patches, runs the transformer and folds
back. Every op in that transformer is either per position (1x1 convs, SiLU),
over all positions at once (GroupNorm(1)) or a reduction over N for each P
(the separable attention). In NHWC the patch grid is therefore just a view,
(B, H, W, C) -> (B, nH, pH, nW, pW, C), taken inside the attention only; the
unfold/fold pair itself is the identity and costs nothing here.
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mobileiqa_jax.models.layers import NO_BANDS, batch_norm, conv2d, make_divisible

Dtype = Any

# Per stage: (base channels, stride, inverted-residual blocks, transformer
# depth); a non-zero depth appends one MobileViTv2 block to the stage.
_STAGES = (
  (64, 1, 1, 0),
  (128, 2, 2, 0),
  (256, 2, 1, 2),
  (384, 2, 1, 4),
  (512, 2, 1, 3),
)
_STEM = 32
_PATCH = 2
_KERNEL = 3  # the inverted residuals' depthwise conv
# Values in one band of an inverted residual's expanded map (8 MB): a loop
# step holds a few such buffers, and smaller bands only add steps.
_BAND_VALUES = 1 << 21
_EXPAND = 2.0  # inverted-residual expansion of the block input
_ATTN_RATIO = 0.5  # transformer width relative to the stage width
_MLP_RATIO = 2.0


def _stage_channels(base: int, width: float) -> int:
  # timm truncates with int() before rounding to a multiple of 8.
  return make_divisible(int(base * width))


def feature_channels(width: float = 2.0) -> tuple[int, ...]:
  """Channels of feature0..feature4 for a width multiplier (2.0: 128..1024)."""
  return tuple(_stage_channels(base, width) for base, *_ in _STAGES)


def _linear_taps(in_size: int, out_size: int, align_corners: bool):
  """Source indices and weights of PyTorch's 1-D linear interpolation."""
  dst = np.arange(out_size, dtype=np.float64)
  if align_corners:
    scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    src = dst * scale
  else:
    # Half-pixel centres; PyTorch clamps negative positions to the edge.
    src = np.maximum((dst + 0.5) * (in_size / out_size) - 0.5, 0.0)
  lo = np.minimum(np.floor(src).astype(np.int32), in_size - 1)
  hi = np.minimum(lo + 1, in_size - 1)
  return lo, hi, (src - lo).astype(np.float32)


def interpolate_bilinear(x: jax.Array, size: tuple[int, int], align_corners: bool) -> jax.Array:
  """PyTorch `F.interpolate(mode='bilinear')` on an NHWC map.

  Written out (gather two rows, blend) rather than `jax.image.resize`, which
  has no align_corners=True mode and antialiases when shrinking.

  Args:
    x: (B, H, W, C).
    size: output (H', W').
    align_corners: PyTorch's flag of the same name.

  Returns:
    (B, H', W', C) in x's dtype.
  """
  for axis, out_size in zip((1, 2), size):
    in_size = x.shape[axis]
    if in_size == out_size:  # both modes reduce to the identity here
      continue
    lo, hi, frac = _linear_taps(in_size, out_size, align_corners)
    shape = [1] * x.ndim
    shape[axis] = out_size
    frac = jnp.asarray(frac.reshape(shape), x.dtype)
    x = jnp.take(x, lo, axis=axis) * (1 - frac) + jnp.take(x, hi, axis=axis) * frac
  return x


def _group_norm(name: str, dtype: Dtype) -> nn.GroupNorm:
  # timm's GroupNorm1: one group, statistics over all of (C, H, W).
  return nn.GroupNorm(
    num_groups=1,
    epsilon=1e-5,
    use_fast_variance=False,
    dtype=dtype,
    param_dtype=jnp.float32,
    name=name,
  )


class ConvNormAct(nn.Module):
  """timm ConvNormAct: bias-free conv, BatchNorm, optional SiLU.

  `padding` overrides PyTorch's symmetric padding (`layers.torch_padding`).
  """

  features: int
  kernel_size: int = 1
  stride: int = 1
  depthwise: bool = False
  act: bool = True
  dtype: Dtype = jnp.float32
  kernels: str = "xla"
  padding: Any = None

  @nn.compact
  def __call__(self, x, train: bool = False):
    groups = x.shape[-1] if self.depthwise else 1
    x = conv2d(
      self.features,
      self.kernel_size,
      self.stride,
      groups=groups,
      use_bias=False,
      padding=self.padding,
      name="conv",
      dtype=self.dtype,
      kernels=self.kernels,
    )(x)
    x = batch_norm(train, name="bn", dtype=self.dtype)(x)
    return nn.silu(x) if self.act else x


class InvertedResidual(nn.Module):
  """timm's bottleneck block with bottle_in and linear_out: 1x1, dw 3x3, 1x1.

  The residual exists only where shapes allow it; timm's `downsample=''` means
  no projection shortcut otherwise.

  In eval mode, when the expanded map would hold more than `band_threshold`
  values, the block runs on bands of output rows, each from the input rows
  its 3x3 window reaches: the expanded map, 0.6 GB per 1231x1907 image in
  the teacher's stage 1 (and its padded copy as much again), never exists at
  once. Every op is per row but the 3x3 conv, whose rows each band has, so
  this is exact. Training uses batch statistics over the whole map, and
  never bands.
  """

  features: int
  stride: int = 1
  expand_ratio: float = _EXPAND
  dtype: Dtype = jnp.float32
  kernels: str = "xla"
  band_threshold: int = NO_BANDS

  @nn.compact
  def __call__(self, x, train: bool = False):
    b, h, w, c = x.shape
    mid = make_divisible(c * self.expand_ratio)
    expand = ConvNormAct(mid, name="conv1_1x1", dtype=self.dtype, kernels=self.kernels)
    depthwise = ConvNormAct(
      mid,
      _KERNEL,
      self.stride,
      depthwise=True,
      name="conv2_kxk",
      dtype=self.dtype,
      kernels=self.kernels,
    )
    project = ConvNormAct(
      self.features, act=False, name="conv3_1x1", dtype=self.dtype, kernels=self.kernels
    )
    if train or self.is_initializing() or b * h * w * mid <= self.band_threshold:
      y = project(depthwise(expand(x, train), train), train)
    else:
      y = self._bands(x, expand, depthwise, project, b * w * mid)
    if self.stride == 1 and c == self.features:
      y = y + x
    return y

  def _bands(self, x, expand, depthwise, project, values_per_row):
    """The block in eval mode, one band of output rows per loop step.

    A loop, so that XLA holds one band at a time (written out, its scheduler
    ran the bands side by side), writing each band into the output in place.
    Bands are equal; the last one ends at the last row and overlaps its
    predecessor, whose rows it recomputes to the same values. A band's input
    rows are read from the unpadded map, shifted by at most the conv's
    padding at the top and bottom edges, with zeros where the padding is.
    """
    h = x.shape[1]
    pad, stride = _KERNEL // 2, self.stride
    out_h = (h + 2 * pad - _KERNEL) // stride + 1
    rows = max(1, min(out_h, _BAND_VALUES // (values_per_row * stride)))
    band_in = (rows - 1) * stride + _KERNEL  # input rows per band, halo included
    if band_in > h:
      return project(depthwise(expand(x)))
    # The submodules' variables, applied by unbound copies inside the loop,
    # where Flax modules cannot be called.
    expand_vars, depthwise_vars, project_vars = (m.variables for m in (expand, depthwise, project))
    expand, project = expand.clone(parent=None), project.clone(parent=None)
    depthwise = depthwise.clone(parent=None, padding=((0, 0), (pad, pad)))

    def band(index, out):
      first = jnp.minimum(index * rows, out_h - rows)  # the band's first output row
      want = first * stride - pad  # its first input row; -1 at the top edge
      read = jnp.clip(want, 0, h - band_in)
      y = expand.apply(expand_vars, jax.lax.dynamic_slice_in_dim(x, read, band_in, axis=1))
      # want - read is -1 at the top edge, +1 at the bottom one, else 0: shift
      # by it, bringing in a zero row where the conv pads.
      y = jnp.pad(y, ((0, 0), (pad, pad), (0, 0), (0, 0)))
      y = jax.lax.dynamic_slice_in_dim(y, want - read + pad, band_in, axis=1)
      y = project.apply(project_vars, depthwise.apply(depthwise_vars, y))
      return y if out is None else jax.lax.dynamic_update_slice_in_dim(out, y, first, axis=1)

    # The first band, padded to the full height, starts the output: a zeros
    # array would depend on nothing, and XLA would make it (and a copy) long
    # before the loop runs.
    first = band(0, None)
    out = jnp.pad(first, ((0, 0), (0, out_h - rows), (0, 0), (0, 0)))
    return jax.lax.fori_loop(1, -(-out_h // rows), band, out)


class LinearSelfAttention(nn.Module):
  """Separable self-attention (MobileViTv2), linear in the number of patches.

  One score per position, softmaxed over the patches that share a pixel
  offset inside their patch, weights the keys into one context vector per
  offset; the output is relu(value) * context.
  """

  dtype: Dtype = jnp.float32
  kernels: str = "xla"

  @nn.compact
  def __call__(self, x):
    b, h, w, d = x.shape
    qkv = conv2d(1 + 2 * d, name="qkv_proj", dtype=self.dtype, kernels=self.kernels)(x)
    # Patch view (B, nH, pH, nW, pW, C): axes 1 and 3 index the patch N.
    qkv = qkv.reshape(b, h // _PATCH, _PATCH, w // _PATCH, _PATCH, 1 + 2 * d)
    query, key, value = qkv[..., :1], qkv[..., 1 : 1 + d], qkv[..., 1 + d :]
    # Float32 softmax/sum: at full resolution N is ~10^4 patches.
    scores = jax.nn.softmax(query.astype(jnp.float32), axis=(1, 3))
    context = jnp.sum(key.astype(jnp.float32) * scores, axis=(1, 3), keepdims=True)
    out = nn.relu(value) * context.astype(value.dtype)
    return conv2d(d, name="out_proj", dtype=self.dtype, kernels=self.kernels)(
      out.reshape(b, h, w, d)
    )


class ConvMlp(nn.Module):
  """1x1 conv, SiLU, 1x1 conv."""

  hidden: int
  dtype: Dtype = jnp.float32
  kernels: str = "xla"

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(conv2d, dtype=self.dtype, kernels=self.kernels)
    y = nn.silu(conv(self.hidden, name="fc1")(x))
    return conv(x.shape[-1], name="fc2")(y)


class LinearTransformerBlock(nn.Module):
  """Pre-norm block: x + attn(norm1(x)), then x + mlp(norm2(x)).

  timm's dropouts and drop-path all default to 0 for these models, so there
  is nothing stochastic to carry.
  """

  mlp_ratio: float = _MLP_RATIO
  dtype: Dtype = jnp.float32
  kernels: str = "xla"

  @nn.compact
  def __call__(self, x):
    attention = LinearSelfAttention(name="attn", dtype=self.dtype, kernels=self.kernels)
    x = x + attention(_group_norm("norm1", self.dtype)(x))
    hidden = int(x.shape[-1] * self.mlp_ratio)
    mlp = ConvMlp(hidden, name="mlp", dtype=self.dtype, kernels=self.kernels)
    return x + mlp(_group_norm("norm2", self.dtype)(x))


class MobileViTV2Block(nn.Module):
  """Local dw conv, 1x1 down to the transformer width, transformers, 1x1 up.

  A map whose side is not a multiple of the patch size is first resized up
  to the next multiple (bilinear, align_corners=True, as timm) and stays
  that size: the block's output is larger than its input.
  """

  depth: int
  attn_ratio: float = _ATTN_RATIO
  dtype: Dtype = jnp.float32
  kernels: str = "xla"

  @nn.compact
  def __call__(self, x, train: bool = False):
    _, h, w, c = x.shape
    size = (-(-h // _PATCH) * _PATCH, -(-w // _PATCH) * _PATCH)
    x = interpolate_bilinear(x, size, align_corners=True)
    x = ConvNormAct(c, 3, depthwise=True, name="conv_kxk", dtype=self.dtype, kernels=self.kernels)(
      x, train
    )
    dim = make_divisible(c * self.attn_ratio)
    x = conv2d(dim, use_bias=False, name="conv_1x1", dtype=self.dtype, kernels=self.kernels)(x)
    for i in range(self.depth):
      x = LinearTransformerBlock(name=f"transformer_{i}", dtype=self.dtype, kernels=self.kernels)(x)
    x = _group_norm("norm", self.dtype)(x)
    project = ConvNormAct(c, act=False, name="conv_proj", dtype=self.dtype, kernels=self.kernels)
    return project(x, train)


class MobileViTV2(nn.Module):
  """MobileViTv2 feature extractor returning the outputs of its five stages.

  Attributes:
    width: timm's multiplier (mobilevitv2_200 is 2.0; 0.5 for tests).
    dtype: compute dtype; parameters are always float32.
    kernels: the form of the depthwise convs
      (`layers.KERNELS`); the parameters are the same.
  """

  width: float = 2.0
  dtype: Dtype = jnp.float32
  kernels: str = "xla"
  band_threshold: int = NO_BANDS  # see InvertedResidual

  @nn.compact
  def __call__(self, x, train: bool = False) -> dict[str, jax.Array]:
    """Maps ImageNet-normalised NHWC images to {"feature0".."feature4"} (NHWC).

    Strides 2, 4, 8, 16, 32 up to the patch resizes: a 224 input gives
    112, 56, 28, 14 and 8 (not 7).
    """
    x = ConvNormAct(
      int(_STEM * self.width), 3, 2, name="stem", dtype=self.dtype, kernels=self.kernels
    )(x, train)
    features = {}
    for i, (base, stride, blocks, depth) in enumerate(_STAGES):
      channels = _stage_channels(base, self.width)
      for j in range(blocks):
        x = InvertedResidual(
          channels,
          stride if j == 0 else 1,
          name=f"stages_{i}_{j}",
          dtype=self.dtype,
          kernels=self.kernels,
          band_threshold=self.band_threshold,
        )(x, train)
      if depth:
        x = MobileViTV2Block(
          depth, name=f"stages_{i}_{blocks}", dtype=self.dtype, kernels=self.kernels
        )(x, train)
      features[f"feature{i}"] = x
    return features
