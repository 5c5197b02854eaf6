"""Weights from the PyTorch world: MobileIQA checkpoints and timm backbones
(`weights`), read without unpickling code (`torch_pickle`), named by the
original's state-dict keys (`naming`); `python -m mobileiqa_jax.convert`.
"""

from mobileiqa_jax.convert.weights import (
  ConversionError,
  check_variables,
  from_timm,
  from_torch,
  load_torch_model,
  merge_variables,
  read_safetensors,
  recognise,
)

__all__ = [
  "ConversionError",
  "check_variables",
  "from_timm",
  "from_torch",
  "load_torch_model",
  "merge_variables",
  "read_safetensors",
  "recognise",
]
