"""Losses of teacher training and distillation, masked for padded examples."""

import jax.numpy as jnp


def elementwise(kind: str):
  if kind == "mse":
    return jnp.square
  if kind == "mae":
    return jnp.abs
  raise ValueError(f"loss must be 'mse' or 'mae', got {kind!r}")


def masked_mean(kind: str, predictions, targets, valid, batch_axis: int = 0):
  """Mean of the per-element loss over valid examples (and all other axes).

  `batch_axis` says where the batch is: taps stack levels first, (L, B, ...).
  """
  per_element = elementwise(kind)(predictions.astype(jnp.float32) - targets.astype(jnp.float32))
  shape = [1] * per_element.ndim
  shape[batch_axis] = valid.shape[0]
  weights = jnp.broadcast_to(valid.reshape(shape).astype(jnp.float32), per_element.shape)
  return jnp.sum(per_element * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def student_loss(kind: str, weights, scores, labels, valid, taps=None, teacher_taps=None):
  """Total loss and its terms.

  Score: L(score, label). With a teacher: + w_dof L(dof, teacher dof)
  + w_levels L(levels, teacher levels), each a mean over its elements as the
  original's nn.MSELoss / nn.L1Loss computes it. Weights (1, 1, 1) are the paper's.
  """
  terms = {"score": masked_mean(kind, scores, labels, valid)}
  if teacher_taps is not None:
    terms["dof"] = masked_mean(kind, taps["dof"], teacher_taps["dof"], valid, batch_axis=1)
    terms["levels"] = masked_mean(kind, taps["levels"], teacher_taps["levels"], valid, batch_axis=1)
  total = sum(weights[name] * value for name, value in terms.items())
  return total, terms
