"""TFLite export of a trained student, verified against JAX.

  python -m mobileiqa_jax.main --config=configs/export.py:uhd_iqa \
      --config.export.checkpoint=runs/student --config.export.quantization=dynamic_int8 \
      --workdir=runs/student

The input size is the dataset's training size (UHD-IQA: 1231x1907); the
.tflite and its JSON report go to config.export.out (default: the workdir).
The export is refused, leaving no file, if LiteRT disagrees with JAX: float32
by more than 1e-4, a quantised model with SRCC below config.export.min_srcc.
Minutes on a CPU at full size. Same as `python -m mobileiqa_jax.export`.
"""

from configs import default


def get_config(arg=None):
  config = default.get_config(arg)
  config.mode = "export"
  return config
