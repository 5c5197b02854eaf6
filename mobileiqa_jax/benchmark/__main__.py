"""Speed and memory of the networks: `python -m mobileiqa_jax.benchmark`.

  python -m mobileiqa_jax.benchmark                    # student/teacher, 512x512 and 1231x1907
  python -m mobileiqa_jax.benchmark --json bench.json --repeats 5
  python -m mobileiqa_jax.benchmark --smoke            # tiny models, seconds (CI)
  python -m mobileiqa_jax.benchmark --only student:1231x1907
  python -m mobileiqa_jax.benchmark --only litert_int8:student:1231x1907 --only train:distill_step
  python -m mobileiqa_jax.benchmark --only folder:student:1231x1907x2 \
      --only folder_litert:student:1231x1907
  python -m mobileiqa_jax.benchmark --only pipeline:1231x1907 --only generator:512x512
  python -m mobileiqa_jax.benchmark --tflite student.tflite --threads 1,2   # a file you exported

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

The package: `probes` (memory, FLOPs, timing loops; nothing of the project),
`inference`, `litert`, `training` and `pipeline` (the rows), and this CLI.
Backends are functions in `inference.INFERENCE_BACKENDS` (name ->
measure(case, repeats, warmup) -> row dict): `jax` (jitted, float32) and
`litert`, `litert_fp16`, `litert_int8` (the TFLite export in float32, float16 weights, dynamic int8,
run by LiteRT with XNNPACK on every core); `folder` and `folder_litert`
score a folder of generated 12 MP JPEGs with `Scorer.score_files` and report
that rate against the network's alone on the same photos, decoded in advance.
Training rows come from `training.TRAINING_STEPS`; input rows time the
training loader from 4K JPEGs (`pipeline:HxW`) and from a set stored at the
training size (`pipeline_stored:HxW`), per second and per core, and the
synthetic generator (`generator:HxW`).
"""

import argparse
import dataclasses
import json
import os
import pathlib
import subprocess
import sys

from mobileiqa_jax import host_memory, models, sizes
from mobileiqa_jax.benchmark import inference, probes

# Rows of the input side: the training loader (from 4K JPEGs, and from a set
# stored at the training size) and the synthetic generator.
INPUT_ROWS = ("pipeline", "pipeline_stored", "generator")
DEFAULT_INPUT = ("pipeline:1231x1907", "pipeline_stored:1231x1907", "generator:512x512")
SMOKE_INPUT = ("pipeline:48x80", "pipeline_stored:48x80", "generator:64x64")


