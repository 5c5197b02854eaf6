"""Export as a main job: `python -m mobileiqa_jax.main --config=configs/export.py`.

Reads `config.export` (checkpoint, out, quantization, input kind) and the
trained input size from `config.data`.
"""
import logging

import jax
from etils import epath

from mobileiqa_jax import checkpoints
from mobileiqa_jax import export


def export_from_config(config, workdir: str) -> dict:
  """Exports `config.export.checkpoint` (default: the workdir's best) to TFLite."""
  source = config.export.checkpoint or workdir
  out = config.export.out or str(epath.Path(workdir) / f"student_{config.export.quantization}.tflite")
  module, variables, metadata = checkpoints.load_model(source)
  report = export.export_tflite(
      module, variables, out, config.data.height, config.data.width,
      config.export.quantization, config.export.input_kind, model_name=metadata["model"],
      min_srcc=config.export.min_srcc,
      metadata=dict(checkpoint=str(source), overrides=metadata.get("overrides", {})))
  if jax.process_index() == 0:
    check = report["verification"]
    logging.getLogger("mobileiqa_jax").info(
        "exported %s (%.1f MiB): max|diff| vs JAX %.2e, SRCC %s", out,
        report["file"]["bytes"] / 2**20, check["max_abs_diff"], check["srcc"])
  return report
