"""Speed and memory of the networks: `python -m mobileiqa_jax.benchmark`.

  python -m mobileiqa_jax.benchmark                    # student/teacher, 512x512 and 1231x1907
  python -m mobileiqa_jax.benchmark --json bench.json --repeats 5
  python -m mobileiqa_jax.benchmark --smoke            # tiny models, seconds (CI)
  python -m mobileiqa_jax.benchmark --only student:1231x1907
  python -m mobileiqa_jax.benchmark --only litert_int8:student:1231x1907 --only train:distill_step
  python -m mobileiqa_jax.benchmark --only folder:student:1231x1907x2 \
      --only folder_litert:student:1231x1907

Each configuration runs in a fresh child process (`--child`), so that its peak
memory is its own: XLA's CPU allocations are invisible to JAX's memory stats,
so memory is the process's resident set, read from /proc. Reported per row:

- compile: seconds to lower and compile the jitted call (not in the latency);
- latency: median over `--repeats` calls after `--warmup` calls;
- peak RSS: the process's peak resident memory during the timed calls (its
  high-water mark is reset after warm-up), beside its resident memory after
  compilation and before the first call (runtime, parameters, input,
  executable), so the call's own share shows;
- GFLOP: analytic, 2 per multiply-add of every matmul and convolution in the
  traced program, loops counted by their trip counts; elementwise work
  (GELU, softmax, norms) is not counted. XLA's `cost_analysis()` is not used:
  it counts a loop body once, whatever the trip count;
- GFLOP/s and its ratio to a float32 GEMM timed in its own child in the same
  run, which says how far the network is from what this machine's matmul
  reaches under the same load.

Backends are functions in `INFERENCE_BACKENDS` (name -> measure(case, repeats,
warmup) -> row dict): `jax` (jitted, float32) and `litert`, `litert_fp16`,
`litert_int8` (the TFLite export in float32, float16 weights, dynamic int8,
run by LiteRT with XNNPACK on every core); `folder` and `folder_litert`
score a folder of generated 12 MP JPEGs with `Scorer.score_files` and report
that rate against the network's alone on the same photos, decoded in advance.
Training throughput rows come from `TRAINING_STEPS`.
"""

import argparse
from collections.abc import Callable
import dataclasses
import functools
import json
import os
import statistics
import subprocess
import sys
import time

GEMM_SIZE = 2048


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


# --- memory ---------------------------------------------------------------


def _status_bytes(field: str) -> int:
  """A `Vm*` line of /proc/self/status in bytes (Linux)."""
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith(field + ":"):
        return int(line.split()[1]) * 1024
  raise KeyError(field)


def reset_peak_rss() -> bool:
  """Resets the process's resident high-water mark; False where Linux does not allow it."""
  try:
    with open("/proc/self/clear_refs", "w") as f:
      f.write("5")
    return True
  except OSError:
    return False


def peak_rss_bytes() -> int:
  """Peak resident memory of this process since start or the last reset."""
  try:
    return _status_bytes("VmHWM")
  except (OSError, KeyError):
    import resource  # pylint: disable=g-import-not-at-top

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def release_free_memory() -> None:
  """Returns the C heap's free pages to the system (glibc), where possible.

  Compilation frees gigabytes that glibc keeps mapped; without this they
  stay resident and count in the base and peak of the calls that follow.
  """
  try:
    import ctypes  # pylint: disable=g-import-not-at-top

    ctypes.CDLL("libc.so.6").malloc_trim(0)
  except (OSError, AttributeError):
    pass


def rss_bytes() -> int:
  """Current resident memory of this process."""
  try:
    return _status_bytes("VmRSS")
  except (OSError, KeyError):
    return 0


# --- FLOPs ----------------------------------------------------------------


