"""Checks an exported TFLite file against JAX on deterministic sample images."""

import dataclasses

import jax
import numpy as np

from mobileiqa_jax import metrics, xla_options
from mobileiqa_jax.data import preprocess


def sample_images(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
  """(count, height, width, 3) uint8 RGB images, deterministic in `seed`.

  Each is a smooth random colour field with its own contrast, brightness,
  blur scale and noise level, so that a network's scores spread over the set
  and a rank correlation between two implementations means something.
  """
  rng = np.random.default_rng(seed)
  images = np.empty((count, height, width, 3), np.uint8)
  for i in range(count):
    cells = int(rng.integers(2, 24))  # coarser fields look blurrier
    coarse = rng.uniform(0.0, 1.0, (cells, cells, 3)).astype(np.float32)
    field = np.asarray(jax.image.resize(coarse, (height, width, 3), "bicubic"))
    contrast, brightness = rng.uniform(0.2, 1.5), rng.uniform(-0.3, 0.3)
    noise = rng.uniform(0.0, 0.25) * rng.standard_normal((height, width, 3))
    image = (field - 0.5) * contrast + 0.5 + brightness + noise
    images[i] = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
  return images


def model_inputs(images: np.ndarray, input_kind: str) -> np.ndarray:
  """uint8 samples as the exported model takes them."""
  if input_kind == "uint8":
    return images
  return preprocess.normalise(np.asarray(images))


def jax_scores(fn, variables, inputs: np.ndarray):
  """`fn` jitted, one image at a time, as the batch-1 TFLite model runs:
  scores (N,), or (scores, cells (N, M, M)) for a function with a quality map."""
  apply = xla_options.jit(fn)
  outputs = [apply(variables, x[None]) for x in inputs]
  return jax.tree.map(lambda *parts: np.concatenate([np.asarray(p) for p in parts]), *outputs)


def make_interpreter(model_path: str, num_threads: int | None = None):
  """A LiteRT interpreter with its tensors allocated."""
  # LiteRT is part of the optional `export` extra.
  from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top

  interpreter = Interpreter(model_path=str(model_path), num_threads=num_threads)
  interpreter.allocate_tensors()
  return interpreter


def score_and_map_outputs(interpreter) -> tuple[dict, dict | None]:
  """The output details of the score (shape (1,)) and of the quality map
  ((1, M, M), or None for a file exported without one)."""
  by_rank = {len(o["shape"]): o for o in interpreter.get_output_details()}
  if 1 not in by_rank or set(by_rank) - {1, 3}:
    shapes = [list(o["shape"]) for o in interpreter.get_output_details()]
    raise ValueError(f"expected a (1,) score and maybe a (1, M, M) map output, found {shapes}")
  return by_rank[1], by_rank.get(3)


def tflite_scores(model_path: str, inputs: np.ndarray, num_threads: int | None = None):
  """Scores of the TFLite file at `model_path` for each of `inputs` (N, H, W, 3),
  and the quality map cells (N, M, M) too where the file has that output."""
  interpreter = make_interpreter(model_path, num_threads)
  (source,) = interpreter.get_input_details()
  score_out, map_out = score_and_map_outputs(interpreter)
  if tuple(source["shape"]) != (1,) + inputs.shape[1:] or source["dtype"] != inputs.dtype:
    raise ValueError(
      f"model takes {source['dtype'].__name__}{list(source['shape'])}, "
      f"got {inputs.dtype}{list(inputs.shape)}"
    )
  return invoke_each(interpreter, inputs, score_out, map_out)


def invoke_each(interpreter, inputs: np.ndarray, score_out: dict, map_out: dict | None = None):
  """Runs a batch-1 interpreter on each of `inputs` (N, H, W, 3), as it takes
  them: scores (N,) float32, and with `map_out` the map cells (N, M, M) too."""
  (source,) = interpreter.get_input_details()
  scores, maps = np.empty(len(inputs), np.float32), []
  for i, x in enumerate(inputs):
    interpreter.set_tensor(source["index"], x[None])
    interpreter.invoke()
    scores[i] = interpreter.get_tensor(score_out["index"]).reshape(-1)[0]
    if map_out is not None:
      maps.append(interpreter.get_tensor(map_out["index"])[0])
  return scores if map_out is None else (scores, np.stack(maps))


@dataclasses.dataclass(frozen=True)
class Comparison:
  """TFLite against JAX over the sample set, and whether it passed."""

  samples: int
  max_abs_diff: float
  mean_abs_diff: float
  srcc: float  # metrics.correlations': 0 where undefined (constant scores)
  jax_score_range: list[float]  # [min, max]
  criterion: str
  passed: bool

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


def compare(
  reference: np.ndarray,
  exported: np.ndarray,
  quantization: str,
  *,
  float32_tolerance: float,
  min_srcc: float,
) -> Comparison:
  """Applies the acceptance rule: float32 by max|diff|, quantised models by SRCC.

  A quantised model is judged on ranking, what IQA is evaluated on; its
  absolute error is reported but not bounded.
  """
  diff = np.abs(reference.astype(np.float64) - exported.astype(np.float64))
  srcc = metrics.correlations(exported, reference)["srcc"]
  if quantization == "float32":
    criterion = f"max|diff| <= {float32_tolerance:g}"
    passed = bool(diff.max() <= float32_tolerance)
  else:
    criterion = f"SRCC vs JAX float32 >= {min_srcc:g}"
    passed = bool(srcc >= min_srcc)
  return Comparison(
    samples=len(reference),
    max_abs_diff=float(diff.max()),
    mean_abs_diff=float(diff.mean()),
    srcc=srcc,
    jax_score_range=[float(reference.min()), float(reference.max())],
    criterion=criterion,
    passed=passed,
  )
