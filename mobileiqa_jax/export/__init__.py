"""TFLite export of a MobileIQA network, verified against JAX before it is written.

  from mobileiqa_jax import export
  report = export.export_tflite(module, variables, "student.tflite", 1231, 1907,
                                quantization="float16", input_kind="uint8")

`exporter` builds and checks the file, `tflite` converts, `verify` compares,
`job` exports a training run's best checkpoint; `python -m mobileiqa_jax.export`.
"""

from mobileiqa_jax.export.exporter import (
  DEFAULT_FLOAT32_TOLERANCE,
  DEFAULT_MIN_SRCC,
  DEFAULT_SAMPLES,
  VerificationError,
  export_tflite,
)
from mobileiqa_jax.export.tflite import INPUT_KINDS, QUANTIZATIONS

__all__ = [
  "DEFAULT_FLOAT32_TOLERANCE",
  "DEFAULT_MIN_SRCC",
  "DEFAULT_SAMPLES",
  "INPUT_KINDS",
  "QUANTIZATIONS",
  "VerificationError",
  "export_tflite",
]
