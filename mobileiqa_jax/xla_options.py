"""Compiler options for this project's jitted programs.

XLA:CPU (jax 0.10) hands both dots and reductions to YNNPACK by default. Its
reduction kernels hold scratch memory of their own, outside XLA's buffers and
between calls, and on this project's networks they are slower than XLA's own
loops. With dots alone handed over, on a 2-core AVX-512 machine
(`python -m mobileiqa_jax.benchmark`, the two settings alternated):

- student inference, 512x512: 0.39 -> 0.27 s, peak 0.84 -> 0.74 GB;
- student inference, 1231x1907: 1.18 -> 1.03 s, peak 1.12 -> 1.02 GB;
- teacher inference, 1231x1907: 3.8-3.9 -> 3.5 s, peak 1.45 -> 1.28 GB;
- distillation step, batch 2, 512x512: 3.1 -> 3.4 s, peak 4.05 -> 3.67 GB;
- teacher training step, batch 2, 512x512: 7.6 -> 6.4 s, peak 7.45 -> 6.19 GB.

Batches of small images are the other way round: their batch-norm statistics
and attention softmaxes are many short reductions that YNNPACK runs far
faster, and its scratch memory is small beside them. There
`reductions="ynnpack"` keeps XLA's default (the quick-start's batch-16,
128x128 gradient programs: student 0.31 -> 0.19 s, teacher 1.30 -> 0.52 s;
`config.cpu_reductions`, which the runlocal configs set).

Other backends get no options. An `xla_cpu_experimental_ynn_fusion_type` in
`XLA_FLAGS` is the user's choice and wins.
"""

import os

import jax

_CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}
# Who runs XLA:CPU's reductions: "xla" (its own loops; the project's default)
# or "ynnpack" (XLA's default).
REDUCTIONS = ("xla", "ynnpack")


def compiler_options(reductions: str = "xla") -> dict[str, str] | None:
  """`compiler_options` for `jax.jit` on the default backend (None: XLA's defaults).

  Raises:
    ValueError: for a `reductions` not in REDUCTIONS.
  """
  if reductions not in REDUCTIONS:
    raise ValueError(f"cpu_reductions must be one of {REDUCTIONS}, got {reductions!r}")
  if jax.default_backend() != "cpu" or reductions == "ynnpack":
    return None
  chosen = os.environ.get("XLA_FLAGS", "")
  return {name: value for name, value in _CPU_OPTIONS.items() if name not in chosen} or None


def jit(fun, *, reductions: str = "xla", **kwargs):
  """`jax.jit(fun, **kwargs)` compiled with `compiler_options(reductions)`."""
  return jax.jit(fun, compiler_options=compiler_options(reductions), **kwargs)