def _child(label: str, repeats: int, warmup: int, smoke: bool = False) -> dict:
  """One row, measured in this process. Each kind's module is imported by its
  rows alone, so that a row's memory holds only what it uses."""
  kind, _, spec = label.partition(":")
  if kind == "gemm":
    return probes.measure_gemm(repeats, int(spec))
  if kind == "train":
    from mobileiqa_jax.benchmark import training  # pylint: disable=g-import-not-at-top

    return dict(training.TRAINING_STEPS[spec](repeats, warmup, smoke), kind="train", name=spec)
  if kind in INPUT_ROWS:
    from mobileiqa_jax.benchmark import pipeline  # pylint: disable=g-import-not-at-top

    measure = {
      "pipeline": pipeline.measure_pipeline,
      "pipeline_stored": pipeline.measure_stored_pipeline,
      "generator": pipeline.measure_generator,
    }
    return dict(measure[kind](*sizes.parse_size(spec), smoke=smoke), kind=kind)
  case = inference.Case.parse(label)
  row = inference.INFERENCE_BACKENDS[case.backend](case, repeats, warmup)
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
  gemm_size: int = probes.GEMM_SIZE,
  training=None,
  smoke: bool = False,
  inputs=(),
) -> dict:
  """The whole benchmark: a GEMM reference, then one row per case, step and input.

  Args:
    cases: `inference.Case`s to measure, in order.
    training: names of `training.TRAINING_STEPS` to measure (default: all).
    inputs: `pipeline:HxW`, `pipeline_stored:HxW` and `generator:HxW` rows.
    smoke: training steps on tiny models (with `in_process`).
    repeats: timed calls per case (the median is reported).
    warmup: untimed calls after compilation.
    in_process: measure here instead of in child processes (faster to start;
      peak memory is then reset between cases but not isolated from them).
    gemm_size: side of the reference GEMM.

  Returns:
    {"gemm": row, "inference": [rows], "training": [rows], "input": [rows],
    "environment": {...}}.
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
  if training is None:
    from mobileiqa_jax.benchmark.training import TRAINING_STEPS  # pylint: disable=g-import-not-at-top

    training = list(TRAINING_STEPS)
  return {
    "gemm": gemm,
    "inference": rows,
    "training": [measure(f"train:{name}") for name in training],
    "input": [measure(label) for label in inputs],
    "environment": _environment(),
  }


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


def _batch_size(row) -> str:
  return f"{row['batch']}x{row['height']}x{row['width']}"


def _network_line(row) -> str:
  return (
    f"{row['backend']:<12}{row['model']:<14}{_batch_size(row):>14}{row['compile_s']:>11.1f}"
    f"{row['latency_s']:>11.3f}{row['images_per_s']:>8.2f}{row['gflop']:>9.1f}"
    f"{row['gflops_per_s']:>9.1f}{row.get('gemm_fraction', float('nan')):>9.2f}"
    f"{row['peak_rss_bytes'] / 1e9:>9.2f}{row['base_rss_bytes'] / 1e9:>9.2f}"
  )


def _folder_line(row) -> str:
  return (
    f"{row['backend']:<14}{row['model']:<14}{_batch_size(row):>14}{row['photos']:>26}"
    f"{row['images_per_s']:>8.2f}{row['network_images_per_s']:>15.2f}"
    f"{row['folder_fraction']:>12.2f}{row['peak_rss_bytes'] / 1e9:>9.2f}"
  )


def _training_line(row) -> str:
  return (
    f"{row['name']:<26}{_batch_size(row):>14}{row['compile_s']:>11.1f}{row['step_s']:>11.3f}"
    f"{row['images_per_s']:>8.2f}{row['peak_rss_bytes'] / 1e9:>9.2f}"
    f"{row['base_rss_bytes'] / 1e9:>9.2f}"
  )


def _input_line(row) -> str:
  size = f"{row['height']}x{row['width']}"
  per_core = row.get("images_per_s_per_core")
  per_core = f"{per_core:>11.2f}" if per_core else f"{'-':>11}"
  return f"{row['kind']:<26}{size:>14}{row['images_per_s']:>11.2f}{per_core}  {row['what']}"


def _section(rows, header: str, line) -> list[str]:
  """A part of the table: its header, then a line per row (or the row's error)."""
  if not rows:
    return []
  return [header] + [f"{r['label']}: {r['error']}" if "error" in r else line(r) for r in rows]


def format_table(report: dict) -> str:
  """The report as a fixed-width text table."""
  gemm = report["gemm"]
  folders = [row for row in report["inference"] if "folder_fraction" in row]
  networks = [row for row in report["inference"] if row not in folders]
  rate = gemm.get("gflops_per_s", float("nan"))
  lines = [f"GEMM {gemm.get('size')}^3 float32: {rate:.1f} GFLOP/s"]
  lines += _section(
    networks,
    f"{'backend':<12}{'model':<14}{'input':>14}{'compile s':>11}{'latency s':>11}"
    f"{'img/s':>8}{'GFLOP':>9}{'GFLOP/s':>9}{'of GEMM':>9}{'peak GB':>9}{'base GB':>9}",
    _network_line,
  )
  lines += _section(
    folders,
    f"{'folder':<14}{'model':<14}{'input':>14}{'photos':>26}{'img/s':>8}"
    f"{'network img/s':>15}{'of network':>12}{'peak GB':>9}",
    _folder_line,
  )
  lines += _section(
    report["training"],
    f"{'training':<26}{'input':>14}{'compile s':>11}{'step s':>11}{'img/s':>8}"
    f"{'peak GB':>9}{'base GB':>9}",
    _training_line,
  )
  lines += _section(
    report.get("input", []),
    f"{'input':<26}{'size':>14}{'img/s':>11}{'img/s/core':>11}  what",
    _input_line,
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
    help="[BACKEND:]MODEL:HxW[xB], train:STEP, pipeline[_stored]:HxW or generator:HxW to run "
    "(repeatable); default: every full case, training step and input row",
  )
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--warmup", type=int, default=1)
  parser.add_argument(
    "--in-process", action="store_true", help="no child processes (peak memory less isolated)"
  )
  parser.add_argument("--json", help="also write the report to this path")
  parser.add_argument(
    "--tflite", help="instead: time this exported .tflite with LiteRT at --threads"
  )
  parser.add_argument("--threads", default="1,2", help="with --tflite: comma-separated counts")
  parser.add_argument("--child", help=argparse.SUPPRESS)
  return parser.parse_args(argv)


_ONLY_FORMS = (
  "[BACKEND:]MODEL:HxW[xB] (student:1231x1907, litert_int8:student:512x512x2), "
  "train:STEP or ROW:HxW (pipeline:1231x1907)"
)


def _bad_only(spec: str, why: str) -> SystemExit:
  """The one-line exit for a --only that names no row."""
  return SystemExit(f"error: --only {spec!r}: {why}")


def _inference_case(spec: str, parts: list[str]) -> inference.Case:
  """--only [BACKEND:]MODEL:HxW[xB] as a Case, or a one-line exit naming what is wrong."""
  if len(parts) not in (2, 3):
    raise _bad_only(spec, f"not a row; the forms are {_ONLY_FORMS}")
  backend = parts.pop(0) if len(parts) == 3 else "jax"
  model, size = parts
  if backend not in inference.INFERENCE_BACKENDS:
    raise _bad_only(spec, f"unknown backend {backend!r} ({sorted(inference.INFERENCE_BACKENDS)})")
  if model not in models.PRESETS:
    raise _bad_only(spec, f"unknown model {model!r} ({sorted(models.PRESETS)})")
  dims = size.lower().split("x")
  batch = dims.pop() if len(dims) == 3 else "1"
  if not batch.isdigit() or int(batch) < 1:
    raise _bad_only(spec, f"batch {batch!r} is not a positive integer")
  height, width = _size(spec, "x".join(dims))
  return inference.Case(model, height, width, int(batch), backend)


def _size(spec: str, text: str) -> tuple[int, int]:
  """`sizes.parse_size(text)`, its error the one-line exit for `spec`."""
  try:
    return sizes.parse_size(text)
  except sizes.SizeError as error:
    raise _bad_only(spec, str(error)) from None


def _cases(args):
  """(inference cases, training step names or None for all, input rows) from --only.

  A spec that names no row exits with one line saying why, before any row runs.
  """
  if not args.only:
    return inference.FULL_CASES, None, list(DEFAULT_INPUT)
  from mobileiqa_jax.benchmark.training import TRAINING_STEPS  # pylint: disable=g-import-not-at-top

  cases, training, inputs = [], [], []
  for spec in args.only:
    parts = spec.split(":")
    if parts[0] == "train":
      if len(parts) != 2 or parts[1] not in TRAINING_STEPS:
        raise _bad_only(spec, f"unknown training step; choose from {sorted(TRAINING_STEPS)}")
      training.append(parts[1])
    elif parts[0] in INPUT_ROWS:
      if len(parts) != 2:
        raise _bad_only(spec, f"an input row takes one size: {parts[0]}:HxW")
      _size(spec, parts[1])  # a bad size fails here, not in a child
      inputs.append(spec)
    else:
      cases.append(_inference_case(spec, parts))
  return tuple(cases), training, inputs


def _time_tflite(args) -> int:
  """--tflite: an exported file's LiteRT latency at each thread count."""
  from mobileiqa_jax.benchmark import litert  # pylint: disable=g-import-not-at-top

  path = pathlib.Path(args.tflite)
  if not path.is_file():
    print(f"error: {path} not found", file=sys.stderr)
    return 1
  print(f"{path} ({path.stat().st_size / 2**20:.1f} MiB)")
  for threads in (int(t) for t in args.threads.split(",")):
    result = litert.tflite_latency(path, num_threads=threads, runs=args.repeats, warmup=args.warmup)
    print(
      f"  {threads} thread(s): median {result['median_s'] * 1e3:.1f} ms "
      f"(min {result['min_s'] * 1e3:.1f}, max {result['max_s'] * 1e3:.1f}, {args.repeats} runs)"
    )
  return 0


def main(argv=None) -> int:
  args = _parse(argv)
  if args.child:
    print(json.dumps(_child(args.child, args.repeats, args.warmup)))
    return 0
  if args.tflite:
    return _time_tflite(args)
  cases, training, inputs = _cases(args)
  if args.smoke:
    # Training steps compile for minutes even when tiny: only on request.
    report = run(
      # --only names every row: the inference rows too (none if it names none).
      cases if args.only else inference.SMOKE_CASES,
      repeats=1,
      warmup=1,
      in_process=True,
      gemm_size=256,
      training=training or [],
      smoke=True,
      inputs=inputs if args.only else [],
    )
  else:
    report = run(
      cases,
      args.repeats,
      args.warmup,
      in_process=args.in_process,
      training=training,
      inputs=inputs,
    )
  print(format_table(report))
  if args.json:
    with open(args.json, "w") as f:
      json.dump(report, f, indent=2)
  rows = report["inference"] + report["training"] + report["input"]
  return 1 if any("error" in row for row in rows) or "error" in report["gemm"] else 0


def cli():
  """`python -m mobileiqa_jax.benchmark` and `mobileiqa-benchmark`: restarted
  with huge pages first (host_memory), as `mobileiqa_jax.main` is, so that
  the rows (child processes, which inherit the environment) time the
  programs as training runs them."""
  host_memory.restart_with_huge_pages()
  sys.exit(main())


if __name__ == "__main__":
  cli()
