"""The training state and the jitted steps: train (teacher or distillation) and eval."""
import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from mobileiqa_jax.models.mobileiqa import NO_BANDS
from mobileiqa_jax.train import losses


@flax.struct.dataclass
class TrainState:
  """Everything a resumed run needs besides the data iterator."""
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  rng: jax.Array  # raw uint32 key; step keys are fold_in(rng, step)

  @property
  def variables(self):
    return {"params": self.params, "batch_stats": self.batch_stats}


def init_state(model, tx, rng, image_shape, variables=None) -> TrainState:
  """A fresh state; `variables` (e.g. converted weights) replace the random init."""
  init_rng, state_rng = jax.random.split(rng)
  if variables is None:
    variables = model.init(init_rng, jnp.zeros(image_shape, jnp.float32))
  params = variables["params"]
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params),
                    rng=state_rng)


def _resize(images, size):
  if size is None or tuple(images.shape[1:3]) == tuple(size):
    return images
  return jax.image.resize(images, (images.shape[0], *size, images.shape[3]), "bicubic")


def train_step(state: TrainState, batch, teacher_variables, *, model, tx, schedule,
               loss_kind: str, loss_weights, teacher=None, teacher_size=None,
               accumulation_steps: int = 1):
  """One optimiser step over a global batch, accumulating gradients over
  `accumulation_steps` micro-batches (scanned, so memory is one micro-batch's).

  Only the student's (or trained teacher's) parameters are differentiated; the
  distillation teacher runs in eval mode under stop_gradient.
  """
  step_rng = jax.random.fold_in(state.rng, state.step)
  if teacher is not None:
    # The frozen teacher runs in eval mode, where its level adapters would
    # band large maps in a loop: inside the step that costs time (XLA:CPU runs
    # loop bodies slowly) and saves no peak memory, which the student's
    # backward pass sets (measured at batch 2, 512x512).
    teacher = teacher.clone(band_threshold=NO_BANDS)

  def micro_loss(params, batch_stats, micro, rng):
    (scores, taps), updates = model.apply(
        {"params": params, "batch_stats": batch_stats}, micro["image"], train=True,
        rngs={"dropout": rng}, mutable=["batch_stats"])
    teacher_taps = None
    if teacher is not None:
      _, teacher_taps = teacher.apply(teacher_variables, _resize(micro["image"], teacher_size))
      teacher_taps = jax.lax.stop_gradient(teacher_taps)
    total, terms = losses.student_loss(loss_kind, loss_weights, scores, micro["label"],
                                       micro["valid"], taps, teacher_taps)
    return total, (terms, updates["batch_stats"])

  grad_fn = jax.value_and_grad(micro_loss, has_aux=True)
  if accumulation_steps == 1:
    # No scan: XLA:CPU runs a loop body several times slower than straight code.
    (loss, (terms, batch_stats)), grads = grad_fn(state.params, state.batch_stats, batch, step_rng)
  else:
    micro_batches = jax.tree.map(
        lambda x: x.reshape(accumulation_steps, x.shape[0] // accumulation_steps, *x.shape[1:]),
        batch)

    def accumulate(carry, inputs):
      grads_sum, loss_sum, terms_sum, batch_stats = carry
      micro, index = inputs
      (loss, (terms, batch_stats)), grads = grad_fn(
          state.params, batch_stats, micro, jax.random.fold_in(step_rng, index))
      carry = (jax.tree.map(jnp.add, grads_sum, grads), loss_sum + loss,
               jax.tree.map(jnp.add, terms_sum, terms), batch_stats)
      return carry, None

    zero_terms = {k: jnp.zeros((), jnp.float32) for k in
                  (["score", "dof", "levels"] if teacher is not None else ["score"])}
    init = (jax.tree.map(jnp.zeros_like, state.params), jnp.zeros((), jnp.float32), zero_terms,
            state.batch_stats)
    (grads, loss, terms, batch_stats), _ = jax.lax.scan(
        accumulate, init, (micro_batches, jnp.arange(accumulation_steps)))
    scale = 1.0 / accumulation_steps
    grads, loss = jax.tree.map(lambda g: g * scale, grads), loss * scale
    terms = jax.tree.map(lambda t: t * scale, terms)

  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  metrics = {
      "loss": loss,
      **{f"loss_{k}": v for k, v in terms.items()},
      "grad_norm": optax.global_norm(grads),
      "param_norm": optax.global_norm(params),
      "learning_rate": schedule(state.step),
  }
  new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                            opt_state=opt_state)
  return new_state, metrics


def eval_step(variables, batch, *, model):
  """Scores of a global batch, with its labels and validity mask passed through
  so that gathering keeps them aligned."""
  scores, _ = model.apply(variables, batch["image"])
  return scores, batch["label"], batch["valid"]


def jit_train_step(state_shardings, batch_sharding, teacher_shardings, **kwargs):
  return jax.jit(functools.partial(train_step, **kwargs),
                 in_shardings=(state_shardings, batch_sharding, teacher_shardings),
                 out_shardings=(state_shardings, None), donate_argnums=(0,))