def count_flops(jaxpr) -> int:
  """2 * multiply-adds of the dot_generals and convolutions in a (closed) jaxpr.

  Recurses into sub-jaxprs (jit, custom_jvp, remat, cond branches: the
  largest) and multiplies scan bodies by their length. A while loop's trip
  count is unknown and counts once.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top

  jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
  total = 0
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == "dot_general":
      (contract, _), _ = eqn.params["dimension_numbers"]
      lhs = eqn.invars[0].aval.shape
      out = eqn.outvars[0].aval.shape
      total += 2 * int(np.prod(out)) * int(np.prod([lhs[d] for d in contract]))
    elif name == "conv_general_dilated":
      rhs = eqn.invars[1].aval.shape
      spec = eqn.params["dimension_numbers"].rhs_spec  # (out, in, spatial...)
      per_output = int(np.prod([rhs[d] for d in spec[1:]]))
      total += 2 * int(np.prod(eqn.outvars[0].aval.shape)) * per_output
    elif name == "scan":
      total += eqn.params["length"] * count_flops(eqn.params["jaxpr"])
    elif name == "cond":
      total += max(count_flops(branch) for branch in eqn.params["branches"])
    else:
      for value in eqn.params.values():
        if hasattr(value, "eqns") or hasattr(getattr(value, "jaxpr", None), "eqns"):
          total += count_flops(value)
  return total


# --- measurements (run inside a child process) ---------------------------


def _median_seconds(call: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)
  return statistics.median(times), times


def measure_gemm(repeats: int, size: int = GEMM_SIZE) -> dict:
  """GFLOP/s of a jitted float32 (size x size) @ (size x size) matmul."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
  matmul = jax.jit(jnp.matmul).lower(a, a).compile()
  jax.block_until_ready(matmul(a, a))
  seconds, _ = _median_seconds(lambda: jax.block_until_ready(matmul(a, a)), max(repeats, 3))
  return {
    "kind": "gemm",
    "size": size,
    "latency_s": seconds,
    "gflops_per_s": 2 * size**3 / seconds / 1e9,
  }


def measure_jax(case: Case, repeats: int, warmup: int) -> dict:
  """Jitted float32 scoring (eval mode) of one case.

  The call returns the scores only, as deployment does: returning the taps
  too would keep every backbone map alive as an output (0.57 GB for the
  teacher at 1231x1907).
  """
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from mobileiqa_jax import (
    models,  # pylint: disable=g-import-not-at-top
    xla_options,  # pylint: disable=g-import-not-at-top
  )

  model = models.create(case.model)
  variables = jax.device_put(models.random_variables(model, case.height, case.width))
  images = jax.device_put(
    np.random.default_rng(0)
    .standard_normal((case.batch, case.height, case.width, 3))
    .astype(np.float32)
  )
  score = lambda v, x: model.apply(v, x)[0]
  flops = count_flops(jax.make_jaxpr(score)(variables, images))

  start = time.perf_counter()
  call = xla_options.jit(score).lower(variables, images).compile()
  compile_s = time.perf_counter() - start
  compile_peak = peak_rss_bytes()
  release_free_memory()
  base = rss_bytes()
  for _ in range(warmup):
    jax.block_until_ready(call(variables, images))
  exact_peak = reset_peak_rss()
  seconds, times = _median_seconds(lambda: jax.block_until_ready(call(variables, images)), repeats)
  return {
    "compile_s": compile_s,
    "latency_s": seconds,
    "latencies_s": times,
    "images_per_s": case.batch / seconds,
    "gflop": flops / 1e9,
    "gflops_per_s": flops / seconds / 1e9,
    "base_rss_bytes": base,
    "peak_rss_bytes": peak_rss_bytes(),
    # Without the reset the high-water mark still holds compilation's peak.
    "peak_rss_includes_compile": not exact_peak,
    "compile_peak_rss_bytes": compile_peak,
  }


def _convert_elsewhere(case: Case, quantization: str, path: str) -> float:
  """Exports `case` (random weights) to `path` in a spawned process of its own,
  so that this process's memory stays the interpreter's; returns its GFLOP."""
  import concurrent.futures  # pylint: disable=g-import-not-at-top
  import multiprocessing  # pylint: disable=g-import-not-at-top

  from mobileiqa_jax.export import benchmark as export_benchmark  # pylint: disable=g-import-not-at-top

  if case.batch != 1:
    raise ValueError(f"the TFLite export is batch 1, got {case.label}")
  with concurrent.futures.ProcessPoolExecutor(
    1, mp_context=multiprocessing.get_context("spawn")
  ) as pool:
    return pool.submit(
      export_benchmark.convert_synthetic, case.model, case.height, case.width, quantization, path
    ).result()


