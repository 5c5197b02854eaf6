"""The TFLite file and its JSON: convert, verify against JAX, then write both or nothing.

  from mobileiqa_jax import export
  report = export.export_tflite(module, variables, "student.tflite", 1231, 1907,
                                quantization="float16", input_kind="uint8")

writes `student.tflite` and `student.json` (input size and kind, normalisation,
model, quantization, verification figures). The file is built in a temporary
file beside the target, run with the LiteRT interpreter on sample images and
compared with JAX; only if it passes are both files moved into place, so a
refused or failed export leaves nothing behind. Command line:
`python -m mobileiqa_jax.export --help`.
"""

import hashlib
import importlib.metadata
import json
import os
import pathlib
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

from mobileiqa_jax import errors
from mobileiqa_jax import quality_map as quality_map_lib
from mobileiqa_jax.data.preprocess import IMAGENET_MEAN, IMAGENET_STD
from mobileiqa_jax.export import tflite, verify
from mobileiqa_jax.export.tflite import INPUT_KINDS, QUANTIZATIONS

DEFAULT_FLOAT32_TOLERANCE = 1e-4
DEFAULT_MIN_SRCC = 0.99
DEFAULT_SAMPLES = 8


class VerificationError(errors.InputError, RuntimeError):
  """The exported model disagrees with JAX beyond the bound; nothing was written."""

  def __init__(self, message: str, comparison: verify.Comparison):
    super().__init__(message)
    self.comparison = comparison


def _package_version() -> str:
  try:
    return importlib.metadata.version("mobileiqa-jax")
  except importlib.metadata.PackageNotFoundError:
    return "unknown"


def _describe_input(height: int, width: int, input_kind: str) -> dict:
  common = dict(
    name="image",
    shape=[1, height, width, 3],
    layout="NHWC",
    color="RGB",
    mean=list(IMAGENET_MEAN),
    std=list(IMAGENET_STD),
  )
  if input_kind == "uint8":
    return dict(
      common,
      kind="uint8",
      dtype="uint8",
      range=[0, 255],
      normalisation_in_graph=True,
      note="raw RGB pixels; the graph computes (x / 255 - mean) / std",
    )
  return dict(
    common,
    kind="float32",
    dtype="float32",
    normalisation_in_graph=False,
    note="pass (x / 255 - mean) / std of RGB pixels x in 0..255",
  )


def _write_temp(directory: pathlib.Path, name: str, data: bytes) -> pathlib.Path:
  """`data` in a new hidden file of `directory`; the caller renames or removes it."""
  handle, path = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
  with os.fdopen(handle, "wb") as f:
    f.write(data)
  return pathlib.Path(path)


