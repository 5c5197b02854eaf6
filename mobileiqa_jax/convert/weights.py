"""Weights from the PyTorch world: MobileIQA checkpoints and timm backbones.

`from_torch` loads a whole MobileIQA model saved by the original code;
`from_timm` loads a backbone from the `model.safetensors` file that timm
publishes, for ImageNet-initialised training. Both check the result against
the model's own variable tree and refuse, listing every problem, rather than
load part of a model.
"""

import logging
import os

from flax import traverse_util
import numpy as np

from mobileiqa_jax import errors, models
from mobileiqa_jax.convert import naming, torch_pickle
from mobileiqa_jax.models import mobileiqa

# What timm checkpoints carry beyond the features_only backbone (classifier head,
# final 1x1 conv); skipped with a log line.
TIMM_EXTRAS = ("conv_head.", "classifier.", "head.", "final_conv.")


class ConversionError(errors.InvalidInput):
  """The source does not hold the tensors the model needs, with their shapes."""


def _check(flat, expected, source):
  """Raises ConversionError listing missing, unexpected and mis-shaped entries."""
  missing = sorted(k for k in expected if k not in flat)
  unexpected = sorted(k for k in flat if k not in expected)
  misshaped = sorted(
    (k, flat[k].shape, expected[k].shape)
    for k in flat
    if k in expected and flat[k].shape != expected[k].shape
  )
  if not (missing or unexpected or misshaped):
    return
  lines = [f"{source} does not fit the model:"]
  show = lambda k: "/".join(k)
  lines += [f"  missing: {show(k)} {expected[k].shape}" for k in missing]
  lines += [f"  unexpected: {show(k)} {flat[k].shape}" for k in unexpected]
  lines += [f"  wrong shape: {show(k)} is {got}, model needs {need}" for k, got, need in misshaped]
  raise ConversionError("\n".join(lines))


def _load_state_dict(source) -> tuple[dict, str]:
  if isinstance(source, (str, os.PathLike)):
    path = os.fspath(source)
    if not os.path.isfile(path):
      raise FileNotFoundError(f"{path}: no such checkpoint file")
    if not path.endswith(torch_pickle.SUFFIXES):
      raise ValueError(f"{path}: expected a torch.save file ending in {torch_pickle.SUFFIXES}")
    state = torch_pickle.load(path)
    # Training scripts often wrap the state dict; unwrap the usual containers.
    for key in ("state_dict", "model"):
      if key in state and isinstance(state[key], dict):
        state = state[key]
    return state, path
  return dict(source), "state dict"


def _to_flat(state_dict, source, strip_prefix=""):
  try:
    variables = naming.to_variables(state_dict, strip_prefix)
  except ValueError as e:
    raise ConversionError(f"{source}: {e}") from None
  return {k: np.asarray(v) for k, v in traverse_util.flatten_dict(variables).items()}


def _model(name):
  return models.create(name) if isinstance(name, str) else name


# The original's state-dict name of each network's backbone -> our preset.
BACKBONE_PRESETS = {
  backbone_name: preset
  for preset in ("student", "teacher")
  for kind, (_, backbone_name, _) in mobileiqa.BACKBONES.items()
  if models.PRESETS[preset]["backbone"] == kind
}


def recognise(state_dict, source: str = "state dict") -> str:
  """'student' or 'teacher', from the backbone the original's keys name.

  Raises:
    ConversionError: the keys name neither backbone (or both).
  """
  prefixes = {key.removeprefix("module.").split(".", 1)[0] for key in state_dict}
  found = sorted(BACKBONE_PRESETS[p] for p in prefixes & set(BACKBONE_PRESETS))
  if len(found) != 1:
    sample = ", ".join(sorted(state_dict)[:3]) or "no keys"
    raise ConversionError(
      f"{source}: not a MobileIQA checkpoint of the original code: its keys ({sample}, ...) "
      f"name {'both' if found else 'neither'} of the backbones "
      + " and ".join(f"'{p}.' ({preset})" for p, preset in BACKBONE_PRESETS.items())
    )
  return found[0]


