"""Losses of teacher training and distillation, masked for padded examples."""

import jax
import jax.numpy as jnp
import ml_collections

from mobileiqa_jax import errors

# The feature terms of distillation, in the order they are added.
FEATURE_TERMS = ("dof", "levels")
# Every term, in the order they are added.
TERMS = ("score", *FEATURE_TERMS, "teacher_score")


def elementwise(kind: str):
  if kind == "mse":
    return jnp.square
  if kind == "mae":
    return jnp.abs
  raise errors.InvalidInput(f"loss.kind must be 'mse' or 'mae', got {kind!r}")


def masked_mean(kind: str, predictions, targets, valid, batch_axis: int = 0):
  """Mean of the per-element loss over valid examples (and all other axes).

  `batch_axis` says where the batch is: taps stack levels first, (L, B, ...).
  """
  per_element = elementwise(kind)(predictions.astype(jnp.float32) - targets.astype(jnp.float32))
  shape = [1] * per_element.ndim
  shape[batch_axis] = valid.shape[0]
  weights = jnp.broadcast_to(valid.reshape(shape).astype(jnp.float32), per_element.shape)
  return jnp.sum(per_element * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def from_config(loss_config: ml_collections.ConfigDict) -> dict:
  """The keyword arguments of `student_loss` (and the train step) that
  `config.loss` sets.

  Raises:
    errors.InvalidInput: for an unknown loss kind, here rather than when the
      step is first traced.
  """
  elementwise(loss_config.kind)
  return {
    "loss_kind": loss_config.kind,
    "loss_weights": {
      "score": loss_config.score_weight,
      "dof": loss_config.dof_weight,
      "levels": loss_config.levels_weight,
      "teacher_score": loss_config.get("teacher_score_weight", 0.0),
    },
    "feature_norm": bool(loss_config.get("feature_norm", False)),
  }


def student_loss(
  kind: str,
  weights,
  scores,
  labels,
  valid,
  taps=None,
  teacher_taps=None,
  feature_norm: bool = False,
  teacher_scores=None,
):
  """Total loss and its terms.

  Score: L(score, label). With a teacher: + w_dof L(dof, teacher dof)
  + w_levels L(levels, teacher levels), each a mean over its elements as the
  original's nn.MSELoss / nn.L1Loss computes it. Weights (1, 1, 1) are the paper's.
  With `teacher_scores` and a non-zero weights['teacher_score'] (not the
  paper's): + w L(score, teacher score), the teacher's own prediction as a
  second target beside the label.

  feature_norm (not the paper's) makes the feature terms independent of the
  teacher's feature scale: each is divided by L(0, teacher feature), the loss
  of predicting all zeros, over the valid examples of the batch (the mean
  square of the teacher's features for MSE, their mean absolute value for
  MAE), with no gradient through the divisor. A feature term then reads as
  the student's error relative to the teacher's feature energy: 0 for a
  perfect copy, about 2 for features of the same energy but unrelated, 1
  for all zeros. The weights then say how much each term counts whatever
  the networks; the raw terms instead depend on the teacher's feature scale
  (a tiny teacher's raw DOF and levels terms start some twenty times the
  score term).

  Returns:
    (total, terms): terms holds each raw loss under its name ('score', 'dof',
    'levels') and, under '<name>_weighted', what it adds to the total (weight
    x raw, or weight x raw / divisor with feature_norm); the weighted terms
    sum to the total.
  """
  raw = {"score": masked_mean(kind, scores, labels, valid)}
  balanced = dict(raw)
  if teacher_taps is not None:
    for name in FEATURE_TERMS:
      raw[name] = masked_mean(kind, taps[name], teacher_taps[name], valid, batch_axis=1)
      balanced[name] = raw[name]
      if feature_norm:
        target = jax.lax.stop_gradient(teacher_taps[name])
        divisor = masked_mean(kind, jnp.zeros_like(target), target, valid, batch_axis=1)
        balanced[name] = raw[name] / jnp.maximum(divisor, jnp.finfo(jnp.float32).tiny)
  if teacher_scores is not None and weights.get("teacher_score"):
    target = jax.lax.stop_gradient(teacher_scores)
    raw["teacher_score"] = balanced["teacher_score"] = masked_mean(kind, scores, target, valid)
  weighted = {f"{name}_weighted": weights[name] * value for name, value in balanced.items()}
  total = sum(weighted.values())
  return total, {**raw, **weighted}