def export_tflite(
  module,
  variables,
  out_path,
  height: int,
  width: int,
  quantization: str = "float32",
  input_kind: str = "float32",
  *,
  model_name: str | None = None,
  samples: int = DEFAULT_SAMPLES,
  seed: int = 0,
  float32_tolerance: float = DEFAULT_FLOAT32_TOLERANCE,
  min_srcc: float = DEFAULT_MIN_SRCC,
  num_threads: int | None = None,
  images: np.ndarray | None = None,
  metadata: dict | None = None,
  quality_map: bool = False,
) -> dict:
  """Exports `module` with `variables` to a verified batch-1 TFLite file.

  Args:
    module: a MobileIQA module (`models.create(...)`); it is exported in
      float32 whatever its `dtype`, reduced precision being the converter's
      job, and with TFLite kernels (`tflite.graph_kernels`) whatever its
      `kernels`.
    variables: its variables ({"params", "batch_stats"}).
    out_path: the .tflite to write; the report goes beside it as .json.
    height, width: the fixed input size.
    quantization: "float32", "float16" (float16 weights) or "dynamic_int8"
      (int8 weights, dynamically quantised activations).
    input_kind: "float32" for NHWC ImageNet-normalised input, "uint8" for raw
      0..255 RGB with the normalisation inside the graph.
    model_name: the preset's name, recorded in the report.
    samples: how many synthetic sample images the check runs; quantised
      exports need at least 3 for a rank correlation.
    seed: seeds the sample images.
    float32_tolerance: the largest |score difference| a float32 export may show.
    min_srcc: the smallest SRCC a quantised export may show against JAX float32.
    num_threads: LiteRT threads for the check (default: LiteRT's choice).
    images: (N, height, width, 3) uint8 RGB images to check on instead of
      the synthetic samples (e.g. a dataset's test split, `split_images`);
      `samples` and `seed` are then unused.
    metadata: extra entries for the report (e.g. the source checkpoint).
    quality_map: also output the quality map's cells, (1, M, M) float32
      (`mobileiqa_jax.quality_map`), verified like the score; the report
      says where the cells lie.

  Returns:
    The report, as written to the .json file.

  Raises:
    VerificationError: the check failed; no file was written.
    errors.InvalidInput (a ValueError): an unknown quantization or input
      kind, or too few samples.
    ValueError: verification images of the wrong type or shape.
  """
  if quantization not in QUANTIZATIONS:
    raise errors.InvalidInput(
      f"unknown quantization '{quantization}'; choose one of {QUANTIZATIONS}"
    )
  if input_kind not in INPUT_KINDS:
    raise errors.InvalidInput(f"unknown input kind '{input_kind}'; choose one of {INPUT_KINDS}")
  if images is not None:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.shape[1:] != (height, width, 3):
      raise ValueError(
        f"verification images must be uint8 (N, {height}, {width}, 3), got "
        f"{images.dtype}{list(images.shape)}"
      )
    samples = len(images)
  if samples < (1 if quantization == "float32" else 3):
    raise errors.InvalidInput(f"{quantization} export needs more sample images than {samples}")
  out_path = pathlib.Path(out_path)
  if not out_path.parent.is_dir():
    # Checked before the conversion, which takes minutes at full size.
    raise FileNotFoundError(
      f"cannot write {out_path}: {out_path.parent} is not a directory; "
      "create it or choose another output path"
    )
  json_path = out_path.with_suffix(".json")
  module = module.clone(dtype=jnp.float32)
  # The graph is written in the forms LiteRT runs fast (native depthwise
  # convs, one GELU op, no loops); the reference is the same function with
  # XLA's forms, which XLA:CPU runs several times faster, so the check also
  # covers the switch between the two.
  exported_fn = tflite.scoring_function(
    module.clone(kernels=tflite.graph_kernels(quantization)), input_kind, quality_map
  )
  reference_fn = tflite.scoring_function(module.clone(kernels="xla"), input_kind, quality_map)

  flatbuffer = tflite.convert(exported_fn, variables, height, width, input_kind, quantization)
  sample_source = "given images" if images is not None else f"synthetic samples, seed {seed}"
  if images is None:
    images = verify.sample_images(samples, height, width, seed)
  inputs = verify.model_inputs(images, input_kind)
  reference = verify.jax_scores(reference_fn, variables, inputs)

  temps = []
  try:
    # The check runs the bytes on disk, so what is verified is what is shipped.
    temps.append(_write_temp(out_path.parent, out_path.name, flatbuffer))
    exported = verify.tflite_scores(temps[0], inputs, num_threads)
    judge = lambda ours, theirs: verify.compare(
      ours, theirs, quantization, float32_tolerance=float32_tolerance, min_srcc=min_srcc
    )
    if quality_map:
      (reference, reference_map), (exported, exported_map) = reference, exported
    comparison = judge(reference, exported)
    checks = {"score": comparison}
    if quality_map:  # the map judged like the score, over all its cells
      checks["quality map"] = judge(reference_map.reshape(-1), exported_map.reshape(-1))
    for what, check in checks.items():
      if not check.passed:
        raise VerificationError(
          f"refused to write {out_path}: {quantization} export's {what} fails "
          f"{check.criterion} (max|diff| {check.max_abs_diff:.3g}, SRCC {check.srcc}, "
          f"{check.samples} values)",
          check,
        )
    outputs = {}
    if quality_map:
      centres = quality_map_lib.cell_centres(module.grid, module.head_pool)
      outputs["quality_map"] = dict(
        name="quality_map",
        shape=[1, len(centres), len(centres)],
        dtype="float32",
        grid=module.grid,
        pool=module.head_pool,
        centres=[round(float(c), 6) for c in centres],
        note="each cell's score on the score's scale; cell (i, j) is centred at "
        "(centres[i], centres[j]) as fractions of the input's height and width "
        "(mobileiqa_jax/quality_map.py)",
        verification=checks["quality map"].to_dict(),
      )
    report = dict(
      model=model_name,
      package_version=_package_version(),
      quantization=quantization,
      input=_describe_input(height, width, input_kind),
      output=dict(
        name="score",
        shape=[1],
        dtype="float32",
        note="predicted quality; the student's sigmoid gives 0..1",
      ),
      **outputs,
      verification=dict(
        comparison.to_dict(),
        images=sample_source,
        float32_tolerance=float32_tolerance,
        min_srcc=min_srcc,
        reference="JAX float32, jitted",
      ),
      file=dict(
        name=out_path.name, bytes=len(flatbuffer), sha256=hashlib.sha256(flatbuffer).hexdigest()
      ),
      converter=dict(
        route="jax2tf (native serialization) -> TFLiteConverter.from_concrete_functions",
        jax=jax.__version__,
        tensorflow=_tensorflow_version(),
      ),
      **(metadata or {}),
    )
    temps.append(
      _write_temp(out_path.parent, json_path.name, (json.dumps(report, indent=2) + "\n").encode())
    )
    os.replace(temps[0], out_path)
    try:
      os.replace(temps[1], json_path)
    except BaseException:
      out_path.unlink(missing_ok=True)  # a .tflite without its report is not an export
      raise
  finally:
    for temp in temps:
      temp.unlink(missing_ok=True)
  return report


def _tensorflow_version() -> str:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  return tf.__version__
