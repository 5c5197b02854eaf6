"""Checks an exported TFLite file against JAX on deterministic sample images."""

import dataclasses

import jax
import numpy as np
from scipy import stats

from mobileiqa_jax import xla_options
from mobileiqa_jax.export import tflite


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
  return np.asarray(tflite.normalise(images))


def jax_scores(fn, variables, inputs: np.ndarray) -> np.ndarray:
  """`fn` jitted, one image at a time, as the batch-1 TFLite model runs."""
  apply = xla_options.jit(fn)
  return np.concatenate([np.asarray(apply(variables, x[None])) for x in inputs])


def make_interpreter(model_path: str, num_threads: int | None = None):
  """A LiteRT interpreter with its tensors allocated."""
  # LiteRT is part of the optional `export` extra.
  from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top

  interpreter = Interpreter(model_path=str(model_path), num_threads=num_threads)
  interpreter.allocate_tensors()
  return interpreter


def tflite_scores(
  model_path: str, inputs: np.ndarray, num_threads: int | None = None
) -> np.ndarray:
  """Scores of the TFLite file at `model_path` for each of `inputs` (N, H, W, 3)."""
  interpreter = make_interpreter(model_path, num_threads)
  (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
  if tuple(source["shape"]) != (1,) + inputs.shape[1:] or source["dtype"] != inputs.dtype:
    raise ValueError(
      f"model takes {source['dtype'].__name__}{list(source['shape'])}, "
      f"got {inputs.dtype}{list(inputs.shape)}"
    )
  scores = []
  for x in inputs:
    interpreter.set_tensor(source["index"], x[None])
    interpreter.invoke()
    scores.append(interpreter.get_tensor(target["index"]).reshape(-1))
  return np.concatenate(scores)


@dataclasses.dataclass(frozen=True)
class Comparison:
  """TFLite against JAX over the sample set, and whether it passed."""

  samples: int
  max_abs_diff: float
  mean_abs_diff: float
  srcc: float | None  # None when undefined (fewer than 2 samples, or constant scores)
  jax_score_range: list[float]  # [min, max]
  criterion: str
  passed: bool

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
  if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
    return None
  return float(stats.spearmanr(a, b).statistic)


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
  srcc = spearman(reference, exported)
  if quantization == "float32":
    criterion = f"max|diff| <= {float32_tolerance:g}"
    passed = bool(diff.max() <= float32_tolerance)
  else:
    criterion = f"SRCC vs JAX float32 >= {min_srcc:g}"
    passed = srcc is not None and srcc >= min_srcc
  return Comparison(
    samples=len(reference),
    max_abs_diff=float(diff.max()),
    mean_abs_diff=float(diff.mean()),
    srcc=srcc,
    jax_score_range=[float(reference.min()), float(reference.max())],
    criterion=criterion,
    passed=passed,
  )
