"""The one training loop (teacher training or distillation) and evaluation.

Resume order, first that applies:
  1. the latest checkpoint in `workdir` (state, data iterator: exact resume);
  2. `config.init.checkpoint`: a model checkpoint or another run's workdir
     (weights only, fresh optimiser), or `config.init.timm_safetensors`
     (backbone only);
  3. a fresh random initialisation from `config.seed`
     (`models.initial_variables`, drawn on the host), its score head's
     output bias set by `config.init.score` where that is given
     (`models.with_initial_score`).
"""

import json
import logging
import time

from etils import epath
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mobileiqa_jax import checkpoints, convert, errors, models, xla_options
from mobileiqa_jax import metrics as iqa_metrics
from mobileiqa_jax.data import pipeline
from mobileiqa_jax.train import losses, optim, scalar_log, sharding, steps

# What a training run did, beside its checkpoints (`read_summary`).
SUMMARY = "summary.json"


class NonFiniteLossError(FloatingPointError):
  """Training diverged; the workdir keeps the last good checkpoint."""


def create_model(config: ml_collections.ConfigDict):
  """The trained network and the metadata that rebuilds it (dtype excluded:
  checkpoints are scored in float32 unless the caller asks otherwise)."""
  overrides = {
    field: value for field, value in config.model.get("overrides", {}).items() if value is not None
  }
  model = models.create(config.model.name, dtype=jnp.dtype(config.model.dtype), **overrides)
  return model, {"model": config.model.name, "overrides": overrides}


# Progress goes to this logger; main.py sends it to the console and keeps
# library chatter (orbax logs every file it writes) at warnings.
log = logging.getLogger("mobileiqa_jax")


def _log(message, *args):
  if jax.process_index() == 0:
    log.info(message, *args)


