"""The training state and the jitted steps: train (teacher or distillation) and eval."""

import concurrent.futures
import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from mobileiqa_jax import xla_options
from mobileiqa_jax.data import preprocess
from mobileiqa_jax.train import losses, sharding


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


def init_state(tx, rng, variables) -> TrainState:
  """A fresh state from a model's initial `variables` (drawn by
  `models.initial_variables`, or converted weights)."""
  _, state_rng = jax.random.split(rng)
  params = variables["params"]
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    batch_stats=variables.get("batch_stats", {}),
    opt_state=tx.init(params),
    rng=state_rng,
  )


def abstract_state(tx, rng, abstract_variables) -> TrainState:
  """The shapes and dtypes of a fresh state (`models.abstract_variables` gives
  the variables'), computing nothing."""
  return jax.eval_shape(functools.partial(init_state, tx), rng, abstract_variables)


def create_state(tx, rng, variables, shardings) -> TrainState:
  """`init_state` run on the devices, laid out by `shardings`.

  The jitted initialiser is built here and dropped on return: while its
  function lives, JAX keeps the executable, which for the student holds
  0.25 GB of memory for the rest of the run.
  """
  return jax.jit(functools.partial(init_state, tx), out_shardings=shardings)(rng, variables)


def _resize(images, size):
  if size is None or tuple(images.shape[1:3]) == tuple(size):
    return images
  return jax.image.resize(images, (images.shape[0], *size, images.shape[3]), "bicubic")


