"""The presets (the paper's two networks and their tiny variants), and model
variables without compiling an initialiser."""

import dataclasses

import jax
import numpy as np

from mobileiqa_jax import errors
from mobileiqa_jax.models import layers
from mobileiqa_jax.models.mobileiqa import BACKBONES, MobileIQA

# The two networks of the paper, and tiny variants (same code, small widths)
# that tests and laptop runs use. The tiny heads pool every level to an 8x8
# grid: on a CPU the MAL heads' attention is FLOP-bound and grows with the
# grid's fourth power, and at 12x12 it cost more than the whole backbone.
PRESETS = {
  "student": dict(backbone="mobilenet_v3", backbone_width=1.0, head_pool=2, sigmoid=True),
  "teacher": dict(backbone="mobilevit_v2", backbone_width=2.0, head_pool=4, sigmoid=False),
}
_TINY_HEADS = dict(grid=8, dim=32, adapter_hidden=32, head_channels=16, head_hidden=16, head_pool=2)
PRESETS["student_tiny"] = dict(PRESETS["student"], backbone_width=0.35, **_TINY_HEADS)
PRESETS["teacher_tiny"] = dict(PRESETS["teacher"], backbone_width=0.5, **_TINY_HEADS)


# Fields that are not the network's shape: Flax's own, and the compute dtype
# (a run's config.model.dtype).
_NOT_OVERRIDABLE = ("parent", "name", "dtype")


def overridable_fields() -> dict[str, type]:
  """The MobileIQA fields a preset's value may be overridden for (`create`'s
  keywords besides dtype), with the type of each."""
  return {
    field.name: type(field.default)
    for field in dataclasses.fields(MobileIQA)
    if field.name not in _NOT_OVERRIDABLE
  }


def create(name: str, **overrides) -> MobileIQA:
  """A MobileIQA module from a preset name, with any field overridden.

  Raises:
    errors.InvalidInput (a ValueError): for an unknown preset, field,
      backbone or kernels.
  """
  if name not in PRESETS:
    raise errors.InvalidInput(f"unknown model '{name}'; choose one of {sorted(PRESETS)}")
  unknown = set(overrides) - set(overridable_fields()) - {"dtype"}
  if unknown:
    raise errors.InvalidInput(f"unknown model field(s) {sorted(unknown)} for '{name}'")
  model = MobileIQA(**{**PRESETS[name], **overrides})
  # Checked here, not when the network is first traced (minutes into a run).
  if model.backbone not in BACKBONES:
    known = sorted(BACKBONES)
    raise errors.InvalidInput(f"backbone must be one of {known}, got {model.backbone!r}")
  layers.check_kernels(model.kernels)
  return model


# lecun_normal's truncated normal is cut at two standard deviations, which
# leaves it this standard deviation; Flax divides it out.
_TRUNCATED_NORMAL_STD = 0.87962566103423978


def initial_variables(model, *, seed: int):
  """`initial_like` on a MobileIQA model's `abstract_variables`."""
  return initial_like(abstract_variables(model), seed=seed)


def initial_like(abstract_variables, *, seed: int):
  """A fresh model's variables for an (abstract) variable tree, drawn on the
  host with NumPy.

  The same distributions as `model.init`, whose initialisers are all Flax's
  defaults: lecun-normal kernels (a normal truncated at two standard
  deviations, scaled to variance 1 / fan-in, fan-in being every axis but the
  last), zero biases and attention gates, unit norm scales, and batch
  statistics of mean 0 and variance 1. Not the same values: `model.init`
  draws each leaf from its own JAX key, and compiling its hundreds of
  threefry streams took 20 s for student_tiny (60,000 HLO ops) before a run
  could start; these take milliseconds and compile nothing. Every process
  draws the same values from the same seed.

  Raises:
    ValueError: for a variable with no rule here (a new kind of layer, whose
      initialiser has to be added).
  """
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    name = path[-1].key
    if name == "kernel":
      fan_in = int(np.prod(leaf.shape[:-1]))
      values = rng.standard_normal(leaf.shape)
      outside = np.abs(values) > 2
      while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2
      return (values * (np.sqrt(1.0 / fan_in) / _TRUNCATED_NORMAL_STD)).astype(leaf.dtype)
    if name in ("bias", "gamma", "mean"):
      return np.zeros(leaf.shape, leaf.dtype)
    if name in ("scale", "var"):
      return np.ones(leaf.shape, leaf.dtype)
    raise ValueError(f"no initialisation rule for variable {jax.tree_util.keystr(path)}")

  return jax.tree_util.tree_map_with_path(draw, abstract_variables)


