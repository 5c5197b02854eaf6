"""Checkpoints under relative paths, as the README's commands give them."""

import jax
import numpy as np

from mobileiqa_jax import checkpoints, models
from mobileiqa_jax.train import steps
from tests.conftest import MICRO


def test_relative_paths_save_and_load(tmp_path, monkeypatch):
  # orbax refuses relative paths; `--workdir=runs/quickstart` is one.
  monkeypatch.chdir(tmp_path)
  model = models.create("student_tiny", **MICRO)
  variables = models.random_variables(model)

  checkpoints.save_model("ckpt/student", variables, "student_tiny", MICRO)
  module, loaded, metadata = checkpoints.load_model("ckpt/student")
  assert metadata["model"] == "student_tiny" and module.grid == MICRO["grid"]
  jax.tree.map(np.testing.assert_array_equal, loaded, variables)

  state = steps.TrainState(
    step=np.int32(4),
    params=variables["params"],
    batch_stats=variables["batch_stats"],
    opt_state={},
    rng=jax.random.PRNGKey(0),
  )
  run = checkpoints.TrainingCheckpoints(
    "runs/quickstart", {"model": "student_tiny", "overrides": MICRO}
  )
  assert run.save_best(state, {"sum": 1.0})
  run.wait()
  run.close()
  assert (tmp_path / "runs/quickstart" / checkpoints.BEST / "4").is_dir()
  module, loaded, metadata = checkpoints.load_model("runs/quickstart")
  assert metadata["step"] == 4 and module.grid == MICRO["grid"]
  jax.tree.map(np.testing.assert_array_equal, loaded, variables)
  assert checkpoints.absolute("gs://bucket/run").as_posix() == "gs://bucket/run"
