"""The assembled networks: presets, parameter counts, taps, training mode."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mobileiqa_jax import errors, models
from mobileiqa_jax.models import heads, layers
from mobileiqa_jax.models.__main__ import parameter_counts
from tests.conftest import random_variables


def test_parameter_counts_equal_the_original():
  student, teacher = parameter_counts("student"), parameter_counts("teacher")
  print(f"student {student}\nteacher {teacher}")
  assert round(student["total"] / 1e6, 2) == 81.48 and round(student["backbone"] / 1e6, 1) == 3.0
  assert round(teacher["total"] / 1e6, 2) == 96.72 and round(teacher["backbone"] / 1e6, 1) == 17.4


def test_create_refuses_unknown_names_fields_and_values():
  # User errors (a config's model.name and overrides), reported by the
  # command lines in one line; still ValueErrors for Python callers.
  with pytest.raises(errors.InvalidInput, match="unknown model 'studnet'"):
    models.create("studnet")
  with pytest.raises(errors.InvalidInput, match=r"unknown model field\(s\) \['grid_size'\]"):
    models.create("student", grid_size=3)
  with pytest.raises(errors.InvalidInput, match="backbone must be one of"):
    models.create("student", backbone="resnet")
  with pytest.raises(errors.InvalidInput, match="kernels must be one of"):
    models.create("student", kernels="cuda")
  assert issubclass(errors.InvalidInput, ValueError)


@pytest.mark.parametrize("name", ["student_tiny", "teacher_tiny"])
def test_tiny_presets_train_and_eval(name):
  model = models.create(name)
  x = np.random.default_rng(0).standard_normal((2, 75, 99, 3)).astype(np.float32)
  variables = random_variables(model, x)
  scores, taps = jax.jit(model.apply)(variables, x)
  assert scores.shape == (2,) and taps["levels"].shape == (5, 2, 8, 8, 32)
  assert taps["dof"].shape == (3, 2, 8, 8, 32) and taps["fused"].shape == (2, 8, 8, 32)
  if model.sigmoid:
    assert np.all((scores > 0) & (scores < 1))

  @jax.jit
  def train_apply(variables, rng):
    return model.apply(variables, x, train=True, rngs={"dropout": rng}, mutable=["batch_stats"])

  (train_scores, _), updates = train_apply(variables, jax.random.key(1))
  assert not np.allclose(train_scores, scores)  # dropout and batch statistics are on
  changed = jax.tree.map(
    lambda a, b: not np.allclose(a, b), updates["batch_stats"], variables["batch_stats"]
  )
  assert all(jax.tree.leaves(changed))


def test_bfloat16_compute_keeps_float32_params():
  model = models.create("student_tiny", dtype=jnp.bfloat16)
  x = np.zeros((1, 64, 64, 3), np.float32)
  abstract = jax.eval_shape(model.init, jax.random.key(0), x)
  assert {leaf.dtype for leaf in jax.tree.leaves(abstract)} == {jnp.dtype(jnp.float32)}
  scores, taps = jax.jit(model.apply)(random_variables(model, x), x)
  assert scores.dtype == jnp.float32 and taps["levels"].dtype == jnp.bfloat16


@pytest.mark.parametrize("name", ["student_tiny", "teacher_tiny"])
def test_tflite_kernels_take_the_same_variables_and_agree(name):
  x = np.random.default_rng(1).standard_normal((1, 67, 90, 3)).astype(np.float32)
  xla, tflite = models.create(name), models.create(name, kernels="tflite")
  assert jax.tree.map(np.shape, jax.eval_shape(xla.init, jax.random.key(0), x)) == jax.tree.map(
    np.shape, jax.eval_shape(tflite.init, jax.random.key(0), x)
  )
  variables = random_variables(xla, x)
  # Every conv of the TFLite form is one the converter maps onto a single op:
  # no matrix-product 1x1 convs, no shifted-sum depthwise convs.
  built = set()

  def record(next_fun, args, kwargs, context):
    built.add((type(context.module), getattr(context.module, "form", None)))
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    jax.eval_shape(tflite.apply, variables, x)
  assert (nn.Conv, None) in built
  assert not {(layers.PointwiseConv, None), (layers.DepthwiseConv, "shifted")} & built
  (a, taps_a), (b, taps_b) = jax.jit(xla.apply)(variables, x), jax.jit(tflite.apply)(variables, x)
  np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(taps_b["levels"], taps_a["levels"], rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="kernels must be one of"):
    models.create(name, kernels="tpu").init(jax.random.key(0), x)


def test_training_band_threshold_reaches_every_adapter_in_training_only():
  # Banded or whole, an adapter computes the same values and gradients
  # (test_heads.py); here, that the model hands `train_band_threshold` to all
  # five adapters when training, and `band_threshold` otherwise. Each banded
  # adapter is one lax.map, a scan in the program.
  x = jax.ShapeDtypeStruct((2, 70, 52, 3), jnp.float32)
  whole = models.create("student_tiny", train_band_threshold=models.layers.NO_BANDS)
  banded = whole.clone(train_band_threshold=0)
  variables = models.abstract_variables(whole)

  def scans(model, train):
    apply = functools.partial(
      model.apply, train=train, rngs={"dropout": jax.random.key(0)}, mutable=["batch_stats"]
    )
    return str(jax.make_jaxpr(apply)(variables, x)).count(" scan[")

  assert scans(banded, True) == scans(whole, True) + models.mobileiqa.NUM_LEVELS
  assert scans(banded, False) == scans(whole, False)


class _EveryLayerKind(nn.Module):
  """One of each layer the networks are built from, each with Flax's default
  initialisers (compiling this init takes a second; the presets' take 20 s)."""

  @nn.compact
  def __call__(self, x):
    x = layers.conv2d(32, 3, 2, use_bias=False)(x)  # nn.Conv
    x = layers.batch_norm(True)(x)
    x = layers.conv2d(32, 3, groups=32)(x)  # DepthwiseConv
    x = nn.GroupNorm(num_groups=1)(x)
    x = layers.conv2d(256)(x)  # PointwiseConv
    x = heads.SelfAttention()(x)
    return nn.Dense(64)(x.mean(axis=(1, 2)))


def test_host_initial_variables_follow_flax_initialisers():
  model = _EveryLayerKind()
  fresh = models.initial_variables(model, seed=3)
  x = np.zeros((1, 64, 64, 3), np.float32)
  flax_init = jax.jit(model.init)(jax.random.key(0), x)
  assert jax.tree.structure(fresh) == jax.tree.structure(flax_init)
  same_kind = jax.tree.map(lambda a, b: (a.shape, a.dtype) == (b.shape, b.dtype), fresh, flax_init)
  assert all(jax.tree.leaves(same_kind))
  for (path, ours), theirs in zip(
    jax.tree_util.tree_leaves_with_path(fresh), jax.tree.leaves(flax_init), strict=True
  ):
    if path[-1].key != "kernel":
      np.testing.assert_array_equal(ours, theirs)  # zeros and ones
      continue
    bound = 2 / 0.87962566103423978 / np.sqrt(np.prod(ours.shape[:-1]))
    assert np.abs(ours).max() <= bound * (1 + 1e-6), path
    assert np.abs(theirs).max() <= bound * (1 + 1e-6), path
    if ours.size >= 4096:  # enough values for the spread to say something
      np.testing.assert_allclose(ours.std(), np.std(theirs), rtol=0.1, err_msg=str(path))
  again = models.initial_variables(model, seed=3)
  jax.tree.map(np.testing.assert_array_equal, again, fresh)
  other = models.initial_variables(model, seed=4)
  dense = lambda variables: variables["params"]["Dense_0"]["kernel"]
  assert not np.array_equal(dense(other), dense(fresh))


def test_host_initial_variables_cover_both_networks():
  # Every variable of the presets has a rule (`initial_variables` raises for
  # one that has none); the layers' rules are checked against Flax above.
  for name in ("student_tiny", "teacher_tiny"):
    model = models.create(name)
    fresh = models.initial_variables(model, seed=0)
    expected = models.abstract_variables(model)
    assert jax.tree.map(np.shape, fresh) == jax.tree.map(np.shape, expected)


def test_host_initial_variables_refuse_a_variable_without_a_rule():
  class Odd(nn.Module):
    @nn.compact
    def __call__(self, x):
      return x * self.param("temperature", nn.initializers.ones, ())

  with pytest.raises(ValueError, match="no initialisation rule for variable.*temperature"):
    models.initial_variables(Odd(), seed=0)


@pytest.mark.parametrize("sigmoid", [False, True])
def test_initial_score_is_where_a_fresh_head_starts(sigmoid):
  class Head(nn.Module):  # the score head alone, its layers at the top as in MobileIQA
    sigmoid: bool

    @nn.compact
    def __call__(self, x):
      return heads.score_head(x, pool=2, channels=8, hidden=4, sigmoid=self.sigmoid)[0]

  head = Head(sigmoid)
  x = np.random.default_rng(0).standard_normal((4, 8, 8, 16)).astype(np.float32)
  fresh = models.initial_like(jax.eval_shape(head.init, jax.random.key(0), x), seed=0)
  started = models.with_initial_score(head, fresh, 0.66)
  changed = jax.tree.map(lambda a, b: not np.array_equal(a, b), fresh, started)
  assert sum(jax.tree.leaves(changed)) == 1 and changed["params"]["fc_score_3"]["bias"]
  # With the last layer's kernel at zero the head scores exactly the bias's
  # score, through the sigmoid where there is one...
  silent = jax.tree_util.tree_map_with_path(
    lambda path, a: np.zeros_like(a) if "fc_score_3" in str(path) and "kernel" in str(path) else a,
    started,
  )
  np.testing.assert_allclose(head.apply(silent, x), 0.66, rtol=1e-6)
  # ...and with its fresh kernel, about there (the zero bias starts 0.5 away).
  assert abs(float(np.mean(head.apply(started, x))) - 0.66) < 0.1
  if sigmoid:
    with pytest.raises(ValueError, match="init.score must be in"):
      models.with_initial_score(head, fresh, 1.0)
