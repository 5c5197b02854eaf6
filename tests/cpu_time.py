"""CPU seconds per test, the processes it started included (`--cpu-durations=N`).

On two cores under pytest-xdist's two workers, a test's wall time
(`--durations`) grows with whatever the other worker runs beside it and with
the processes the test starts (two per multi-process run), so it says little
about what a test costs. Its CPU time does not depend on its neighbours: user
plus system time of the worker while the test runs (setup, call, teardown),
plus that of every process the test started and waited for (main runs,
notebook kernels, generator workers; `RUSAGE_CHILDREN`). A session fixture's
cost lands on the first test that asks for it, as in `--durations`. The suite
is CPU-bound (both cores busy throughout), so its wall time is about the sum
of these over two.

A pytest plugin: conftest.py forwards its two hooks here (`-p tests.cpu_time`
loads it elsewhere). The workers attach each test's figure to its
teardown report, which pytest-xdist carries to the controller that prints
the table.
"""

import resource

import pytest

_KEY = "cpu_seconds"


def _cpu_seconds() -> float:
  own = resource.getrusage(resource.RUSAGE_SELF)
  children = resource.getrusage(resource.RUSAGE_CHILDREN)
  return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def pytest_addoption(parser):
  parser.addoption(
    "--cpu-durations",
    type=int,
    default=0,
    metavar="N",
    help="show the N tests that used the most CPU time, started processes included",
  )


class CpuTime:
  """Measures in the process that runs the tests; reports where they are logged."""

  def __init__(self, count: int):
    self.count = count
    self.started = {}  # nodeid -> CPU seconds at setup
    self.spent = {}  # nodeid -> CPU seconds over setup, call and teardown

  @pytest.hookimpl(tryfirst=True)
  def pytest_runtest_setup(self, item):
    self.started[item.nodeid] = _cpu_seconds()

  @pytest.hookimpl(wrapper=True)
  def pytest_runtest_makereport(self, item, call):
    report = yield
    if call.when == "teardown" and item.nodeid in self.started:
      spent = _cpu_seconds() - self.started.pop(item.nodeid)
      report.user_properties.append((_KEY, spent))
    return report

  def pytest_runtest_logreport(self, report):
    for key, value in report.user_properties:
      if key == _KEY:
        self.spent[report.nodeid] = value

  def pytest_terminal_summary(self, terminalreporter):
    if not self.spent:
      return
    writer = terminalreporter
    writer.write_sep("=", f"most CPU time, started processes included (top {self.count})")
    ranked = sorted(self.spent.items(), key=lambda item: -item[1])
    for nodeid, seconds in ranked[: self.count]:
      writer.write_line(f"{seconds:8.2f}s  {nodeid}")
    total = sum(self.spent.values())
    writer.write_line(
      f"{total:8.1f}s  in all, {len(self.spent)} tests "
      f"(the top {min(self.count, len(ranked))}: {sum(s for _, s in ranked[: self.count]):.1f}s)"
    )


def pytest_configure(config):
  """Adds the measurement when `--cpu-durations` asks for it."""
  count = config.getoption("--cpu-durations")
  if count > 0:
    config.pluginmanager.register(CpuTime(count), "cpu_time")