def load_torch_model(path):
  """(module, variables, preset name) of an original MobileIQA .pkl/.pth/.pt,
  the network recognised from its keys and converted in memory.

  Raises:
    FileNotFoundError, ValueError (ConversionError, torch_pickle's errors).
  """
  state_dict, source = _load_state_dict(path)
  name = recognise(state_dict, source)
  return models.create(name), from_torch(state_dict, name, source), name


def from_torch(source, name, source_name: str | None = None):
  """Flax variables of model `name` from an original MobileIQA state dict.

  Args:
    source: {name: array} (NumPy or anything np.asarray takes), or the path of
      a `torch.save(model.state_dict(), path)` file (.pkl/.pth/.pt), read
      without PyTorch.
    name: a preset name for `models.create`, or a MobileIQA module.

  Returns:
    {'params': ..., 'batch_stats': ...} as NumPy arrays.

  Raises:
    ConversionError: listing every missing, unexpected or mis-shaped tensor.
  """
  model = _model(name)
  state_dict, loaded_from = _load_state_dict(source)
  source_name = source_name or loaded_from
  if state_dict and all(k.startswith("module.") for k in state_dict):
    state_dict = {k[len("module.") :]: v for k, v in state_dict.items()}  # DataParallel
  flat = _to_flat(state_dict, source_name)
  expected = traverse_util.flatten_dict(models.abstract_variables(model))
  _check(flat, expected, source_name)
  return traverse_util.unflatten_dict(flat)


def read_safetensors(path) -> dict[str, np.ndarray]:
  """All tensors of a .safetensors file as NumPy arrays."""
  from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top

  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such safetensors file")
  return load_file(path)


def from_timm(source, name):
  """Backbone variables of model `name` from a timm checkpoint.

  Args:
    source: a timm `model.safetensors` path (mobilenetv3_large_100 for the
      student, mobilevitv2_200 for the teacher) or a {name: array} dict of it.
    name: preset name or MobileIQA module.

  Returns:
    {'params': {backbone: ...}, 'batch_stats': {backbone: ...}}: only the
    backbone's subtree, to merge into freshly initialised variables with
    `merge_variables`.
  """
  model = _model(name)
  if isinstance(source, (str, os.PathLike)):
    state_dict, source_name = read_safetensors(source), os.fspath(source)
  else:
    state_dict, source_name = dict(source), "state dict"
  extras = sorted(k for k in state_dict if k.startswith(TIMM_EXTRAS))
  if extras:
    logging.getLogger("mobileiqa_jax").info(
      "%s: skipping %d classifier/head tensors the backbone does not use: %s",
      source_name,
      len(extras),
      ", ".join(extras),
    )
  backbone = mobileiqa.BACKBONES[model.backbone][1]
  state_dict = {f"{backbone}.{k}": v for k, v in state_dict.items() if k not in extras}
  flat = _to_flat(state_dict, source_name)
  expected = {
    k: v
    for k, v in traverse_util.flatten_dict(models.abstract_variables(model)).items()
    if k[1] == backbone
  }
  _check(flat, expected, source_name)
  return traverse_util.unflatten_dict(flat)


def check_variables(variables, expected, source: str):
  """Raises ConversionError unless `variables` has exactly `expected`'s leaves
  and shapes (`expected` may be abstract, e.g. from jax.eval_shape)."""
  _check(
    {k: np.asarray(v) for k, v in traverse_util.flatten_dict(variables).items()},
    traverse_util.flatten_dict(expected),
    source,
  )


def merge_variables(base, update):
  """`base` with every leaf that `update` has replaced (shapes must agree)."""
  flat = traverse_util.flatten_dict(base)
  for key, value in traverse_util.flatten_dict(update).items():
    if key not in flat or np.shape(flat[key]) != np.shape(value):
      raise ConversionError(f"cannot merge {'/'.join(key)} {np.shape(value)} into the model")
    flat[key] = value
  return traverse_util.unflatten_dict(flat)
