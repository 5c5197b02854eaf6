"""The restart that gives a process huge pages (mobileiqa_jax.host_memory)."""

import os
import subprocess
import sys

from mobileiqa_jax import host_memory
from tests.conftest import REPO

# Prints the process id before and after the restart call, and the tunables
# it then runs with; a restart runs the whole command again.
PROBE = (
  "import os; print('pid', os.getpid(), flush=True); "
  "from mobileiqa_jax import host_memory; host_memory.restart_with_huge_pages(); "
  "print('after', os.getpid(), repr(os.environ.get('GLIBC_TUNABLES')))"
)


def probe(**environment):
  env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
  env.update(environment, PYTHONPATH=str(REPO))
  result = subprocess.run(
    [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
  )
  assert result.returncode == 0, result.stderr
  return result.stdout.splitlines()


def test_a_restart_keeps_the_process_and_sets_the_tunable_once():
  lines = probe()
  pid = lines[0].split()[1]
  if host_memory.supported():
    # Restarted once: the command ran twice in the same process, the
    # second time with the tunable, which stops a third run.
    assert lines == [f"pid {pid}", f"pid {pid}", f"after {pid} {host_memory.TUNABLES!r}"]
  else:  # no glibc 2.35+, or huge pages not given on request: nothing to gain
    assert lines == [f"pid {pid}", f"after {pid} None"]


def test_the_users_tunables_are_kept():
  lines = probe(GLIBC_TUNABLES="")
  pid = lines[0].split()[1]
  assert lines == [f"pid {pid}", f"after {pid} ''"]