# The score head's last layer (heads.score_head), at the top of the tree.
_SCORE_OUT = "fc_score_3"


def with_initial_score(model: MobileIQA, variables, score: float):
  """`variables` with the score head's output bias set so that the network
  starts out scoring about `score` (labels are on 0..1).

  A fresh head's output is its bias plus a small random term: with a zero
  bias, a head without a sigmoid (the teacher) starts near 0 and a sigmoid
  head (the student) near 0.5. Labels far from that make the first steps'
  loss and gradients many times their later size (the tiny teacher on the
  synthetic set: 20-40 steps with gradient norms above 2; none when started
  at the labels' mean). Whether a run then learns better is measured, not
  assumed: in the quick start it did not (README). For a sigmoid head the
  bias is the score's logit. Other variables are returned as they are.

  Raises:
    errors.InvalidInput (a ValueError): for a score outside (0, 1) with a
      sigmoid head, whose output never reaches it.
  """
  if model.sigmoid and not 0 < score < 1:
    raise errors.InvalidInput(f"init.score must be in (0, 1) for a sigmoid head, got {score}")
  bias = float(np.log(score / (1 - score))) if model.sigmoid else float(score)
  params = dict(variables["params"])
  out = dict(params[_SCORE_OUT])
  out["bias"] = np.full(np.shape(out["bias"]), bias, np.asarray(out["bias"]).dtype)
  params[_SCORE_OUT] = out
  return {**variables, "params": params}


def random_like(abstract_variables, *, seed: int = 0):
  """Fan-in scaled random values for an (abstract) variable tree, as NumPy.

  For timing and tests, where compiling `model.init` (tens of seconds on a
  CPU) buys nothing: values stay in the range trained weights give, and
  SelfAttention's gamma is non-zero so that path counts.
  """
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = path[-1].key
    if name == "kernel":
      fan_in = int(np.prod(leaf.shape[:-1]))
      return (rng.standard_normal(leaf.shape) / np.sqrt(fan_in)).astype(np.float32)
    if name == "gamma":
      return rng.uniform(0.2, 0.8, leaf.shape).astype(np.float32)
    if name in ("scale", "var"):
      return rng.uniform(0.8, 1.2, leaf.shape).astype(np.float32)
    return (0.02 * rng.standard_normal(leaf.shape)).astype(np.float32)

  return jax.tree_util.tree_map_with_path(fill, abstract_variables)


def abstract_variables(model, height: int = 64, width: int = 64):
  """A MobileIQA model's variable tree as ShapeDtypeStructs (nothing is
  computed). The shapes do not depend on the input size; height and width
  only shape the trace."""
  images = jax.ShapeDtypeStruct((1, height, width, 3), np.float32)
  return jax.eval_shape(lambda x: model.init(jax.random.key(0), x), images)


def random_variables(model, height: int = 64, width: int = 64, *, seed: int = 0):
  """`random_like` on a MobileIQA model's `abstract_variables`."""
  return random_like(abstract_variables(model, height, width), seed=seed)


def count_params(tree) -> int:
  """The number of values in a (parameter) tree."""
  return int(sum(np.size(x) for x in jax.tree.leaves(tree)))
