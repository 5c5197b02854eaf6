"""One distillation step on meshes of 1 and 8 devices (run by test_steps.py).

  XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m tests.train.sharded_step OUT.npz

Saves the loss and parameters after the step for each mesh layout.
"""

import sys

from flax import traverse_util
import jax
import numpy as np

from configs import default
from mobileiqa_jax import models
from mobileiqa_jax.train import optim, sharding, steps
from tests.conftest import MICRO, random_variables

LAYOUTS = {  # name -> (devices, model axis, min elements to split a kernel)
  "one_device": (1, 1, 2**18),
  # 8 devices: batch over 4, large kernels (and their Adam moments) split over 2.
  "data4_model2": (8, 2, 1024),
}


def main(out):
  assert jax.device_count() == 8, "run with --xla_force_host_platform_device_count=8"
  config = default.get_config("runlocal")
  # The tiny backbones with micro heads: the layout splits their large
  # kernels all the same, and each of the two programs compiles faster.
  student, teacher = (models.create(name, **MICRO) for name in ("student_tiny", "teacher_tiny"))
  rng = np.random.default_rng(0)
  batch = {
    "image": rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8),
    "label": rng.uniform(size=8).astype(np.float32),
    "valid": np.ones(8, bool),
  }
  x = np.zeros((1, 64, 64, 3), np.float32)
  student_variables = random_variables(student, x, seed=1)
  teacher_variables = random_variables(teacher, x, seed=2)
  tx, schedule = optim.create(config.optimizer, steps_per_epoch=10, total_steps=100)
  results = {}
  for name, (num_devices, model_axis, min_elements) in LAYOUTS.items():
    mesh = sharding.make_mesh(model_axis, jax.devices()[:num_devices])
    state = steps.init_state(tx, jax.random.PRNGKey(0), student_variables)
    state_shardings = sharding.tree_shardings(state, mesh, min_elements)
    teacher_shardings = sharding.tree_shardings(teacher_variables, mesh, min_elements)
    state = jax.device_put(state, state_shardings)
    step = steps.JitTrainStep(
      state_shardings,
      sharding.batch_sharding(mesh),
      teacher_shardings,
      model=student,
      tx=tx,
      schedule=schedule,
      loss_kind="mse",
      loss_weights={"score": 1.0, "dof": 1.0, "levels": 1.0},
      teacher=teacher,
    )
    new_state, metrics = step(
      state,
      sharding.global_batch(batch, mesh),
      jax.device_put(teacher_variables, teacher_shardings),
    )
    split = sum(
      len(s.sharding.spec) > 0 and any(s.sharding.spec) for s in jax.tree.leaves(new_state.params)
    )
    print(f"{name}: loss {float(metrics['loss']):.8f}, {split} parameter arrays split over 'model'")
    flat = traverse_util.flatten_dict(jax.device_get(new_state.params), sep="/")
    results.update({f"{name}:{k}": np.asarray(v) for k, v in flat.items()})
    results[f"{name}:loss"] = np.asarray(metrics["loss"])
    results[f"{name}:split"] = np.asarray(split)
  np.savez(out, **results)


if __name__ == "__main__":
  main(sys.argv[1])