def compute_gradients(
  state: TrainState,
  batch,
  teacher_variables,
  *,
  model,
  loss_kind: str,
  loss_weights,
  feature_norm: bool = False,
  teacher=None,
  teacher_size=None,
  accumulation_steps: int = 1,
):
  """Gradients of the loss over a global batch, accumulated over
  `accumulation_steps` micro-batches (scanned, so memory is one micro-batch's).

  Only the student's (or trained teacher's) parameters are differentiated; the
  distillation teacher runs in eval mode under stop_gradient, banding its large
  maps as inference does (at 1231x1907, batch 1: 0.4 GB less peak memory and
  3% less time than whole maps). `state.opt_state` is not read.

  The batch's images are uint8 RGB, as the loader gives them; they are
  ImageNet-normalised here, on the device, one micro-batch at a time.

  Returns:
    (grads, new batch_stats, loss, loss terms).
  """
  step_rng = jax.random.fold_in(state.rng, state.step)

  def micro_loss(params, batch_stats, micro, rng):
    images = preprocess.normalise(micro["image"])
    (scores, taps), updates = model.apply(
      {"params": params, "batch_stats": batch_stats},
      images,
      train=True,
      rngs={"dropout": rng},
      mutable=["batch_stats"],
    )
    teacher_scores = teacher_taps = None
    if teacher is not None:
      teacher_scores, teacher_taps = jax.lax.stop_gradient(
        teacher.apply(teacher_variables, _resize(images, teacher_size))
      )
    total, terms = losses.student_loss(
      loss_kind,
      loss_weights,
      scores,
      micro["label"],
      micro["valid"],
      taps,
      teacher_taps,
      feature_norm=feature_norm,
      teacher_scores=teacher_scores,
    )
    return total, (terms, updates["batch_stats"])

  grad_fn = jax.value_and_grad(micro_loss, has_aux=True)
  if accumulation_steps == 1:
    # No scan: XLA:CPU runs a loop body several times slower than straight code.
    (loss, (terms, batch_stats)), grads = grad_fn(state.params, state.batch_stats, batch, step_rng)
    return grads, batch_stats, loss, terms

  micro_batches = jax.tree.map(
    lambda x: x.reshape(accumulation_steps, x.shape[0] // accumulation_steps, *x.shape[1:]), batch
  )

  def accumulate(carry, inputs):
    grads_sum, loss_sum, terms_sum, batch_stats = carry
    micro, index = inputs
    (loss, (terms, batch_stats)), grads = grad_fn(
      state.params, batch_stats, micro, jax.random.fold_in(step_rng, index)
    )
    carry = (
      jax.tree.map(jnp.add, grads_sum, grads),
      loss_sum + loss,
      jax.tree.map(jnp.add, terms_sum, terms),
      batch_stats,
    )
    return carry, None

  first = jax.tree.map(lambda x: x[0], micro_batches)
  _, (terms_shape, _) = jax.eval_shape(micro_loss, state.params, state.batch_stats, first, step_rng)
  zero_terms = jax.tree.map(lambda t: jnp.zeros(t.shape, t.dtype), terms_shape)
  init = (
    jax.tree.map(jnp.zeros_like, state.params),
    jnp.zeros((), jnp.float32),
    zero_terms,
    state.batch_stats,
  )
  (grads, loss, terms, batch_stats), _ = jax.lax.scan(
    accumulate, init, (micro_batches, jnp.arange(accumulation_steps))
  )
  scale = 1.0 / accumulation_steps
  grads = jax.tree.map(lambda g: g * scale, grads)
  return grads, batch_stats, loss * scale, jax.tree.map(lambda t: t * scale, terms)


def apply_gradients(state: TrainState, grads, batch_stats, loss, terms, *, tx, schedule):
  """The optimiser update: (new state, step metrics)."""
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  metrics = {
    "loss": loss,
    **{f"loss_{k}": v for k, v in terms.items()},
    "grad_norm": optax.global_norm(grads),
    "param_norm": optax.global_norm(params),
    "learning_rate": schedule(state.step),
  }
  new_state = state.replace(
    step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state
  )
  return new_state, metrics


def eval_step(variables, batch, *, model):
  """Scores of a global batch, with its labels and validity mask passed through
  so that gathering keeps them aligned.

  Images (B, tiles, h, w, 3), the tiles of a crop-trained run's evaluation
  (data.crop), score as the mean over each image's tiles. Images are uint8
  RGB, normalised here as in `compute_gradients`.
  """
  images = preprocess.normalise(batch["image"])
  if images.ndim == 5:
    count, per_image = images.shape[:2]
    scores, _ = model.apply(variables, images.reshape(count * per_image, *images.shape[2:]))
    scores = scores.reshape(count, per_image).mean(axis=1)
  else:
    scores, _ = model.apply(variables, images)
  return scores, batch["label"], batch["valid"]


class JitTrainStep:
  """One optimiser step as two jitted programs: `compute_gradients`, then
  `apply_gradients` in place.

  One program would be simpler, but XLA:CPU (measured with jax 0.10) then
  copies every donated parameter at the start, keeps the copies through the
  forward and backward passes, and builds the new parameters and Adam moments
  beside the old ones: 1.2 GB more peak memory for the student at batch 2,
  512x512. A separate update program, whose inputs are read once each,
  updates the donated buffers in place. The gradients (one parameter set)
  pass between them; the update costs one more dispatch per step.

  The two programs compile side by side on the first call (`compile`), and
  that pair serves every later call with arguments of the same shapes.

  `step(state, batch, teacher_variables) -> (state, metrics)`; `state` is
  donated.
  """

  def __init__(
    self,
    state_shardings,
    batch_sharding,
    teacher_shardings,
    *,
    tx,
    schedule,
    reductions: str = "xla",
    **loss_kwargs,
  ):
    # The gradient program reads no optimiser state: pass it a state without
    # one, so that it stays out of the program's arguments.
    grad_state_shardings = state_shardings.replace(opt_state=None)
    self._gradients = xla_options.jit(
      functools.partial(compute_gradients, **loss_kwargs),
      reductions=reductions,
      in_shardings=(grad_state_shardings, batch_sharding, teacher_shardings),
      out_shardings=(state_shardings.params, state_shardings.batch_stats, None, None),
    )
    self._update = xla_options.jit(
      functools.partial(apply_gradients, tx=tx, schedule=schedule),
      reductions=reductions,
      in_shardings=(
        state_shardings,
        state_shardings.params,
        state_shardings.batch_stats,
        None,
        None,
      ),
      out_shardings=(state_shardings, None),
      donate_argnums=(0,),
    )
    self._compiled = {}

  @classmethod
  def from_config(
    cls, config, mesh, state_shardings, *, model, tx, schedule, teacher=None, teacher_shardings=None
  ) -> "JitTrainStep":
    """The step `config` asks for (loss, distillation size, accumulation, CPU
    reductions), on `mesh`: the one the training loop runs and the benchmark's
    training rows time."""
    teacher_size = config.distill.teacher_size
    return cls(
      state_shardings,
      sharding.batch_sharding(mesh),
      teacher_shardings,
      model=model,
      tx=tx,
      schedule=schedule,
      teacher=teacher,
      teacher_size=tuple(teacher_size) if teacher_size else None,
      accumulation_steps=config.grad_accumulation_steps,
      reductions=config.cpu_reductions,
      **losses.from_config(config.loss),
    )

  @staticmethod
  def _run(gradients, update, state, batch, teacher_variables):
    return update(state, *gradients(state.replace(opt_state=None), batch, teacher_variables))

  def __call__(self, state, batch, teacher_variables):
    # The state's and the teacher's shapes are fixed by the shardings this
    # step was built with; only the batch's may differ between callers (a
    # benchmark's sizes, a last partial batch). Keying on the batch alone
    # keeps the teacher's few hundred leaves out of every step's lookup.
    key = tuple((x.shape, x.dtype) for x in jax.tree.leaves(batch)), jax.tree.structure(batch)
    if key not in self._compiled:
      self._compiled[key] = self.compile(state, batch, teacher_variables)
    return self._compiled[key](state, batch, teacher_variables)

  def compile(self, state, batch, teacher_variables):
    """The step compiled ahead of time for arguments shaped like these.

    XLA compiles the update program in a second thread while the gradient
    program compiles: its compiler keeps about 1.5 of 2 cores busy, and the
    tiny student's step is ready in 15 s instead of 20 (side by side in one
    process, 2-core CPU). Compiled programs still go through JAX's
    persistent cache.
    """
    lowered_gradients = self._gradients.lower(
      state.replace(opt_state=None), batch, teacher_variables
    )
    lowered_update = self._update.lower(state, *lowered_gradients.out_info)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
      update_future = pool.submit(lowered_update.compile)
      gradients = lowered_gradients.compile()
      return functools.partial(self._run, gradients, update_future.result())
