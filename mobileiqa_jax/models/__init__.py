"""The MobileIQA networks: `create(name, **overrides)` builds a preset.

`mobileiqa.MobileIQA` is the network; `mobilenet_v3` and `mobilevit_v2` its
backbones, `heads` the MAL heads, `layers` the PyTorch-exact building blocks.
"""

from mobileiqa_jax.models.mobileiqa import MobileIQA
from mobileiqa_jax.models.presets import (
  PRESETS,
  abstract_variables,
  count_params,
  create,
  initial_like,
  initial_variables,
  overridable_fields,
  random_like,
  random_variables,
  with_initial_score,
)

__all__ = [
  "PRESETS",
  "MobileIQA",
  "abstract_variables",
  "count_params",
  "create",
  "initial_like",
  "initial_variables",
  "overridable_fields",
  "random_like",
  "random_variables",
  "with_initial_score",
]
