"""The MobileIQA heads: level adapters, multi-view attention (MAL), score head.

Everything here runs in NHWC, but where the original reshapes a tensor the
reshape is done in the original's (PyTorch) index order, which is what decides
the numbers. Shapes in comments use B batch, S grid side, N = S*S, D channels.
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mobileiqa_jax.models import layers

Dtype = Any


def adaptive_pool_matrix(in_size: int, out_size: int) -> np.ndarray:
  """(out_size, in_size) averaging matrix of PyTorch's adaptive average pooling.

  Output cell i averages input indices [floor(i*L/S), ceil((i+1)*L/S)); when
  L < S the windows overlap and inputs repeat.
  """
  matrix = np.zeros((out_size, in_size), np.float32)
  for i in range(out_size):
    start = (i * in_size) // out_size
    end = -((-(i + 1) * in_size) // out_size)  # ceil without floats
    matrix[i, start:end] = 1.0 / (end - start)
  return matrix


def adaptive_avg_pool(x: jax.Array, out_size: int) -> jax.Array:
  """`F.adaptive_avg_pool2d(x, out_size)` for NHWC x, as two small matmuls."""
  rows = jnp.asarray(adaptive_pool_matrix(x.shape[1], out_size), x.dtype)
  cols = jnp.asarray(adaptive_pool_matrix(x.shape[2], out_size), x.dtype)
  return jnp.einsum("ih,bhwc,jw->bijc", rows, x, cols)


def pool_bands(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
  """Adaptive pooling along one axis as `out_size` equal-length bands.

  Band i covers input indices [start[i], start[i] + band) with band the
  longest pooling window; weights[i] is the pooling row of `adaptive_pool_matrix`
  restricted to that band (1/len inside the window, 0 on the rows a shorter
  window borrows to fill the band). Starts are clamped so that every band
  lies inside the input, which a `dynamic_slice` needs.

  Returns:
    starts (out_size,) int32 and weights (out_size, band) float32.
  """
  matrix = adaptive_pool_matrix(in_size, out_size)
  first = np.argmax(matrix > 0, axis=1)
  band = int((matrix > 0).sum(axis=1).max())
  starts = np.minimum(first, in_size - band).astype(np.int32)
  weights = np.stack([matrix[i, s : s + band] for i, s in enumerate(starts)])
  return starts, weights


# How `pooled_pointwise_gelu` walks the map: all at once, or one band of
# input rows per grid row, in a loop ('map') or written out ('unrolled').
BAND_MODES = ("none", "map", "unrolled")


def pooled_pointwise_gelu(
  x: jax.Array,
  kernel: jax.Array,
  bias: jax.Array,
  out_size: int,
  bands: str = "none",
  kernels: str = "xla",
) -> jax.Array:
  """adaptive_avg_pool(gelu(x @ kernel + bias), out_size) for NHWC x.

  With bands, the pointwise conv and the GELU run on one band of input rows
  per output row of the grid, pooled as soon as they are made: the
  (B, H, W, hidden) activation, 1.2 GB per UHD image at the first level,
  never exists at once. Pooling is linear and the GELU pointwise, so this is
  the same sum in a different order; rows that two windows share (H not a
  multiple of the grid, or H smaller than it) are computed once per window.

  'map' runs the bands in a `lax.map` (one compiled body; XLA keeps one
  band live). 'unrolled' writes each band out with static slices, each
  exactly its pooling window: no loop op, which the TFLite converter would
  turn into a WHILE that XNNPACK does not take, and LiteRT's arena planner
  still reuses one band's buffers for the next. Differentiated, either form
  recomputes each band's hidden activation in the backward pass, so neither
  it nor its gradient is ever whole (the student's first level at batch 2,
  512x512: 1.1 GB of the distillation step's peak, gone).

  Args:
    x: (B, H, W, C).
    kernel: (C, hidden).
    bias: (hidden,).
    out_size: the grid side S.
    bands: one of `BAND_MODES`.
    kernels: the GELU's form, `layers.KERNELS`.

  Returns:
    (B, S, S, hidden).
  """
  cols = jnp.asarray(adaptive_pool_matrix(x.shape[2], out_size), x.dtype)
  gelu = lambda y: layers.gelu(y, kernels)
  if bands == "none":
    rows = jnp.asarray(adaptive_pool_matrix(x.shape[1], out_size), x.dtype)
    y = gelu(jnp.einsum("bhwc,cd->bhwd", x, kernel) + bias)
    return jnp.einsum("ih,bhwd,jw->bijd", rows, y, cols)

  def pool_band(rows, row_weights):  # rows (B, band, W, C), row_weights (band,)
    y = gelu(jnp.einsum("bhwc,cd->bhwd", rows, kernel) + bias)
    # Rows first: the weighted sum over the band shrinks y `band`-fold before
    # the column matrix touches it.
    y = jnp.einsum("h,bhwd->bwd", row_weights, y)
    return jnp.einsum("jw,bwd->bjd", cols, y)

  # Checkpointed: a backward pass recomputes each band's hidden activation
  # from its input rows instead of keeping them all.
  pool_band = jax.checkpoint(pool_band)
  if bands == "unrolled":
    matrix = adaptive_pool_matrix(x.shape[1], out_size)
    out = []
    for row in matrix:
      (window,) = np.nonzero(row)
      lo, hi = int(window[0]), int(window[-1]) + 1
      out.append(
        pool_band(jax.lax.slice_in_dim(x, lo, hi, axis=1), jnp.asarray(row[lo:hi], x.dtype))
      )
    return jnp.stack(out, axis=1)
  if bands != "map":
    raise ValueError(f"bands must be one of {BAND_MODES}, got {bands!r}")
  starts, weights = pool_bands(x.shape[1], out_size)
  band = weights.shape[1]
  out = jax.lax.map(
    lambda args: pool_band(jax.lax.dynamic_slice_in_dim(x, args[0], band, axis=1), args[1]),
    (jnp.asarray(starts), jnp.asarray(weights, x.dtype)),
  )
  return jnp.swapaxes(out, 0, 1)  # (S, B, S, hidden) -> (B, S, S, hidden)


class _PointwiseParams(nn.Module):
  """The parameters of a 1x1 `nn.Conv` (same names, shapes and initialisers).

  For code that applies them inside a `lax.map`, where a Flax submodule
  cannot be called.
  """

  features: int

  @nn.compact
  def __call__(self, in_features: int):
    return layers.pointwise_params(self, in_features, self.features)


class LevelAdapter(nn.Module):
  """1x1 conv -> GELU -> adaptive pool to the grid -> 1x1 conv (`LDA*`, `LGF*`).

  Attributes:
    kernels: `layers.KERNELS`: the GELU's form, and how
      large maps are banded: a `lax.map` for XLA, unrolled bands for TFLite.
    band_threshold: compute the first conv, GELU and pool in row bands when
      the hidden activation would hold more than this many values (see
      `pooled_pointwise_gelu`); below it (64 MB) bands save little. The
      value is a first guess, not tuned per level.
  """

  grid: int = 22
  hidden: int = 512
  dim: int = 256
  dtype: Dtype = jnp.float32
  band_threshold: int = 1 << 24
  kernels: str = "xla"

  @nn.compact
  def __call__(self, x):
    b, h, w, c = x.shape
    kernel, bias = _PointwiseParams(self.hidden, name="cnn1")(c)
    x = x.astype(self.dtype)
    bands = "none"
    if b * h * w * self.hidden > self.band_threshold:
      bands = "map" if layers.check_kernels(self.kernels) == "xla" else "unrolled"
    x = pooled_pointwise_gelu(
      x, kernel.astype(self.dtype), bias.astype(self.dtype), self.grid, bands, self.kernels
    )
    return layers.conv2d(self.dim, name="cnn2", dtype=self.dtype, kernels=self.kernels)(x)


class SelfAttention(nn.Module):
  """Spatial self-attention over one (B, S, S, D) map with a learned residual gate."""

  dtype: Dtype = jnp.float32
  kernels: str = "xla"

  @nn.compact
  def __call__(self, x):
    b, h, w, d = x.shape
    conv = functools.partial(layers.conv2d, dtype=self.dtype, kernels=self.kernels)
    q = conv(d // 8, name="qConv")(x).reshape(b, h * w, -1)
    k = conv(d // 8, name="kConv")(x).reshape(b, h * w, -1)
    v = conv(d, name="vConv")(x).reshape(b, h * w, d)
    # Positions flatten row-major over (H, W), as PyTorch's view(B, C, H*W) does.
    energy = jnp.einsum("bic,bjc->bij", q, k)
    attention = jax.nn.softmax(energy.astype(jnp.float32), axis=-1).astype(v.dtype)
    out = jnp.einsum("bij,bjc->bic", attention, v).reshape(b, h, w, d)
    gamma = self.param("gamma", nn.initializers.zeros, (1,), jnp.float32)
    return gamma.astype(out.dtype) * out + x


class AttentionBlock(nn.Module):
  """Scaled dot-product attention over (B, T, dim) tokens, with the original's quirk.

  The original returns `(A @ v).transpose(1, 2).reshape(B, T, dim)`: a transpose
  followed by a reinterpretation of the transposed memory, not a transpose
  back. Trained checkpoints depend on it, so it is reproduced literally.
  """

  dim: int
  dropout: float = 0.1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    b, t, dim = x.shape
    dense = lambda name: nn.Dense(self.dim, dtype=self.dtype, param_dtype=jnp.float32, name=name)
    q, k, v = dense("c_q")(x), dense("c_k")(x), dense("c_v")(x)
    logits = jnp.einsum("btd,bsd->bts", q, k).astype(jnp.float32) / np.sqrt(dim)
    y = jnp.einsum("bts,bsd->btd", jax.nn.softmax(logits, axis=-1).astype(v.dtype), v)
    y = jnp.swapaxes(y, 1, 2).reshape(b, t, dim)
    y = nn.Dropout(self.dropout, deterministic=not train)(y)
    return y + x


class MAL(nn.Module):
  """Multi-view attention learning over n maps: (n, B, S, S, D) -> (B, S, S, D)."""

  num_views: int
  dropout: float = 0.1
  dtype: Dtype = jnp.float32
  kernels: str = "xla"

  @nn.compact
  def __call__(self, maps, train: bool = False):
    n, b, s, _, d = maps.shape
    assert n == self.num_views, (n, self.num_views)
    views = [
      SelfAttention(self.dtype, self.kernels, name=f"attention_module_{j}")(maps[j])
      for j in range(n)
    ]
    # T[b, j*D + c, p] in PyTorch order: (n, B, N, D) -> (B, n, D, N) -> (B, n*D, N).
    tokens = jnp.stack(views).reshape(n, b, s * s, d).transpose(1, 0, 3, 2).reshape(b, n * d, s * s)

    # Feature path: the n*D axis re-read as (D outer, n inner); D tokens of n*N features.
    feature = tokens.reshape(b, d, n * s * s)
    feature = AttentionBlock(n * s * s, self.dropout, self.dtype, name="feature_attention")(
      feature, train
    )
    feature = feature.reshape(b, n * d, s * s)

    # Channel path: N tokens of n*D features.
    channel = AttentionBlock(n * d, self.dropout, self.dtype, name="channel_attention")(
      jnp.swapaxes(tokens, 1, 2), train
    )
    channel = jnp.swapaxes(channel, 1, 2)

    fused = ((feature + channel) / 2).reshape(b, n, d, s * s).mean(axis=1)  # (B, D, N)
    return jnp.swapaxes(fused, 1, 2).reshape(b, s, s, d)


def score_head(
  x,
  *,
  pool: int,
  channels: int = 128,
  hidden: int = 64,
  dropout: float = 0.1,
  sigmoid: bool = False,
  train: bool = False,
  dtype: Dtype = jnp.float32,
  kernels: str = "xla",
):
  """Quality feature (B, S, S, D) -> score (B,) and quality map (B, M, M).

  1x1 conv + ReLU, average pool (kernel = stride = `pool`), 3x3 valid conv +
  ReLU, global average, two linears with dropout between; optional sigmoid.
  A function, not a module, so that it must be called inside the model's
  compact method: its layers then sit at the top level (`cnn_0`, `fc_score_3`),
  where the original's state dict has them.

  The quality map is the same two linears (and sigmoid) applied to each cell
  of the 3x3 conv's M x M output, M = S // pool - 2, instead of to their
  average: cell (i, j) is the score of an image whose every cell looked like
  that one. The score is the linears of the cells' mean, so it is not the
  map's mean (the ReLU between them bends it), but a map of equal cells holds
  the score everywhere. The map never feeds the score, and dropout, a training
  device, is left out of it.
  """
  conv = functools.partial(layers.conv2d, dtype=dtype, kernels=kernels)
  x = nn.relu(conv(channels, name="cnn_0")(x))
  x = nn.avg_pool(x, (pool, pool), strides=(pool, pool))
  cells = nn.relu(conv(channels, 3, padding="VALID", name="cnn_3")(x))
  dense = lambda features, name: nn.Dense(features, dtype=dtype, param_dtype=jnp.float32, name=name)
  hidden_layer, out_layer = dense(hidden, "fc_score_0"), dense(1, "fc_score_3")
  finish = lambda y: jax.nn.sigmoid(y) if sigmoid else y

  x = nn.relu(hidden_layer(cells.mean(axis=(1, 2))))
  x = nn.Dropout(dropout, deterministic=not train)(x)
  score = jnp.squeeze(out_layer(x), axis=-1).astype(jnp.float32)
  # Cells as rows of a matrix: a Dense on a 4-D input lowers to a rank-4
  # batched matmul, which the TFLite converter rejects.
  b, m = cells.shape[0], cells.shape[1]
  rows = cells.reshape(b * m * m, cells.shape[-1])
  cell_scores = out_layer(nn.relu(hidden_layer(rows))).reshape(b, m, m).astype(jnp.float32)
  return finish(score), finish(cell_scores)
