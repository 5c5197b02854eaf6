"""LiteRT latency of an exported .tflite, batch 1, at several thread counts.

  python -m mobileiqa_jax.export.benchmark --tflite student.tflite --runs 5
  python -m mobileiqa_jax.export.benchmark --tflite student.tflite --threads 1,2,4

Prints the median latency per thread count. The input is random data of the
model's input shape and type: latency does not depend on pixel values.
"""

import argparse
import pathlib
import statistics
import sys
import time

import numpy as np

from mobileiqa_jax.export import verify


def time_invokes(interpreter, runs: int, warmup: int, before_timing=None) -> dict:
  """Times `invoke` of an allocated interpreter on random input of its shape and type.

  Args:
    interpreter: a LiteRT interpreter with its tensors allocated.
    runs: timed invokes.
    warmup: untimed invokes first (the first also prepares XNNPACK's packed
      weights).
    before_timing: called between warm-up and timing (e.g. to reset a peak
      memory counter); its result is returned as "before_timing".

  Returns:
    {"median_s", "min_s", "max_s", "times_s", "before_timing"}.
  """
  if runs < 1:
    raise ValueError(f"runs must be at least 1, got {runs}")
  (source,) = interpreter.get_input_details()
  rng = np.random.default_rng(0)
  if np.issubdtype(source["dtype"], np.integer):
    x = rng.integers(0, 256, source["shape"]).astype(source["dtype"])
  else:
    x = rng.standard_normal(source["shape"]).astype(source["dtype"])
  interpreter.set_tensor(source["index"], x)
  for _ in range(warmup):
    interpreter.invoke()
  hook = before_timing() if before_timing else None
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    interpreter.invoke()
    times.append(time.perf_counter() - start)
  return dict(
    median_s=statistics.median(times),
    min_s=min(times),
    max_s=max(times),
    times_s=times,
    before_timing=hook,
  )


def tflite_latency(model_path, *, num_threads: int, runs: int = 5, warmup: int = 1) -> dict:
  """Seconds per `invoke` of the model at `model_path` with `num_threads` threads.

  Returns:
    {"threads", "runs", "median_s", "min_s", "max_s"}; warm-up runs are not
    counted.
  """
  interpreter = verify.make_interpreter(model_path, num_threads)
  timing = time_invokes(interpreter, runs, warmup)
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
  """Converts a preset with synthetic weights (as `mobileiqa_jax.benchmark`
  times JAX) to `out_path`, unverified, for timing; returns its GFLOP.

  Latency does not depend on the weights' values, so no checkpoint is needed.
  """
  # Heavy and optional: only a conversion needs them.
  import jax  # pylint: disable=g-import-not-at-top

  from mobileiqa_jax import (
    benchmark,  # pylint: disable=g-import-not-at-top
    models,  # pylint: disable=g-import-not-at-top
  )
  from mobileiqa_jax.export import tflite  # pylint: disable=g-import-not-at-top

  module = models.create(model_name, kernels=tflite.graph_kernels(quantization))
  variables = models.random_variables(module, height, width)
  fn = tflite.scoring_function(module, "float32")
  images = jax.ShapeDtypeStruct((1, height, width, 3), np.float32)
  flops = benchmark.count_flops(jax.make_jaxpr(fn)(variables, images))
  pathlib.Path(out_path).write_bytes(
    tflite.convert(fn, variables, height, width, "float32", quantization)
  )
  return flops / 1e9


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
    prog="python -m mobileiqa_jax.export.benchmark",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument("--tflite", required=True, help="the exported model")
  parser.add_argument("--runs", type=int, default=5, help="timed runs per thread count")
  parser.add_argument("--warmup", type=int, default=1, help="untimed runs first")
  parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
  args = parser.parse_args(argv)
  path = pathlib.Path(args.tflite)
  if not path.is_file():
    print(f"error: {path} not found", file=sys.stderr)
    return 1
  print(f"{path} ({path.stat().st_size / 2**20:.1f} MiB)")
  for threads in (int(t) for t in args.threads.split(",")):
    result = tflite_latency(path, num_threads=threads, runs=args.runs, warmup=args.warmup)
    print(
      f"  {threads} thread(s): median {result['median_s'] * 1e3:.1f} ms "
      f"(min {result['min_s'] * 1e3:.1f}, max {result['max_s'] * 1e3:.1f}, {args.runs} runs)"
    )
  return 0


if __name__ == "__main__":
  sys.exit(main())