def measure_litert(case: Case, repeats: int, warmup: int, quantization: str = "float32") -> dict:
  """The TFLite export of one case run by LiteRT (XNNPACK), one thread per core.

  The conversion (TensorFlow, JAX) runs in a spawned process of its own, so
  that this process's memory is the interpreter's: runtime, weights, arena.
  "compile" is conversion plus interpreter set-up.
  """
  import tempfile  # pylint: disable=g-import-not-at-top

  from mobileiqa_jax.export import benchmark as export_benchmark  # pylint: disable=g-import-not-at-top

  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "model.tflite")
    start = time.perf_counter()
    gflop = _convert_elsewhere(case, quantization, path)
    threads = os.cpu_count() or 1
    interpreter = export_benchmark.verify.make_interpreter(path, threads)
    compile_s = time.perf_counter() - start
    compile_peak = peak_rss_bytes()
    base = rss_bytes()
    timing = export_benchmark.time_invokes(
      interpreter, repeats, warmup, before_timing=reset_peak_rss
    )
  return {
    "compile_s": compile_s,
    "latency_s": timing["median_s"],
    "latencies_s": timing["times_s"],
    "images_per_s": 1 / timing["median_s"],
    "gflop": gflop,
    "gflops_per_s": gflop / timing["median_s"],
    "base_rss_bytes": base,
    "peak_rss_bytes": peak_rss_bytes(),
    "peak_rss_includes_compile": not timing["before_timing"],
    "compile_peak_rss_bytes": compile_peak,
    "threads": threads,
    "quantization": quantization,
  }


# The camera photos `measure_folder` scores: 12 MP, as phones take them.
FOLDER_PHOTO_SIZE = (3000, 4000)
FOLDER_PHOTOS = 12


