"""The reference every learned model must beat: a linear fit on hand-made
no-reference statistics.

`features` measures what a classical blind IQA method looks at: sharpness
(gradients and Laplacian at three scales, the share of high frequencies),
noise (Immerkaer's estimate on luma and on both chroma axes, the spread of
the flattest blocks, the spread of each pixel's channels), JPEG blockiness
(jumps across the 8-px grid against jumps inside it), contrast,
colourfulness and tonal levels. `RidgeFit` fits scores linearly on those
features and their squares. If it ranks a dataset nearly as well as a
network, the dataset asks little of the network.
"""

import dataclasses

import numpy as np
from scipy import ndimage

# Immerkaer (1996): the difference of two Laplacians, blind to linear ramps,
# so its response on a natural image is mostly noise.
_NOISE_MASK = np.asarray([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
_BLOCK = 8

FEATURE_NAMES = (
  *(f"gradient_{stat}_s{sigma}" for sigma in (0, 1, 2) for stat in ("mean", "p90", "p99")),
  "laplacian_mean",
  "laplacian_median",
  "high_frequency_share",
  "noise_luma",
  "noise_chroma_1",
  "noise_chroma_2",
  "flat_block_std",
  "blockiness_rows",
  "blockiness_columns",
  "contrast",
  "colourfulness",
  "channel_spread",
  "green_levels",
)


def _immerkaer_sigma(channel: np.ndarray) -> float:
  response = ndimage.convolve(channel, _NOISE_MASK, mode="reflect")[1:-1, 1:-1]
  return float(np.sqrt(np.pi / 2) * np.abs(response).mean() / 6.0)


def _blockiness(channel: np.ndarray, axis: int) -> float:
  """Mean |step| across 8-px block borders over the mean |step| inside blocks."""
  steps = np.abs(np.diff(channel, axis=axis))
  offsets = np.arange(steps.shape[axis]) % _BLOCK
  border = np.take(steps, np.flatnonzero(offsets == _BLOCK - 1), axis=axis)
  inside = np.take(steps, np.flatnonzero(offsets != _BLOCK - 1), axis=axis)
  if border.size == 0:
    return 1.0
  return float((border.mean() + 1e-4) / (inside.mean() + 1e-4))


def features(image: np.ndarray) -> np.ndarray:
  """The statistics of one (H, W, 3) uint8 image, in FEATURE_NAMES order.

  Raises:
    ValueError: for an image that is not (H, W, 3) uint8 of at least 16 px a side.
  """
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
    raise ValueError(f"want an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
  if min(image.shape[:2]) < 2 * _BLOCK:
    raise ValueError(f"want at least {2 * _BLOCK} px a side, got {image.shape[:2]}")
  rgb = image.astype(np.float32) / 255.0
  luma = rgb @ np.asarray([0.299, 0.587, 0.114], np.float32)
  chroma = (rgb[..., 2] - luma, rgb[..., 0] - luma)
  # Edges measured on the channels' plain mean, which (unlike luma) also
  # sees the steps of chroma noise and colour fringes.
  grey = rgb.mean(axis=2)

  values = []
  for sigma in (0, 1, 2):
    smooth = ndimage.gaussian_filter(grey, sigma) if sigma else grey
    gy, gx = np.gradient(smooth)
    magnitude = np.hypot(gx, gy)
    values += [magnitude.mean(), *np.percentile(magnitude, [90, 99])]
  laplacian = np.abs(ndimage.laplace(grey))
  values += [laplacian.mean(), np.median(laplacian)]

  power = np.abs(np.fft.rfft2(luma - luma.mean())) ** 2
  fy = np.fft.fftfreq(luma.shape[0])[:, None]
  fx = np.fft.rfftfreq(luma.shape[1])[None, :]
  radius = np.hypot(fy, fx)
  values.append(power[radius > 0.25].sum() / (power[radius > 0.03].sum() + 1e-8))

  values += [_immerkaer_sigma(luma), *(_immerkaer_sigma(c) for c in chroma)]
  h, w = (s // _BLOCK * _BLOCK for s in luma.shape)
  blocks = luma[:h, :w].reshape(h // _BLOCK, _BLOCK, w // _BLOCK, _BLOCK).std(axis=(1, 3))
  values.append(np.percentile(blocks, 10))
  values += [_blockiness(luma, 0), _blockiness(luma, 1)]
  values += [
    luma.std(),
    np.hypot(*(c.std() for c in chroma)),
    rgb.std(axis=2).mean(),
    len(np.unique(image[..., 1])) / 256.0,
  ]
  return np.log(np.asarray(values, np.float64) + 1e-4)


def _design(feature_rows: np.ndarray) -> np.ndarray:
  return np.concatenate([feature_rows, feature_rows**2], axis=1)


@dataclasses.dataclass
class RidgeFit:
  """Ridge regression of scores on standardised features and their squares.

  Attributes:
    penalty: the L2 penalty on the standardised weights.
  """

  penalty: float = 1.0
  mean: np.ndarray | None = None
  scale: np.ndarray | None = None
  weights: np.ndarray | None = None
  bias: float = 0.0

  def fit(self, feature_rows: np.ndarray, scores: np.ndarray) -> "RidgeFit":
    x = _design(np.asarray(feature_rows, np.float64))
    scores = np.asarray(scores, np.float64)
    if len(x) != len(scores) or len(x) < 2:
      raise ValueError(f"need matching rows and scores (>= 2), got {len(x)} and {len(scores)}")
    self.mean, self.scale = x.mean(axis=0), x.std(axis=0) + 1e-8
    x = (x - self.mean) / self.scale
    self.bias = float(scores.mean())
    gram = x.T @ x + self.penalty * np.eye(x.shape[1])
    self.weights = np.linalg.solve(gram, x.T @ (scores - self.bias))
    return self

  def predict(self, feature_rows: np.ndarray) -> np.ndarray:
    if self.weights is None:
      raise ValueError("RidgeFit.predict before fit")
    x = (_design(np.asarray(feature_rows, np.float64)) - self.mean) / self.scale
    return x @ self.weights + self.bias
