"""Export as a main job: `python -m mobileiqa_jax.main --config=configs/export.py`.

Reads `config.export` (checkpoint, out, quantization, input kind) and the
trained input size from `config.data`: a run trained on crops (data.crop) is
exported at the crop size, and its JSON report says `tiles`, so that a
`Scorer` of the file tiles photos as the JAX checkpoint does.
"""

import logging

from etils import epath
import jax
import numpy as np

from mobileiqa_jax import checkpoints, export
from mobileiqa_jax.data import pipeline, preprocess, tiles


def split_images(data_cfg, split: str, height: int, width: int, limit: int = 0) -> np.ndarray:
  """The first `limit` (0: all) images of a dataset split, decoded and resized
  to (height, width) as the evaluation pipeline does: (N, height, width, 3) uint8."""
  source = pipeline.make_source(data_cfg, split)
  count = len(source) if limit <= 0 else min(limit, len(source))
  resize = preprocess.DecodeAndResize(height, width)
  return np.stack([resize.map(source[i])["image"] for i in range(count)])


def export_from_config(config, workdir: str) -> dict:
  """Exports `config.export.checkpoint` (default: the workdir's best) to TFLite."""
  source = config.export.checkpoint or workdir
  out = config.export.out or str(
    epath.Path(workdir) / f"student_{config.export.quantization}.tflite"
  )
  module, variables, metadata = checkpoints.load_model(source)
  epath.Path(out).parent.mkdir(parents=True, exist_ok=True)
  height, width = config.data.height, config.data.width
  crop = pipeline.crop_size(config.data)
  images, checked_on = None, "synthetic sample images"
  if config.export.verify_split:
    images = split_images(
      config.data, config.export.verify_split, height, width, config.export.verify_limit
    )
    checked_on = f"{config.data.name} {config.export.verify_split} split, {len(images)} images"
    if crop:
      images = np.concatenate([tiles.cut(image, *crop) for image in images])
      checked_on += f", {len(images)} tiles"
  extra = {}
  if crop:
    (height, width), extra["tiles"] = crop, list(crop)
  report = export.export_tflite(
    module,
    variables,
    out,
    height,
    width,
    config.export.quantization,
    config.export.input_kind,
    model_name=metadata["model"],
    min_srcc=config.export.min_srcc,
    images=images,
    quality_map=config.export.quality_map,
    metadata=dict(
      checkpoint=str(source),
      overrides=metadata.get("overrides", {}),
      verified_on=checked_on,
      **extra,
    ),
  )
  if jax.process_index() == 0:
    check = report["verification"]
    logging.getLogger("mobileiqa_jax").info(
      "exported %s (%.1f MiB): max|diff| vs JAX %.2e, SRCC %s",
      out,
      report["file"]["bytes"] / 2**20,
      check["max_abs_diff"],
      check["srcc"],
    )
  return report
