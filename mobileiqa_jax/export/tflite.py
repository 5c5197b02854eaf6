"""JAX -> TFLite conversion: jax2tf native serialization, then the
TFLite converter on a concrete function.

The exported graph has a fixed shape, batch 1: with a symbolic batch the
converter cannot fuse softmax and hard-swish into their TFLite kernels and
falls back to primitive ops. Only TFLite builtin ops are allowed, so the
file runs on any LiteRT runtime without the Flex (TensorFlow) delegate.
"""

from collections.abc import Callable
import contextlib

import jax
import numpy as np

from mobileiqa_jax.data import preprocess

QUANTIZATIONS = ("float32", "float16", "dynamic_int8")
# The exported outputs; LiteRT tells them apart by rank: (1,) and (1, M, M).
OUTPUT_NAMES = ("score", "quality_map")
INPUT_KINDS = ("float32", "uint8")


def scoring_function(module, input_kind: str, quality_map: bool = False) -> Callable:
  """`f(variables, images) -> scores (B,)`: the exported computation, in JAX;
  with `quality_map`, `-> (scores, cells (B, M, M))` (`heads.score_head`).

  Verification runs it under `jax.jit` (with the module's XLA kernels), so
  JAX and LiteRT are compared on the same computation, normalisation included.

  Raises:
    ValueError: for an unknown `input_kind`.
  """
  if input_kind not in INPUT_KINDS:
    raise ValueError(f"unknown input kind '{input_kind}'; choose one of {INPUT_KINDS}")

  def score(variables, images):
    if input_kind == "uint8":
      images = preprocess.normalise(images)  # in the graph, for uint8 input
    scores, taps = module.apply(variables, images, train=False)
    return (scores, taps["quality_map"]) if quality_map else scores

  return score


def graph_kernels(quantization: str) -> str:
  """The model's graph form (`layers.KERNELS`) for a TFLite quantization."""
  return "tflite_int8" if quantization == "dynamic_int8" else "tflite"


def input_dtype(input_kind: str) -> np.dtype:
  return np.dtype(np.uint8 if input_kind == "uint8" else np.float32)


def convert(
  fn: Callable, variables, height: int, width: int, input_kind: str, quantization: str
) -> bytes:
  """TFLite flatbuffer of `fn(variables, images)` for one (1, height, width, 3) input.

  Args:
    fn: a function as `scoring_function` returns; a (scores, cells) result
      becomes two outputs, `score` and `quality_map`.
    variables: its variables; they become constants of the file.
    height, width: the fixed input size.
    input_kind: "float32" (ImageNet-normalised) or "uint8" (0..255 RGB).
    quantization: "float32"; "float16" (weights stored as float16, computed in
      float32); "dynamic_int8" (weights int8, activations quantised on the fly).

  Raises:
    ValueError: for an unknown `quantization`.
  """
  if quantization not in QUANTIZATIONS:
    raise ValueError(f"unknown quantization '{quantization}'; choose one of {QUANTIZATIONS}")
  # TensorFlow is an optional dependency (the `export` extra) and slow to import.
  from jax.experimental import jax2tf  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  # Lower for CPU whatever accelerator this runs on: the TFLite converter reads
  # the serialized StableHLO and a TPU/GPU lowering would not convert.
  tf_fn = jax2tf.convert(fn, with_gradient=False, native_serialization_platforms=("cpu",))
  # Weights enter as variables rather than closed-over constants, so the traced
  # graph stays small; the converter freezes them into the file. One variable
  # per dtype holds them all: the converter saves the function as a
  # SavedModel, which takes seconds for a few hundred variables (a third of a
  # tiny model's conversion), and folds the slices below back into one
  # constant per weight (the file is byte for byte the same).
  leaves, treedef = jax.tree.flatten(jax.tree.map(np.asarray, variables))
  dtypes = sorted({leaf.dtype.str for leaf in leaves})
  holder = tf.Module()
  holder.packed = [
    tf.Variable(np.concatenate([x.reshape(-1) for x in leaves if x.dtype.str == d])) for d in dtypes
  ]
  spec = tf.TensorSpec((1, height, width, 3), tf.as_dtype(input_dtype(input_kind)), name="image")

  def unpack():
    parts = {
      d: iter(tf.split(packed, [x.size for x in leaves if x.dtype.str == d]))
      for d, packed in zip(dtypes, holder.packed)
    }
    weights = [tf.reshape(next(parts[x.dtype.str]), x.shape) for x in leaves]
    return jax.tree.unflatten(treedef, weights)

  @tf.function(input_signature=[spec], autograph=False)
  def serve(images):
    outputs = tf_fn(unpack(), images)
    if isinstance(outputs, (tuple, list)):
      return dict(zip(OUTPUT_NAMES, outputs))
    return {"score": outputs}

  with _stablehlo_readable_by_tensorflow():
    concrete = serve.get_concrete_function()
  converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder)
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  if quantization != "float32":
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if quantization == "float16":
    converter.target_spec.supported_types = [tf.float16]
  return converter.convert()


@contextlib.contextmanager
def _stablehlo_readable_by_tensorflow():
  """Serializes StableHLO for a 12-week-old consumer while tracing for jax2tf.

  jax 0.10.2 targets consumers at most 4 weeks old (StableHLO 1.15) and writes
  `lax.erf`, which the exact GELU uses, as a `composite_v2` op; TensorFlow
  2.21 reads StableHLO 1.13.7 and rejects the whole module ("unregistered
  operation 'vhlo.composite_v2'"). The 12-week target is 1.13.7: erf then
  arrives as a polynomial of MUL/ADD/MIN/MAX/DIV that XNNPACK runs whole.
  jax has no public switch for this, hence a patch of the version lookup for
  the duration of the trace (jax is pinned, see pyproject.toml).
  """
  from jax._src.export import _export  # pylint: disable=g-import-not-at-top

  hlo = _export.hlo  # the StableHLO dialect module whose function jax asks
  original = hlo.get_version_from_compatibility_requirement
  week_12 = hlo.StablehloCompatibilityRequirement.WEEK_12
  hlo.get_version_from_compatibility_requirement = lambda _: original(week_12)
  try:
    yield
  finally:
    hlo.get_version_from_compatibility_requirement = original