def _format_eta(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  return (
    f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
    if seconds >= 3600
    else f"{seconds // 60}m{seconds % 60:02d}s"
  )


def make_eval_fn(model, mesh, reductions: str):
  """The jitted eval step, its outputs replicated so every process can read them
  (reductions: the run's `config.cpu_reductions`, see `xla_options.jit`)."""
  return xla_options.jit(
    lambda v, b: steps.eval_step(v, b, model=model),
    out_shardings=sharding.replicated(mesh),
    reductions=reductions,
  )


def evaluate_split(model, variables, config, split: str, mesh, eval_fn=None):
  """Scores every example of `split` once (across all processes) and returns
  (metrics, predictions, labels) on every process."""
  loader = pipeline.make_loader(
    config.data, split, global_batch_size=config.eval_batch_size, train=False, seed=config.seed
  )
  if eval_fn is None:
    eval_fn = make_eval_fn(model, mesh, config.cpu_reductions)
  predictions, labels = [], []
  for batch in loader:
    scores, label, valid = eval_fn(variables, sharding.global_batch(batch, mesh))
    valid = np.asarray(valid)
    predictions.append(np.asarray(scores)[valid])
    labels.append(np.asarray(label)[valid])
  predictions, labels = np.concatenate(predictions), np.concatenate(labels)
  return iqa_metrics.correlations(predictions, labels), predictions, labels


def _initial_variables(config, model, abstract_variables):
  """Weights named by config.init (see the module docstring), else fresh ones;
  `abstract_variables` is the model's tree, which they must match."""
  if config.init.checkpoint:
    _, variables, metadata = checkpoints.load_model(config.init.checkpoint)
    convert.check_variables(variables, abstract_variables, str(config.init.checkpoint))
    _log("initialising from %s (%s)", config.init.checkpoint, metadata.get("model"))
    return variables
  fresh = models.initial_like(abstract_variables, seed=config.seed)
  if config.init.score is not None:
    fresh = models.with_initial_score(model, fresh, config.init.score)
  if config.init.timm_safetensors:
    backbone = convert.from_timm(config.init.timm_safetensors, model)
    _log("initialising the backbone from %s", config.init.timm_safetensors)
    return convert.merge_variables(fresh, backbone)
  return fresh


def _load_teacher(config, mesh):
  teacher, variables, metadata = checkpoints.load_model(config.distill.teacher)
  teacher = teacher.clone(dtype=jnp.dtype(config.model.dtype))
  _log("distilling from teacher %s (%s)", config.distill.teacher, metadata.get("model"))
  shardings = sharding.tree_shardings(variables, mesh, config.sharding.min_shard_elements)
  return teacher, jax.device_put(variables, shardings), shardings


def check_selection_split(config: ml_collections.ConfigDict):
  """The split the best checkpoint is chosen on: validation, unless the config
  explicitly asks for the original's protocol of selecting on test."""
  split = config.eval_split
  if split == "test":
    log.warning(
      "eval_split='test': the best checkpoint is chosen on the split it is then "
      "reported on (the original's protocol), so its test figures are optimistic. "
      "Use eval_split='validation' for honest test figures."
    )
  elif split != "validation":
    raise errors.InvalidInput(f"eval_split must be 'validation' or 'test', got {split!r}")
  if not len(pipeline.make_source(config.data, split)):
    raise errors.InvalidInput(
      f"the {split} split of {config.data.name!r} is empty, and the best checkpoint "
      f"is chosen on it (eval_split={split!r}). Give it examples (data.validation_fraction "
      "> 0 for a random split, validation rows in a CSV's split column), or set "
      "eval_split='test' to select on test as the original does."
    )
  return split


def _format_terms(values: dict) -> str:
  """'score 0.031 + dof 0.025 + levels 0.026 (raw: dof 0.51 levels 0.52)':
  the weighted terms that sum to the loss, then the raw distillation terms."""
  names = [n for n in losses.TERMS if f"loss_{n}_weighted" in values]
  weighted = " + ".join(f"{n} {values[f'loss_{n}_weighted']:.4g}" for n in names)
  raw = " ".join(f"{n} {values[f'loss_{n}']:.4g}" for n in names if n != "score")
  return f"{weighted} (raw: {raw})" if raw else weighted


def _write_summary(workdir, summary: dict):
  if jax.process_index() == 0:
    path = workdir / SUMMARY
    path.with_suffix(".tmp").write_text(json.dumps(summary, indent=2))
    path.with_suffix(".tmp").replace(path)  # a reader never sees half a summary


def read_summary(workdir) -> dict:
  """What a training run did (`train_and_evaluate` writes it at every
  checkpoint): steps, images seen, wall-clock seconds, the selected checkpoint
  and its split, and the loss terms; {} if the run wrote none."""
  path = epath.Path(workdir) / SUMMARY
  return json.loads(path.read_text()) if path.exists() else {}


class RunSummary:
  """What a run did, carried across resumes: steps, images, wall time, the
  selected checkpoint and the loss terms at the logged steps."""

  def __init__(self, config, total_steps: int, previous: dict):
    self._config, self._total_steps = config, total_steps
    self._start = time.time()
    self._previous_seconds = previous.get("wall_seconds", 0.0)
    terms = previous.get("loss_terms", {})
    self._first, self._last = terms.get("first", {}), terms.get("last", {})
    self._count = terms.get("logged_steps", 0)
    self._sums = {k: v * self._count for k, v in terms.get("mean", {}).items()}
    self._selected_step, self._selected = None, {}

  def select(self, step, metrics):
    self._selected_step, self._selected = step, {k: float(v) for k, v in metrics.items()}

  def add_loss_terms(self, values):
    terms = {k: float(v) for k, v in values.items() if k == "loss" or k.startswith("loss_")}
    self._first = self._first or terms
    self._last = terms
    self._count += 1
    for k, v in terms.items():
      self._sums[k] = self._sums.get(k, 0.0) + v

  def to_dict(self, step: int) -> dict:
    config = self._config
    return {
      "model": config.model.name,
      "distilled_from": config.distill.teacher if config.distill.enabled else None,
      "steps": step,
      "total_steps": self._total_steps,
      "batch_size": config.batch_size,
      "images_seen": step * config.batch_size,
      "wall_seconds": self._previous_seconds + time.time() - self._start,
      "selection_split": config.eval_split,
      "selected_step": self._selected_step,
      "selected_metrics": self._selected,
      "loss_terms": {
        "logged_steps": self._count,
        "first": self._first,
        "last": self._last,
        "mean": {k: v / max(self._count, 1) for k, v in self._sums.items()},
      },
    }


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains (teacher, or student by distillation) and evaluates; returns the
  final evaluation metrics on `config.eval_split`, the split the best
  checkpoint is chosen on. Writes `read_summary`'s summary.json as it goes."""
  workdir = epath.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  check_selection_split(config)
  if jax.process_index() == 0:
    (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))
  mesh = sharding.make_mesh(config.sharding.model_axis)
  model, model_metadata = create_model(config)
  losses.from_config(config.loss)  # a bad loss kind fails now, not at the first step
  batch, accumulation = config.batch_size, config.grad_accumulation_steps
  if batch % (mesh.shape[sharding.DATA] * accumulation):
    raise errors.InvalidInput(
      f"batch_size {batch} must divide by data-parallel devices "
      f"({mesh.shape[sharding.DATA]}) x grad_accumulation_steps ({accumulation})"
    )

  steps_per_epoch = len(pipeline.make_source(config.data, "train")) // batch
  total_steps = config.num_train_steps or config.num_epochs * steps_per_epoch
  tx, schedule = optim.create(config.optimizer, steps_per_epoch, total_steps)

  rng = jax.random.PRNGKey(config.seed)
  # The model is traced once here, for its variables' shapes; the state's
  # shapes and a fresh run's weights are derived from them.
  abstract_variables = models.abstract_variables(model)
  abstract_state = steps.abstract_state(tx, rng, abstract_variables)
  state_shardings = sharding.tree_shardings(
    abstract_state, mesh, config.sharding.min_shard_elements
  )
  abstract_state = jax.tree.map(
    lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract_state, state_shardings
  )

  train_loader = pipeline.make_loader(
    config.data, "train", global_batch_size=batch, train=True, seed=config.seed
  )
  train_iter = iter(train_loader)
  ckpt = checkpoints.TrainingCheckpoints(workdir, model_metadata)
  state = ckpt.restore_latest(abstract_state, train_iter)
  if state is not None:
    _log("resumed from %s at step %d", workdir / checkpoints.LATEST, int(state.step))
  else:
    init_variables = _initial_variables(config, model, abstract_variables)
    state = steps.create_state(tx, rng, init_variables, state_shardings)
    del init_variables  # the host copy

  teacher = teacher_variables = teacher_shardings = None
  if config.distill.enabled:
    teacher, teacher_variables, teacher_shardings = _load_teacher(config, mesh)
  train_step = steps.JitTrainStep.from_config(
    config,
    mesh,
    state_shardings,
    model=model,
    tx=tx,
    schedule=schedule,
    teacher=teacher,
    teacher_shardings=teacher_shardings,
  )
  eval_fn = make_eval_fn(model, mesh, config.cpu_reductions)

  writer = (
    scalar_log.ScalarWriter(workdir / "tensorboard")
    if jax.process_index() == 0
    else scalar_log.NoWriter()
  )
  step = int(state.step)
  _log(
    "training %s for %d steps (%d per epoch) at batch %d on %d devices, %d processes",
    config.model.name,
    total_steps,
    steps_per_epoch,
    batch,
    jax.device_count(),
    jax.process_count(),
  )

  last_time, last_step, start_time, start_step = time.time(), step, time.time(), step
  eval_metrics = {}
  summary = RunSummary(config, total_steps, read_summary(workdir) if step else {})
  summary.select(*ckpt.best_record())

  def check_finite(step_metrics, at_step):
    values = jax.device_get(step_metrics)
    if not np.isfinite(values["loss"]):
      ckpt.wait()
      good = ckpt.latest.latest_step()
      raise NonFiniteLossError(
        f"non-finite loss {values['loss']} at step {at_step} (terms: "
        f"{ {k: float(v) for k, v in values.items() if k.startswith('loss_')} }); "
        f"the last good checkpoint is step {good} in {workdir / checkpoints.LATEST}. "
        "Lower optimizer.learning_rate or set optimizer.clip_norm, and check the data."
      )
    return values

  while step < total_steps:
    state, step_metrics = train_step(
      state, sharding.global_batch(next(train_iter), mesh), teacher_variables
    )
    step += 1
    end_of_epoch = step % steps_per_epoch == 0
    do_eval = (
      end_of_epoch
      or step == total_steps
      or (config.eval_every_steps and step % config.eval_every_steps == 0)
    )
    do_save = do_eval or (
      config.checkpoint_every_steps and step % config.checkpoint_every_steps == 0
    )
    if step % config.log_every_steps == 0 or do_save:
      values = check_finite(step_metrics, step)
      now = time.time()
      rate = (step - last_step) * batch / max(now - last_time, 1e-9)
      eta = (total_steps - step) * (now - start_time) / max(step - start_step, 1)
      writer.write_scalars(
        step,
        {
          **{k: float(v) for k, v in values.items()},
          "images_per_second": rate,
          "epoch": step / steps_per_epoch,
        },
      )
      summary.add_loss_terms(values)
      _log(
        "step %d/%d epoch %.2f loss %.5f = %s grad_norm %.3g lr %.3g | %.1f img/s | ETA %s",
        step,
        total_steps,
        step / steps_per_epoch,
        values["loss"],
        _format_terms(values),
        values["grad_norm"],
        values["learning_rate"],
        rate,
        _format_eta(eta),
      )
      last_time, last_step = now, step
    if do_eval:
      eval_metrics, _, _ = evaluate_split(
        model, state.variables, config, config.eval_split, mesh, eval_fn
      )
      writer.write_scalars(step, {f"{config.eval_split}/{k}": v for k, v in eval_metrics.items()})
      _log(
        "eval %s at step %d: SRCC %.4f PLCC %.4f KRCC %.4f",
        config.eval_split,
        step,
        eval_metrics["srcc"],
        eval_metrics["plcc"],
        eval_metrics["krcc"],
      )
      if ckpt.save_best(state, eval_metrics):
        summary.select(step, eval_metrics)
    if do_save:
      ckpt.save_latest(state, train_iter)
      _write_summary(workdir, summary.to_dict(step))
    if do_eval:  # the evaluation's time is not training throughput
      last_time = time.time()
  writer.close()
  ckpt.wait()
  ckpt.close()
  if not eval_metrics:  # resumed after the last step: evaluate what is there
    eval_metrics, _, _ = evaluate_split(
      model, state.variables, config, config.eval_split, mesh, eval_fn
    )
  else:
    _write_summary(workdir, summary.to_dict(step))
  return eval_metrics
