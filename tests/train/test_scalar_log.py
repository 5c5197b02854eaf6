"""The TensorBoard scalar log: what it writes, TensorBoard reads; no TensorFlow on the way."""

import subprocess
import sys

import numpy as np
import pytest

from mobileiqa_jax.train import scalar_log
from tests.conftest import REPO


def _write(logdir, rows):
  writer = scalar_log.ScalarWriter(logdir)
  for step, scalars in rows:
    writer.write_scalars(step, scalars)
  writer.close()
  return writer.path


ROWS = [(1, {"loss": 0.5, "lr": 1e-4}), (2, {"loss": 0.25}), (3, {"validation/srcc": -0.125})]


def test_scalars_read_back_in_order(tmp_path):
  _write(tmp_path, ROWS)
  assert scalar_log.read_scalars(tmp_path) == {
    "loss": ([1, 2], [0.5, 0.25]),
    "lr": ([1], [pytest.approx(1e-4)]),
    "validation/srcc": ([3], [-0.125]),
  }


def test_tensorboard_reads_them_as_tf_summary_scalars(tmp_path):
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  from tensorboard.util import tensor_util  # pylint: disable=g-import-not-at-top

  _write(tmp_path, ROWS)
  events = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
  events.Reload()
  assert sorted(events.Tags()["tensors"]) == ["loss", "lr", "validation/srcc"]
  losses = events.Tensors("loss")
  assert [e.step for e in losses] == [1, 2]
  assert [float(tensor_util.make_ndarray(e.tensor_proto)) for e in losses] == [0.5, 0.25]
  # Tagged for the scalars plugin, so that TensorBoard draws them as curves.
  assert events.SummaryMetadata("loss").plugin_data.plugin_name == "scalars"


def test_a_resumed_run_appends_a_file_read_after_the_first(tmp_path):
  first = _write(tmp_path, ROWS[:2])
  second = _write(tmp_path, [(3, {"loss": 0.125})])
  assert first != second
  assert scalar_log.read_scalars(tmp_path)["loss"] == ([1, 2, 3], [0.5, 0.25, 0.125])


def test_a_record_cut_short_ends_the_file(tmp_path):
  path = _write(tmp_path, ROWS)
  data = path.read_bytes()
  path.write_bytes(data[:-7])  # a writer killed inside its last record
  curves = scalar_log.read_scalars(tmp_path)
  assert curves["loss"] == ([1, 2], [0.5, 0.25]) and "validation/srcc" not in curves


def test_training_code_writes_its_log_without_importing_tensorflow(tmp_path):
  code = (
    "import sys\n"
    "from mobileiqa_jax.train import loop, scalar_log\n"
    f"scalar_log.ScalarWriter({str(tmp_path)!r}).write_scalars(1, {{'loss': 1.0}})\n"
    "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n"
  )
  result = subprocess.run(
    [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert np.isclose(scalar_log.read_scalars(tmp_path)["loss"][1][0], 1.0)
