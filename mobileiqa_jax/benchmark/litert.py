"""LiteRT rows: the TFLite export of a preset, run by the LiteRT interpreter.

`measure_litert` is the inference backends' LiteRT row (conversion in a
process of its own, so that the row's memory is the interpreter's);
`tflite_latency` times an exported file at a thread count
(`python -m mobileiqa_jax.benchmark --tflite student.tflite --threads 1,2`).
The input is random data of the model's input shape and type: latency does
not depend on pixel values.
"""

import concurrent.futures
import multiprocessing
import os
import pathlib
import tempfile
import time

import jax
import numpy as np

from mobileiqa_jax import models
from mobileiqa_jax.benchmark import probes
from mobileiqa_jax.export import tflite, verify


def tflite_latency(model_path, *, num_threads: int, runs: int = 5, warmup: int = 1) -> dict:
  """Seconds per `invoke` of the model at `model_path` with `num_threads` threads.

  Returns:
    {"threads", "runs", "median_s", "min_s", "max_s"}; warm-up runs are not
    counted.
  """
  interpreter = verify.make_interpreter(model_path, num_threads)
  timing = probes.time_invokes(interpreter, runs, warmup)
  return dict(
    threads=num_threads,
    runs=runs,
    median_s=timing["median_s"],
    min_s=timing["min_s"],
    max_s=timing["max_s"],
  )


def convert_synthetic(
  model_name: str, height: int, width: int, quantization: str, out_path
) -> float:
  """Converts a preset with synthetic weights (as `inference.measure_jax`
  times JAX) to `out_path`, unverified, for timing; returns its GFLOP.

  Latency does not depend on the weights' values, so no checkpoint is needed.
  """

  module = models.create(model_name, kernels=tflite.graph_kernels(quantization))
  variables = models.random_variables(module, height, width)
  fn = tflite.scoring_function(module, "float32")
  images = jax.ShapeDtypeStruct((1, height, width, 3), np.float32)
  flops = probes.count_flops(jax.make_jaxpr(fn)(variables, images))
  pathlib.Path(out_path).write_bytes(
    tflite.convert(fn, variables, height, width, "float32", quantization)
  )
  return flops / 1e9


def convert_elsewhere(case, quantization: str, path: str) -> float:
  """Exports `case` (random weights) to `path` in a spawned process of its own,
  so that this process's memory stays the interpreter's; returns its GFLOP."""
  if case.batch != 1:
    raise ValueError(f"the TFLite export is batch 1, got {case.label}")
  with concurrent.futures.ProcessPoolExecutor(
    1, mp_context=multiprocessing.get_context("spawn")
  ) as pool:
    return pool.submit(
      convert_synthetic, case.model, case.height, case.width, quantization, path
    ).result()


def measure_litert(case, repeats: int, warmup: int, quantization: str = "float32") -> dict:
  """The TFLite export of one case run by LiteRT (XNNPACK), one thread per core.

  The conversion (TensorFlow, JAX) runs in a spawned process of its own, so
  that this process's memory is the interpreter's: runtime, weights, arena.
  "compile" is conversion plus interpreter set-up.
  """
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "model.tflite")
    start = time.perf_counter()
    gflop = convert_elsewhere(case, quantization, path)
    threads = os.cpu_count() or 1
    interpreter = verify.make_interpreter(path, threads)
    compile_s = time.perf_counter() - start
    compile_peak = probes.peak_rss_bytes()
    base = probes.rss_bytes()
    timing = probes.time_invokes(interpreter, repeats, warmup, before_timing=probes.reset_peak_rss)
  return {
    "compile_s": compile_s,
    "latency_s": timing["median_s"],
    "latencies_s": timing["times_s"],
    "images_per_s": 1 / timing["median_s"],
    "gflop": gflop,
    "gflops_per_s": gflop / timing["median_s"],
    "base_rss_bytes": base,
    "peak_rss_bytes": probes.peak_rss_bytes(),
    "peak_rss_includes_compile": not timing["before_timing"],
    "compile_peak_rss_bytes": compile_peak,
    "threads": threads,
    "quantization": quantization,
  }
