"""The benchmark's probes: memory, FLOPs and timing loops.

They import nothing of the project, so that measuring never changes what is
measured.
"""

from collections.abc import Callable
import ctypes
import resource
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

GEMM_SIZE = 2048


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
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def release_free_memory() -> None:
  """Returns the C heap's free pages to the system (glibc), where possible.

  Compilation frees gigabytes that glibc keeps mapped; without this they
  stay resident and count in the base and peak of the calls that follow.
  """
  try:
    ctypes.CDLL("libc.so.6").malloc_trim(0)
  except (OSError, AttributeError):
    pass


def rss_bytes() -> int:
  """Current resident memory of this process."""
  try:
    return _status_bytes("VmRSS")
  except (OSError, KeyError):
    return 0


def count_flops(jaxpr) -> int:
  """2 * multiply-adds of the dot_generals and convolutions in a (closed) jaxpr.

  Recurses into sub-jaxprs (jit, custom_jvp, remat, cond branches: the
  largest) and multiplies scan bodies by their length. A while loop's trip
  count is unknown and counts once.
  """
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


def median_seconds(call: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
  """(median, all) seconds of `repeats` calls."""
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)
  return statistics.median(times), times


def measure_gemm(repeats: int, size: int = GEMM_SIZE) -> dict:
  """GFLOP/s of a jitted float32 (size x size) @ (size x size) matmul."""
  a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
  matmul = jax.jit(jnp.matmul).lower(a, a).compile()
  jax.block_until_ready(matmul(a, a))
  seconds, _ = median_seconds(lambda: jax.block_until_ready(matmul(a, a)), max(repeats, 3))
  return {
    "kind": "gemm",
    "size": size,
    "latency_s": seconds,
    "gflops_per_s": 2 * size**3 / seconds / 1e9,
  }


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
