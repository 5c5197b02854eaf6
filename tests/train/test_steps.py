"""The jitted steps: sharded equals single-device, losses, optimiser recipe."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from mobileiqa_jax.train import losses, optim
from tests.conftest import REPO, TEST_XLA_FLAGS


@pytest.mark.slow
def test_distillation_step_on_8_devices_equals_one_device(tmp_path):
  env = {
    **os.environ,
    "XLA_FLAGS": f"--xla_force_host_platform_device_count=8 {TEST_XLA_FLAGS}",
    "JAX_PLATFORMS": "cpu",
    "PYTHONPATH": str(REPO),
  }
  result = subprocess.run(
    [sys.executable, "-m", "tests.train.sharded_step", str(tmp_path / "r.npz")],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=900,
  )
  assert result.returncode == 0, result.stderr[-4000:]
  print(result.stdout)
  r = dict(np.load(tmp_path / "r.npz"))
  assert int(r["data4_model2:split"]) > 0  # the layout really splits kernels
  # Sharding reorders the float32 reductions (batch statistics, norms):
  # measured 4e-5 apart with XLA's own reduction loops (xla_options).
  np.testing.assert_allclose(r["data4_model2:loss"], r["one_device:loss"], rtol=1e-4)
  names = [k.split(":", 1)[1] for k in r if k.startswith("one_device:") and k.count("/")]
  assert len(names) > 50
  worst = max(float(np.max(np.abs(r[f"data4_model2:{n}"] - r[f"one_device:{n}"]))) for n in names)
  print(f"max |param diff| after one step, 8 devices vs 1: {worst:.2e}")
  assert worst <= 1e-5


def test_masked_losses_ignore_padding():
  predictions = jnp.array([0.5, 0.2, 9.0])
  labels = jnp.array([0.4, 0.4, 0.0])
  valid = jnp.array([True, True, False])
  np.testing.assert_allclose(
    losses.masked_mean("mse", predictions, labels, valid), (0.01 + 0.04) / 2, rtol=1e-6
  )
  np.testing.assert_allclose(
    losses.masked_mean("mae", predictions, labels, valid), (0.1 + 0.2) / 2, rtol=1e-6
  )
  taps = jnp.ones((5, 3, 2, 2, 4)).at[:, 2].set(100.0)  # (L, B, ...): the padded row is far off
  total, terms = losses.student_loss(
    "mse",
    {"score": 1.0, "dof": 2.0, "levels": 0.5},
    predictions,
    labels,
    valid,
    {"dof": taps[:3], "levels": taps},
    {"dof": jnp.zeros((3, 3, 2, 2, 4)), "levels": jnp.zeros_like(taps)},
  )
  assert float(terms["dof"]) == 1.0 and float(terms["levels"]) == 1.0
  np.testing.assert_allclose(total, 0.025 + 2.0 + 0.5, rtol=1e-6)
  np.testing.assert_allclose(
    [terms["score_weighted"], terms["dof_weighted"], terms["levels_weighted"]],
    [0.025, 2.0, 0.5],
    rtol=1e-6,
  )


def test_teacher_score_is_a_second_target_beside_the_label():
  predictions = jnp.array([0.5, 0.2, 9.0])
  labels = jnp.array([0.4, 0.4, 0.0])
  teacher_scores = jnp.array([0.3, 0.6, -5.0])
  valid = jnp.array([True, True, False])

  def loss(teacher_scores, weight=0.5):
    weights = {"score": 1.0, "dof": 1.0, "levels": 1.0, "teacher_score": weight}
    return losses.student_loss(
      "mse", weights, predictions, labels, valid, teacher_scores=teacher_scores
    )

  total, terms = loss(teacher_scores)
  np.testing.assert_allclose(terms["teacher_score"], (0.2**2 + 0.4**2) / 2, rtol=1e-6)
  np.testing.assert_allclose(terms["teacher_score_weighted"], 0.5 * 0.1, rtol=1e-6)
  np.testing.assert_allclose(total, 0.025 + 0.05, rtol=1e-6)
  # The teacher is a target: nothing flows back into its scores.
  assert not np.any(jax.grad(lambda t: loss(t)[0])(teacher_scores))
  # Weight 0 (the paper's recipe) leaves the term out.
  assert "teacher_score" not in loss(teacher_scores, weight=0.0)[1]


@pytest.mark.parametrize("kind", ["mse", "mae"])
def test_feature_norm_divides_feature_terms_by_the_teachers_energy(kind):
  rng = np.random.default_rng(0)
  valid = jnp.array([True, True, True, False])
  scores, labels = jnp.array([0.5, 0.2, 0.9, 5.0]), jnp.array([0.4, 0.4, 0.7, 0.0])
  teacher = {
    "dof": rng.normal(size=(3, 4, 2, 2, 5)) * 3.0,
    "levels": rng.normal(size=(5, 4, 2, 2, 5)) * 0.1,
  }
  student = {k: v + rng.normal(size=v.shape) * v.std() for k, v in teacher.items()}
  for taps in (teacher, student):  # the padded example is far off, and ignored
    for v in taps.values():
      v[:, 3] = 100.0 * rng.normal(size=v[:, 3].shape)
  weights = {"score": 1.0, "dof": 2.0, "levels": 0.5}
  error = np.square if kind == "mse" else np.abs

  def loss(student, scale=1.0):
    return losses.student_loss(
      kind,
      weights,
      scores,
      labels,
      valid,
      {k: jnp.asarray(v * scale) for k, v in student.items()},
      {k: jnp.asarray(v * scale) for k, v in teacher.items()},
      feature_norm=True,
    )

  total, terms = loss(student)
  for name in ("dof", "levels"):
    raw = error(student[name][:, :3] - teacher[name][:, :3]).mean()
    energy = error(teacher[name][:, :3]).mean()
    np.testing.assert_allclose(terms[name], raw, rtol=1e-5)
    np.testing.assert_allclose(terms[f"{name}_weighted"], weights[name] * raw / energy, rtol=1e-5)
  weighted = [terms[f"{n}_weighted"] for n in ("score", "dof", "levels")]
  np.testing.assert_allclose(total, sum(weighted), rtol=1e-6)
  # Balanced terms do not depend on the features' scale; raw ones do.
  _, scaled = loss(student, scale=10.0)
  np.testing.assert_allclose(scaled["dof_weighted"], terms["dof_weighted"], rtol=1e-4)
  assert float(scaled["dof"]) > 9.0 * float(terms["dof"])
  # No gradient flows through the divisor: the student's gradient is the raw
  # term's, divided by a constant.
  dof = jnp.asarray(student["dof"])
  grad_balanced = jax.grad(lambda d: loss({**student, "dof": d})[1]["dof_weighted"])(dof)
  grad_raw = jax.grad(lambda d: loss({**student, "dof": d})[1]["dof"])(dof)
  energy = error(teacher["dof"][:, :3]).mean()
  np.testing.assert_allclose(grad_balanced, weights["dof"] * grad_raw / energy, rtol=1e-4)


def test_adam_l2_is_pytorch_adam_with_coupled_decay_and_epoch_cosine():
  cfg = default.get_config().optimizer
  cfg.learning_rate, cfg.weight_decay = 0.1, 0.01
  tx, schedule = optim.create(cfg, steps_per_epoch=3, total_steps=30)
  # Learning rate: constant within an epoch, CosineAnnealingLR(T_max=50) across epochs.
  assert float(schedule(0)) == float(schedule(2))
  np.testing.assert_allclose(schedule(0), 0.1, rtol=1e-6)
  np.testing.assert_allclose(schedule(3), 0.1 * 0.5 * (1 + np.cos(np.pi / 50)), rtol=1e-6)
  # One step by hand, as torch.optim.Adam(weight_decay=wd) computes it.
  w, g = np.array([1.0, -2.0]), np.array([0.5, 0.25])
  updates, _ = tx.update(jnp.asarray(g), tx.init(jnp.asarray(w)), jnp.asarray(w))
  grad = g + 0.01 * w
  m, v = 0.1 * grad, 0.001 * grad**2
  expected = -0.1 * (m / 0.1) / (np.sqrt(v / 0.001) + 1e-8)
  np.testing.assert_allclose(updates, expected, rtol=1e-5)


def test_adamw_warms_up_then_decays():
  cfg = default.get_config("runlocal").optimizer
  _, schedule = optim.create(cfg, steps_per_epoch=10, total_steps=100)
  assert float(schedule(0)) == 0.0
  np.testing.assert_allclose(schedule(cfg.warmup_steps), cfg.learning_rate, rtol=1e-6)
  assert float(schedule(99)) < 0.01 * cfg.learning_rate


def test_eval_step_scores_tiled_images_as_their_tiles_mean():
  from mobileiqa_jax import models  # pylint: disable=g-import-not-at-top
  from mobileiqa_jax.data import preprocess  # pylint: disable=g-import-not-at-top
  from mobileiqa_jax.train import steps  # pylint: disable=g-import-not-at-top
  from tests.conftest import random_variables  # pylint: disable=g-import-not-at-top

  # Grid 6: the smallest whose score head still has a 3x3 window to read.
  model = models.create(
    "student_tiny", grid=6, dim=16, adapter_hidden=16, head_channels=8, head_hidden=8
  )
  pixels = np.random.default_rng(0).integers(0, 256, (2, 3, 32, 32, 3), dtype=np.uint8)
  images = preprocess.normalise(pixels.reshape(6, 32, 32, 3))
  variables = random_variables(model, images[:1])
  batch = {"image": pixels, "label": np.ones(2, np.float32), "valid": np.ones(2, bool)}
  scores, _, _ = jax.jit(lambda v, b: steps.eval_step(v, b, model=model))(variables, batch)
  per_tile = jax.jit(lambda v, x: model.apply(v, x)[0])(variables, images)
  per_tile = np.asarray(per_tile).reshape(2, 3)
  assert np.isfinite(per_tile).all() and np.ptp(per_tile) > 0
  np.testing.assert_allclose(scores, per_tile.mean(axis=1), rtol=1e-5, atol=1e-6)
