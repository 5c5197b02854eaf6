"""The suite's CPU-time table (tests/cpu_time.py) counts the processes a test starts."""

import os
import subprocess
import sys
import textwrap

from tests.conftest import REPO

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass"


def test_a_started_process_counts_for_the_test_that_started_it(tmp_path):
  (tmp_path / "test_inner.py").write_text(
    textwrap.dedent(f"""
      import subprocess, sys

      def test_burns_in_a_child():
        subprocess.run([sys.executable, "-c", {BURN!r}], check=True)

      def test_idle():
        pass
    """)
  )
  result = subprocess.run(
    [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider"]
    + ["-p", "tests.cpu_time", "--cpu-durations=5"],
    cwd=tmp_path,
    env={**os.environ, "PYTHONPATH": str(REPO)},
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  table = result.stdout.split("most CPU time, started processes included (top 5)")[1]
  rows = [line.split() for line in table.splitlines()[1:3]]
  # Ranked first, with the child's 0.6 s (the workers carry it to the controller).
  assert rows[0][1].endswith("::test_burns_in_a_child"), table
  assert float(rows[0][0].rstrip("s")) >= 0.6, table
  assert rows[1][1].endswith("::test_idle") and float(rows[1][0].rstrip("s")) < 0.6, table
  assert "in all, 2 tests" in table
