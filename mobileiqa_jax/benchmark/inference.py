"""Inference rows: a preset scored by JAX, by LiteRT, or from a folder of photos.

Each row runs in a process of its own whose resident memory is the row's
figure, so a row imports what only it needs (the scorer, LiteRT) itself.
"""

from collections.abc import Callable
import dataclasses
import functools
import os
import tempfile
import time

import jax
import numpy as np
from PIL import Image

from mobileiqa_jax import models, xla_options
from mobileiqa_jax.benchmark import probes


@dataclasses.dataclass(frozen=True)
class Case:
  """One measured configuration: a model preset on (batch, height, width) inputs."""

  model: str
  height: int
  width: int
  batch: int = 1
  backend: str = "jax"

  @property
  def label(self) -> str:
    return f"{self.backend}:{self.model}:{self.height}x{self.width}x{self.batch}"

  @classmethod
  def parse(cls, label: str) -> "Case":
    backend, model, size = label.split(":")
    height, width, batch = map(int, size.split("x"))
    return cls(model, height, width, batch, backend)


_SIZES = ((512, 512), (1231, 1907))
# JAX for both networks; LiteRT for the student, the one that ships as TFLite.
FULL_CASES = tuple(
  Case(model, h, w) for model in ("student", "teacher") for h, w in _SIZES
) + tuple(Case("student", h, w, backend="litert") for h, w in _SIZES)
SMOKE_CASES = (Case("student_tiny", 64, 96), Case("teacher_tiny", 64, 96))


def measure_jax(case: Case, repeats: int, warmup: int) -> dict:
  """Jitted float32 scoring (eval mode) of one case.

  The call returns the scores only, as deployment does: returning the taps
  too would keep every backbone map alive as an output (0.57 GB for the
  teacher at 1231x1907).
  """
  model = models.create(case.model)
  variables = jax.device_put(models.random_variables(model, case.height, case.width))
  images = jax.device_put(
    np.random.default_rng(0)
    .standard_normal((case.batch, case.height, case.width, 3))
    .astype(np.float32)
  )
  score = lambda v, x: model.apply(v, x)[0]
  flops = probes.count_flops(jax.make_jaxpr(score)(variables, images))

  start = time.perf_counter()
  call = xla_options.jit(score).lower(variables, images).compile()
  compile_s = time.perf_counter() - start
  compile_peak = probes.peak_rss_bytes()
  probes.release_free_memory()
  base = probes.rss_bytes()
  for _ in range(warmup):
    jax.block_until_ready(call(variables, images))
  exact_peak = probes.reset_peak_rss()
  seconds, times = probes.median_seconds(
    lambda: jax.block_until_ready(call(variables, images)), repeats
  )
  return {
    "compile_s": compile_s,
    "latency_s": seconds,
    "latencies_s": times,
    "images_per_s": case.batch / seconds,
    "gflop": flops / 1e9,
    "gflops_per_s": flops / seconds / 1e9,
    "base_rss_bytes": base,
    "peak_rss_bytes": probes.peak_rss_bytes(),
    # Without the reset the high-water mark still holds compilation's peak.
    "peak_rss_includes_compile": not exact_peak,
    "compile_peak_rss_bytes": compile_peak,
  }


# The camera photos `measure_folder` scores: 12 MP, as phones take them.
FOLDER_PHOTO_SIZE = (3000, 4000)
FOLDER_PHOTOS = 12


def write_photos(folder: str, count: int, height: int, width: int, seed: int = 0) -> list[str]:
  """`count` JPEGs (quality 90) of smooth colour fields with grain, which
  decode like photographs (no constant runs for the entropy coder to skip)."""
  rng = np.random.default_rng(seed)
  paths = []
  for i in range(count):
    coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), np.int16)
    grain = rng.integers(-12, 13, (height, width, 1), dtype=np.int16)
    path = os.path.join(folder, f"photo_{i:03d}.jpg")
    Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8)).save(path, quality=90)
    paths.append(path)
  return paths


def measure_folder(case: Case, repeats: int, warmup: int, backend: str = "jax") -> dict:
  """`Scorer.score_files` on a folder of 12 MP JPEGs against the network alone.

  The network-only rate runs the Scorer's backend on the same photos already
  decoded and resized, in the same batches; the folder rate is the whole
  path (read, decode, resize, normalise, network) with decoding on threads
  overlapping the network. Their ratio says how much the input costs.
  """
  from mobileiqa_jax import scoring  # pylint: disable=g-import-not-at-top
  from mobileiqa_jax.benchmark import litert  # pylint: disable=g-import-not-at-top

  with tempfile.TemporaryDirectory() as tmp:
    paths = write_photos(tmp, FOLDER_PHOTOS, *FOLDER_PHOTO_SIZE)
    start = time.perf_counter()
    if backend == "jax":
      model = models.create(case.model)
      variables = models.random_variables(model, case.height, case.width)
      network = scoring.JaxBackend(model, variables, case.batch)
    else:
      model_path = os.path.join(tmp, "model.tflite")
      litert.convert_elsewhere(case, "float32", model_path)
      network = scoring.TFLiteBackend(model_path, num_threads=os.cpu_count())
    scorer = scoring.Scorer(network, (case.height, case.width), batch_size=case.batch)
    prepared = np.stack([scorer.prepare(path) for path in paths])
    for _ in range(max(warmup, 1)):  # compiles (JAX) and warms caches
      scorer.score_files(paths[: case.batch])
    compile_s = time.perf_counter() - start
    probes.release_free_memory()
    base = probes.rss_bytes()
    exact_peak = probes.reset_peak_rss()

    def network_only():
      for i in range(0, len(prepared), case.batch):
        jax.block_until_ready(network(prepared[i : i + case.batch]))

    network_s, _ = probes.median_seconds(network_only, repeats)
    folder_s, times = probes.median_seconds(lambda: scorer.score_files(paths), repeats)
  return {
    "compile_s": compile_s,
    "latency_s": folder_s / len(paths),
    "latencies_s": times,
    "images_per_s": len(paths) / folder_s,
    "network_images_per_s": len(paths) / network_s,
    "folder_fraction": network_s / folder_s,
    "photos": f"{len(paths)} JPEGs {FOLDER_PHOTO_SIZE[0]}x{FOLDER_PHOTO_SIZE[1]}",
    "base_rss_bytes": base,
    "peak_rss_bytes": probes.peak_rss_bytes(),
    "peak_rss_includes_compile": not exact_peak,
  }


def measure_litert(case: Case, repeats: int, warmup: int, quantization: str = "float32") -> dict:
  """`litert.measure_litert`, imported by the LiteRT rows alone."""
  from mobileiqa_jax.benchmark import litert  # pylint: disable=g-import-not-at-top

  return litert.measure_litert(case, repeats, warmup, quantization)


# Inference backends: name -> measure(case, repeats, warmup) -> row fields.
INFERENCE_BACKENDS: dict[str, Callable[[Case, int, int], dict]] = {
  "jax": measure_jax,
  "litert": measure_litert,  # float32
  "litert_fp16": functools.partial(measure_litert, quantization="float16"),
  "litert_int8": functools.partial(measure_litert, quantization="dynamic_int8"),
  # A folder of 12 MP JPEGs scored end to end, against the network alone.
  "folder": measure_folder,
  "folder_litert": functools.partial(measure_folder, backend="litert"),
}
