"""Training rows: one optimiser step, built as the training loop builds it.

`measure(kind, ...)` makes the step with `steps.JitTrainStep.from_config`, the
training loop's own constructor, from the paper's config (single-device mesh,
its optimiser, MSE with weights 1, 1, 1; the quick-start's runlocal config for
the tiny networks) on synthetic data and weights, and reports images/s and the
process's peak resident memory while stepping.
`TRAINING_STEPS` names the rows.
"""

from collections.abc import Callable
import functools
import time

import jax
import numpy as np

from mobileiqa_jax import config_files, models
from mobileiqa_jax.benchmark import probes
from mobileiqa_jax.train import optim, sharding, steps

# kind -> (trained network, frozen teacher or None)
KINDS = {
  "teacher": ("teacher", None),
  "student": ("student", None),  # the student trained alone, on labels
  "distill": ("student", "teacher"),
}


def measure(
  kind: str,
  repeats: int,
  warmup: int,
  smoke: bool = False,
  *,
  tiny: bool = False,
  batch: int = 2,
  height: int = 512,
  width: int = 512,
  **model_overrides,
) -> dict:
  """Seconds per optimiser step of teacher training or distillation.

  Args:
    kind: "teacher" or "student" (trained on labels alone) or "distill"
      (the student trained against a frozen teacher at the same input size).
    repeats: timed steps (the median is reported).
    warmup: untimed steps after compilation.
    smoke: tiny presets on 64x64 images, for tests.
    tiny: the tiny presets (the quick-start's networks) at the given size.
    batch, height, width: the global batch.
    **model_overrides: fields for both networks (e.g. band_threshold).

  Returns:
    Row fields: compile_s, step_s, steps_s, images_per_s, base/peak RSS.
  """
  trained, frozen = KINDS[kind]
  if smoke or tiny:
    trained, frozen = trained + "_tiny", frozen and frozen + "_tiny"
  if smoke:
    height = width = 64
  model = models.create(trained, **model_overrides)
  teacher = models.create(frozen, **model_overrides) if frozen else None
  data_rng = np.random.default_rng(0)
  batch_data = {
    "image": data_rng.integers(0, 256, (batch, height, width, 3), dtype=np.uint8),
    "label": data_rng.uniform(size=batch).astype(np.float32),
    "valid": np.ones(batch, bool),
  }
  # The paper's optimiser and loss weights, from the checkout's configs/; the
  # tiny networks' rows take the quick-start's settings (configs' runlocal).
  config = config_files.load(
    "configs/default.py:runlocal" if tiny or smoke else "configs/default.py"
  )
  tx, schedule = optim.create(config.optimizer, steps_per_epoch=100, total_steps=1000)
  mesh = sharding.make_mesh(1, jax.devices()[:1])
  # Built as the training loop builds them; the host copy of the weights is
  # dropped before memory is measured.
  rng = jax.random.PRNGKey(0)
  abstract_variables = models.abstract_variables(model)
  state_shardings = sharding.tree_shardings(steps.abstract_state(tx, rng, abstract_variables), mesh)
  state = steps.create_state(
    tx, rng, models.initial_like(abstract_variables, seed=0), state_shardings
  )
  teacher_variables, teacher_shardings = {}, {}
  if teacher is not None:
    # Random (the training loop restores the teacher from a checkpoint).
    variables = models.initial_variables(teacher, seed=1)
    teacher_shardings = sharding.tree_shardings(variables, mesh)
    teacher_variables = jax.device_put(variables, teacher_shardings)
    del variables
  batch_data = sharding.global_batch(batch_data, mesh)
  step = steps.JitTrainStep.from_config(
    config,
    mesh,
    state_shardings,
    model=model,
    tx=tx,
    schedule=schedule,
    teacher=teacher,
    teacher_shardings=teacher_shardings,
  )

  start = time.perf_counter()
  compiled = step.compile(state, batch_data, teacher_variables)
  compile_s = time.perf_counter() - start
  probes.release_free_memory()
  base = probes.rss_bytes()
  for _ in range(warmup):
    state, metrics = compiled(state, batch_data, teacher_variables)
  jax.block_until_ready(state)
  exact_peak = probes.reset_peak_rss()
  times = []
  for _ in range(max(repeats, 1)):
    start = time.perf_counter()
    state, metrics = compiled(state, batch_data, teacher_variables)
    jax.block_until_ready((state, metrics))
    times.append(time.perf_counter() - start)
  if not np.isfinite(float(metrics["loss"])):
    raise FloatingPointError(f"{kind} step gave a non-finite loss")
  seconds = float(np.median(times))
  return {
    "model": trained,
    "teacher": frozen,
    "batch": batch,
    "height": height,
    "width": width,
    "compile_s": compile_s,
    "step_s": seconds,
    "steps_s": times,
    "images_per_s": batch / seconds,
    "base_rss_bytes": base,
    "peak_rss_bytes": probes.peak_rss_bytes(),
    "peak_rss_includes_compile": not exact_peak,
    "overrides": model_overrides,
  }


# The rows: name -> measure(repeats, warmup, smoke) -> row fields. The
# full-size row is the paper's distillation input (UHD-IQA), at the batch a
# CPU holds; the tiny rows are the README's main job (configs/recipe.py:
# runlocal): its three runs' steps at its batch and image size.
_QUICK_START = dict(tiny=True, batch=16, height=128, width=128)
TRAINING_STEPS: dict[str, Callable[[int, int, bool], dict]] = {
  "teacher_step": functools.partial(measure, "teacher"),
  "distill_step": functools.partial(measure, "distill"),
  "distill_step_full_size": functools.partial(measure, "distill", batch=1, height=1231, width=1907),
  "teacher_tiny_step": functools.partial(measure, "teacher", **_QUICK_START),
  "student_tiny_step": functools.partial(measure, "student", **_QUICK_START),
  "distill_tiny_step": functools.partial(measure, "distill", **_QUICK_START),
}
