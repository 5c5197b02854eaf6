"""Host memory that XLA:CPU programs do not fault in afresh on every call.

XLA:CPU allocates a program's temporaries with malloc on its worker threads:
546 MB for the tiny teacher's gradient at batch 16, 128x128. glibc serves an
allocation that large from a fresh mmap and unmaps it when it is freed, so
every call faults all of it in again, one 4 KB page at a time, each page
zero-filled by the kernel: 133,000 page faults and 0.33 s of system time per
call of that program, whose call took 0.50 s.

glibc 2.35 and later can ask the kernel for transparent huge pages on the
memory malloc maps (the tunable `glibc.malloc.hugetlb=1`): the same
allocation then faults in 2 MB at a time (538 faults, 0.06 s of system time,
0.34 s a call). A kernel whose transparent huge pages are `madvise`-only, the
common default, gives them to no allocation that does not ask.

glibc reads its tunables once, when the process starts, so
`restart_with_huge_pages` re-executes the process (same pid, same command
line) with the tunable set in its environment. `mobileiqa_jax.main` calls it
before its imports and `predict` before it imports JAX; the benchmark's
`cli` calls it after its module's imports, which load JAX (1.7-1.9 s, paid
twice once per benchmark command). A `GLIBC_TUNABLES` already in the
environment, even an empty one, is the user's choice and is kept.
"""

import os
import pathlib
import sys

TUNABLES = "glibc.malloc.hugetlb=1"
_THP_MODE = pathlib.Path("/sys/kernel/mm/transparent_hugepage/enabled")


def _glibc_version() -> tuple[int, ...] | None:
  try:
    name, version = os.confstr("CS_GNU_LIBC_VERSION").split()
  except (AttributeError, ValueError, OSError):
    return None  # not glibc (musl, macOS, Windows)
  if name != "glibc":
    return None
  return tuple(int(part) for part in version.split(".")[:2] if part.isdigit())


def huge_pages_on_request() -> bool:
  """Whether the kernel gives transparent huge pages to memory that asks
  (mode `madvise`; with `always` every allocation already has them)."""
  try:
    return "[madvise]" in _THP_MODE.read_text()
  except OSError:
    return False


def supported() -> bool:
  """Whether the tunable gives huge pages here: glibc 2.35 or later, and a
  kernel that gives them on request."""
  version = _glibc_version()
  return version is not None and version >= (2, 35) and huge_pages_on_request()


def wanted() -> bool:
  """Whether a restart would give this process huge pages it lacks: they are
  `supported` and the environment sets no `GLIBC_TUNABLES` of its own."""
  return "GLIBC_TUNABLES" not in os.environ and supported()


def restart_with_huge_pages() -> None:
  """Re-executes this process with `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`
  where that gives it huge pages (`wanted`); returns only where it does not.

  Call it first in a command-line entry point: whatever ran before it runs
  again after the restart.
  """
  if not wanted():
    return
  os.environ["GLIBC_TUNABLES"] = TUNABLES
  sys.stdout.flush()
  sys.stderr.flush()
  os.execv(sys.executable, sys.orig_argv)
