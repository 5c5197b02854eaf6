"""MobileIQA: a backbone's five levels -> adapters -> three MALs -> fusion MAL -> score.

The teacher (MobileViTv2 backbone) and the student (MobileNetV3 backbone) are
the same module with different fields; `mobileiqa_jax.models.create` holds the
presets. Module names mirror the original's state-dict names.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from mobileiqa_jax.models import heads, layers, mobilenet_v3, mobilevit_v2

Dtype = Any

NUM_LEVELS = 5
NUM_OPINIONS = 3  # MALs reading the same levels; their outputs are the DOF.

BACKBONES = {
  # kind -> (module class, state-dict name of the backbone, adapter name prefix)
  "mobilenet_v3": (mobilenet_v3.MobileNetV3, "local_cnn", "LDA"),
  "mobilevit_v2": (mobilevit_v2.MobileViTV2, "global_vit", "LGF"),
}


class MobileIQA(nn.Module):
  """NR-IQA network. `__call__(images, train) -> (scores (B,), taps)`.

  images: (B, H, W, 3) float32, ImageNet-normalised. taps, all NHWC:
    feature0..feature4: the backbone's levels at strides 2..32;
    levels: (5, B, S, S, D) the adapted levels;
    dof: (3, B, S, S, D) the diverse opinion features;
    fused: (B, S, S, D) the fusion MAL's image-quality feature;
    quality_map: (B, M, M) the score head's per-cell scores
      (`heads.score_head`; `mobileiqa_jax.quality_map` places them on the image).
  """

  backbone: str = "mobilenet_v3"
  backbone_width: float = 1.0
  grid: int = 22
  dim: int = 256
  adapter_hidden: int = 512
  head_pool: int = 2
  head_channels: int = 128
  head_hidden: int = 64
  dropout: float = 0.1
  sigmoid: bool = True
  dtype: Dtype = jnp.float32
  # layers.KERNELS: the graph's form for XLA or for the TFLite converter;
  # same parameters and outputs. The export chooses a TFLite form.
  kernels: str = "xla"
  # Level adapters whose hidden map would hold more values than this compute
  # it in row bands (heads.LevelAdapter); so do MobileViTv2's inverted
  # residuals at inference (mobilevit_v2.InvertedResidual). Only memory and
  # speed depend on it.
  band_threshold: int = 1 << 24
  # The adapters' threshold in training, where a banded hidden map is also
  # recomputed band by band in the backward pass instead of being kept with
  # its GELU's input. Lower than at inference, because there an unbanded map
  # is kept twice: banding the student's second and third levels lowers the
  # distillation step's peak memory at the same speed (`python -m
  # mobileiqa_jax.benchmark --only train:distill_step` measures it).
  train_band_threshold: int = 1 << 21

  @nn.compact
  def __call__(self, images, train: bool = False):
    backbone_cls, backbone_name, adapter_prefix = BACKBONES[self.backbone]
    kernels = layers.check_kernels(self.kernels)
    # MobileViTv2 bands its large inverted residuals at inference, as the
    # adapters band (the teacher's stage 1 at full size); MobileNetV3's maps
    # are small enough whole.
    banding = {"band_threshold": self.band_threshold} if self.backbone == "mobilevit_v2" else {}
    features = backbone_cls(
      width=self.backbone_width, dtype=self.dtype, kernels=kernels, name=backbone_name, **banding
    )(images.astype(self.dtype), train=train)
    adapter_threshold = self.train_band_threshold if train else self.band_threshold
    levels = jnp.stack(
      [
        heads.LevelAdapter(
          self.grid,
          self.adapter_hidden,
          self.dim,
          self.dtype,
          adapter_threshold,
          kernels,
          name=f"{adapter_prefix}{i + 1}",
        )(features[f"feature{i}"])
        for i in range(NUM_LEVELS)
      ]
    )
    dof = jnp.stack(
      [
        heads.MAL(NUM_LEVELS, self.dropout, self.dtype, kernels, name=f"MALs_{i}")(levels, train)
        for i in range(NUM_OPINIONS)
      ]
    )
    fused = heads.MAL(NUM_OPINIONS, self.dropout, self.dtype, kernels, name="fusion_mal")(
      dof, train
    )
    scores, quality_map = heads.score_head(
      fused,
      pool=self.head_pool,
      channels=self.head_channels,
      hidden=self.head_hidden,
      dropout=self.dropout,
      sigmoid=self.sigmoid,
      train=train,
      dtype=self.dtype,
      kernels=kernels,
    )
    taps = dict(features, levels=levels, dof=dof, fused=fused, quality_map=quality_map)
    return scores, taps