def write_photos(folder: str, count: int, height: int, width: int, seed: int = 0) -> list[str]:
  """`count` JPEGs (quality 90) of smooth colour fields with grain, which
  decode like photographs (no constant runs for the entropy coder to skip)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top

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
  import tempfile  # pylint: disable=g-import-not-at-top

  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from mobileiqa_jax import models, scoring  # pylint: disable=g-import-not-at-top

  with tempfile.TemporaryDirectory() as tmp:
    paths = write_photos(tmp, FOLDER_PHOTOS, *FOLDER_PHOTO_SIZE)
    start = time.perf_counter()
    if backend == "jax":
      model = models.create(case.model)
      variables = models.random_variables(model, case.height, case.width)
      network = scoring.JaxBackend(model, variables, case.batch)
    else:
      model_path = os.path.join(tmp, "model.tflite")
      _convert_elsewhere(case, "float32", model_path)
      network = scoring.TFLiteBackend(model_path, num_threads=os.cpu_count())
    scorer = scoring.Scorer(network, (case.height, case.width), batch_size=case.batch)
    prepared = np.stack([scorer.prepare(path) for path in paths])
    for _ in range(max(warmup, 1)):  # compiles (JAX) and warms caches
      scorer.score_files(paths[: case.batch])
    compile_s = time.perf_counter() - start
    release_free_memory()
    base = rss_bytes()
    exact_peak = reset_peak_rss()

    def network_only():
      for i in range(0, len(prepared), case.batch):
        jax.block_until_ready(network(prepared[i : i + case.batch]))

    network_s, _ = _median_seconds(network_only, repeats)
    folder_s, times = _median_seconds(lambda: scorer.score_files(paths), repeats)
  return {
    "compile_s": compile_s,
    "latency_s": folder_s / len(paths),
    "latencies_s": times,
    "images_per_s": len(paths) / folder_s,
    "network_images_per_s": len(paths) / network_s,
    "folder_fraction": network_s / folder_s,
    "photos": f"{len(paths)} JPEGs {FOLDER_PHOTO_SIZE[0]}x{FOLDER_PHOTO_SIZE[1]}",
    "base_rss_bytes": base,
    "peak_rss_bytes": peak_rss_bytes(),
    "peak_rss_includes_compile": not exact_peak,
  }


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


def measure_training(kind: str, repeats: int, warmup: int, smoke: bool, **options) -> dict:
  """`train.throughput.measure`: one optimiser step (batch 2, 512x512 unless
  `options` give batch, height, width; `tiny` for the tiny presets)."""
  from mobileiqa_jax.train import throughput  # pylint: disable=g-import-not-at-top

  return throughput.measure(kind, repeats, warmup, smoke, **options)


# Training throughput: name -> measure(repeats, warmup, smoke) -> row fields
# with at least `images_per_s`. The full-size row is the paper's distillation
# input (UHD-IQA), at the batch a CPU holds; the tiny rows are the README's
# main job (configs/recipe.py:runlocal): its three runs' steps at its batch
# and image size.
_QUICK_START = dict(tiny=True, batch=16, height=128, width=128)
TRAINING_STEPS: dict[str, Callable[[int, int, bool], dict]] = {
  "teacher_step": functools.partial(measure_training, "teacher"),
  "distill_step": functools.partial(measure_training, "distill"),
  "distill_step_full_size": functools.partial(
    measure_training, "distill", batch=1, height=1231, width=1907
  ),
  "teacher_tiny_step": functools.partial(measure_training, "teacher", **_QUICK_START),
  "student_tiny_step": functools.partial(measure_training, "student", **_QUICK_START),
  "distill_tiny_step": functools.partial(measure_training, "distill", **_QUICK_START),
}


def _child(label: str, repeats: int, warmup: int, smoke: bool = False) -> dict:
  if label.startswith("gemm:"):
    return measure_gemm(repeats, int(label.split(":")[1]))
  if label.startswith("train:"):
    name = label.split(":", 1)[1]
    return dict(TRAINING_STEPS[name](repeats, warmup, smoke), kind="train", name=name)
  case = Case.parse(label)
  row = INFERENCE_BACKENDS[case.backend](case, repeats, warmup)
  return dict(row, kind="inference", **dataclasses.asdict(case))


# --- orchestration ---------------------------------------------------------


def run_child(label: str, repeats: int, warmup: int) -> dict:
  """Measures one label in a fresh Python process; its last stdout line is JSON."""
  command = [
    sys.executable,
    "-m",
    "mobileiqa_jax.benchmark",
    "--child",
    label,
    "--repeats",
    str(repeats),
    "--warmup",
    str(warmup),
  ]
  result = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
  lines = result.stdout.strip().splitlines()
  if result.returncode != 0 or not lines:
    tail = "\n".join(result.stderr.strip().splitlines()[-5:])
    return {"label": label, "error": f"exit {result.returncode}: {tail}"}
  return dict(json.loads(lines[-1]), label=label)


def run(
  cases,
  repeats: int,
  warmup: int,
  in_process: bool = False,
  gemm_size: int = GEMM_SIZE,
  training=None,
  smoke: bool = False,
) -> dict:
  """The whole benchmark: a GEMM reference, then one row per case and step.

  Args:
    cases: `Case`s to measure (inference), in order.
    training: names of `TRAINING_STEPS` to measure (default: all).
    smoke: training steps on tiny models (with `in_process`).
    repeats: timed calls per case (the median is reported).
    warmup: untimed calls after compilation.
    in_process: measure here instead of in child processes (faster to start;
      peak memory is then reset between cases but not isolated from them).
    gemm_size: side of the reference GEMM.

  Returns:
    {"gemm": row, "inference": [rows], "training": [rows], "environment": {...}}.
  """
  measure = (
    (lambda label: dict(_child(label, repeats, warmup, smoke), label=label))
    if in_process
    else (lambda label: run_child(label, repeats, warmup))
  )
  gemm = measure(f"gemm:{gemm_size}")
  rows = [measure(case.label) for case in cases]
  reference = gemm.get("gflops_per_s")
  for row in rows:
    if reference and "gflops_per_s" in row:
      row["gemm_fraction"] = row["gflops_per_s"] / reference
  names = TRAINING_STEPS if training is None else training
  training = [measure(f"train:{name}") for name in names]
  return {"gemm": gemm, "inference": rows, "training": training, "environment": _environment()}


def _environment() -> dict:
  import platform  # pylint: disable=g-import-not-at-top

  import jax  # pylint: disable=g-import-not-at-top

  return {
    "jax": jax.__version__,
    "cpus": os.cpu_count(),
    "machine": platform.machine(),
    "xla_flags": os.environ.get("XLA_FLAGS", ""),
    "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
  }


def format_table(report: dict) -> str:
  """The report as a fixed-width text table."""
  gemm = report["gemm"]
  lines = [
    f"GEMM {gemm.get('size')}^3 float32: {gemm.get('gflops_per_s', float('nan')):.1f} GFLOP/s",
    f"{'backend':<12}{'model':<14}{'input':>14}{'compile s':>11}{'latency s':>11}"
    f"{'img/s':>8}{'GFLOP':>9}{'GFLOP/s':>9}{'of GEMM':>9}{'peak GB':>9}{'base GB':>9}",
  ]
  folders = [row for row in report["inference"] if "folder_fraction" in row]
  for row in report["inference"]:
    if "error" in row:
      lines.append(f"{row['label']}: {row['error']}")
      continue
    if row in folders:
      continue
    size = f"{row['batch']}x{row['height']}x{row['width']}"
    lines.append(
      f"{row['backend']:<12}{row['model']:<14}{size:>14}{row['compile_s']:>11.1f}"
      f"{row['latency_s']:>11.3f}{row['images_per_s']:>8.2f}{row['gflop']:>9.1f}"
      f"{row['gflops_per_s']:>9.1f}{row.get('gemm_fraction', float('nan')):>9.2f}"
      f"{row['peak_rss_bytes'] / 1e9:>9.2f}{row['base_rss_bytes'] / 1e9:>9.2f}"
    )
  if folders:
    lines.append(
      f"{'folder':<14}{'model':<14}{'input':>14}{'photos':>26}{'img/s':>8}"
      f"{'network img/s':>15}{'of network':>12}{'peak GB':>9}"
    )
  for row in folders:
    size = f"{row['batch']}x{row['height']}x{row['width']}"
    lines.append(
      f"{row['backend']:<14}{row['model']:<14}{size:>14}{row['photos']:>26}"
      f"{row['images_per_s']:>8.2f}{row['network_images_per_s']:>15.2f}"
      f"{row['folder_fraction']:>12.2f}{row['peak_rss_bytes'] / 1e9:>9.2f}"
    )
  if report["training"]:
    lines.append(
      f"{'training':<26}{'input':>14}{'compile s':>11}{'step s':>11}{'img/s':>8}"
      f"{'peak GB':>9}{'base GB':>9}"
    )
  for row in report["training"]:
    if "error" in row:
      lines.append(f"{row['label']}: {row['error']}")
      continue
    size = f"{row['batch']}x{row['height']}x{row['width']}"
    lines.append(
      f"{row['name']:<26}{size:>14}{row['compile_s']:>11.1f}{row['step_s']:>11.3f}"
      f"{row['images_per_s']:>8.2f}{row['peak_rss_bytes'] / 1e9:>9.2f}"
      f"{row['base_rss_bytes'] / 1e9:>9.2f}"
    )
  return "\n".join(lines)


def _parse(argv):
  parser = argparse.ArgumentParser(
    prog="python -m mobileiqa_jax.benchmark",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument(
    "--smoke",
    action="store_true",
    help="tiny models at 64x96, one timed call each, in this process (CI)",
  )
  parser.add_argument(
    "--only",
    action="append",
    default=[],
    help="[BACKEND:]MODEL:HxW[xB] or train:STEP to run (repeatable); "
    "default: every full case and training step",
  )
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--warmup", type=int, default=1)
  parser.add_argument(
    "--in-process", action="store_true", help="no child processes (peak memory less isolated)"
  )
  parser.add_argument("--json", help="also write the report to this path")
  parser.add_argument("--child", help=argparse.SUPPRESS)
  return parser.parse_args(argv)


def _cases(args) -> tuple[tuple[Case, ...], list[str] | None]:
  """(inference cases, training step names or None for all) from --only."""
  if not args.only:
    return FULL_CASES, None
  cases, training = [], []
  for spec in args.only:
    parts = spec.split(":")
    if parts[0] == "train":
      if parts[1] not in TRAINING_STEPS:
        raise SystemExit(
          f"unknown training step {parts[1]!r}; choose from {sorted(TRAINING_STEPS)}"
        )
      training.append(parts[1])
      continue
    backend = parts.pop(0) if len(parts) == 3 else "jax"
    if backend not in INFERENCE_BACKENDS:
      raise SystemExit(f"unknown backend {backend!r}; choose from {sorted(INFERENCE_BACKENDS)}")
    model, size = parts
    dims = list(map(int, size.split("x"))) + [1]
    cases.append(Case(model, dims[0], dims[1], dims[2], backend))
  return tuple(cases), training


def main(argv=None) -> int:
  args = _parse(argv)
  if args.child:
    print(json.dumps(_child(args.child, args.repeats, args.warmup)))
    return 0
  if args.smoke:
    # Training steps compile for minutes even when tiny: only on request.
    _, training = _cases(args)
    report = run(
      SMOKE_CASES,
      repeats=1,
      warmup=1,
      in_process=True,
      gemm_size=256,
      training=training or [],
      smoke=True,
    )
  else:
    cases, training = _cases(args)
    report = run(cases, args.repeats, args.warmup, in_process=args.in_process, training=training)
  print(format_table(report))
  if args.json:
    with open(args.json, "w") as f:
      json.dump(report, f, indent=2)
  failed = [row for row in report["inference"] + report["training"] if "error" in row]
  return 1 if failed or "error" in report["gemm"] else 0


if __name__ == "__main__":
  sys.exit(main())
