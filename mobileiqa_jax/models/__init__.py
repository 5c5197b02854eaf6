"""The MobileIQA networks: `create(name, **overrides)` builds a preset."""
from mobileiqa_jax.models.mobileiqa import MobileIQA

# The two networks of the paper, and tiny variants (same code, small widths)
# that tests and laptop runs use.
PRESETS = {
    "student": dict(backbone="mobilenet_v3", backbone_width=1.0, head_pool=2, sigmoid=True),
    "teacher": dict(backbone="mobilevit_v2", backbone_width=2.0, head_pool=4, sigmoid=False),
}
_TINY_HEADS = dict(grid=12, dim=32, adapter_hidden=32, head_channels=16, head_hidden=16)
PRESETS["student_tiny"] = dict(PRESETS["student"], backbone_width=0.35, **_TINY_HEADS)
PRESETS["teacher_tiny"] = dict(PRESETS["teacher"], backbone_width=0.5, **_TINY_HEADS)


def create(name: str, **overrides) -> MobileIQA:
  """A MobileIQA module from a preset name, with any field overridden.

  Raises:
    ValueError: for an unknown preset or field.
  """
  if name not in PRESETS:
    raise ValueError(f"unknown model '{name}'; choose one of {sorted(PRESETS)}")
  unknown = set(overrides) - set(MobileIQA.__dataclass_fields__) - {"parent", "name"}
  if unknown:
    raise ValueError(f"unknown model field(s) {sorted(unknown)} for '{name}'")
  return MobileIQA(**{**PRESETS[name], **overrides})
