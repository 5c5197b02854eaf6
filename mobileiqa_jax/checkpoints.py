"""Checkpoints: model checkpoints for scoring and export, and training runs.

A *model checkpoint* is one orbax checkpoint directory whose custom metadata
names the preset and field overrides, so `load_model(path)` needs nothing
else (`python -m mobileiqa_jax.convert` writes these).

A *training workdir* holds two orbax CheckpointManagers:
  checkpoints/latest/<step>/  variables, training (step, optimiser state, rng),
                              data (each process's grain iterator state), model
  checkpoints/best/<step>/    variables and model, for the best evaluation
                              (SRCC + PLCC + KRCC), with its metrics
Resuming reads `latest`; scoring, export and distillation read `best` (or
`latest` before any evaluation). orbax writes each checkpoint into a temporary
directory and renames it when complete, so an interrupted save is never read.
"""

import json
import os

from etils import epath
import grain
import jax
import numpy as np
import orbax.checkpoint as ocp

from mobileiqa_jax import convert, errors, models

LATEST = "checkpoints/latest"
BEST = "checkpoints/best"


def absolute(path) -> epath.Path:
  """`path` with a relative local path made absolute (orbax refuses relative
  ones); URLs such as gs://... pass unchanged."""
  path = epath.Path(path)
  return path if "://" in os.fspath(path) else epath.Path(os.path.abspath(path))


def save_model(
  directory,
  variables,
  model_name: str,
  overrides: dict | None = None,
  *,
  force: bool = False,
  **metadata,
):
  """Writes `variables` of `models.create(model_name, **overrides)` to `directory`.

  Raises:
    FileExistsError: `directory` exists and `force` is False.
  """
  directory = absolute(directory)
  if directory.exists() and not force:
    raise FileExistsError(f"{directory} exists; choose a new directory or pass force=True")
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(
    directory,
    jax.tree.map(np.asarray, variables),
    force=force,
    custom_metadata=dict(metadata, model=model_name, overrides=dict(overrides or {})),
  )
  checkpointer.wait_until_finished()


def is_model_checkpoint(directory) -> bool:
  directory = epath.Path(directory)
  return (directory / "_CHECKPOINT_METADATA").exists() and (directory / "_METADATA").exists()


def _restore_on_this_host(directory: epath.Path):
  """A StandardSave item as NumPy arrays, whatever topology saved it.

  orbax restores sharded arrays only onto a target that says where they go;
  this one puts every array on one local device, so a checkpoint written by
  a multi-host job loads in a notebook or on a phone-export machine.
  """
  # The item's own metadata: a Checkpointer's `metadata` also looks for a
  # step-level file, which an item inside a CheckpointManager step lacks
  # (orbax then logs a warning on every load of a workdir).
  tree = ocp.StandardCheckpointHandler().metadata(directory)
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), tree)
  return jax.device_get(ocp.StandardCheckpointer().restore(directory, target))


def _from_workdir(workdir: epath.Path, which: str):
  for sub in (BEST, LATEST) if which == "best" else (LATEST,):
    if (workdir / sub).exists():
      manager = ocp.CheckpointManager(workdir / sub)
      step = manager.latest_step()
      if step is not None:
        step_dir = workdir / sub / str(step)
        variables = _restore_on_this_host(step_dir / "variables")
        metadata = json.loads((step_dir / "model" / "metadata").read_text())
        return variables, dict(metadata, step=step, source=str(step_dir))
  return None


def load_model(path, which: str = "best"):
  """(module, variables, metadata) from a model checkpoint, a training workdir,
  or a .pkl/.pth/.pt state dict of the original PyTorch code.

  From a workdir: its best checkpoint (or its latest if there is no best
  yet), or with which='latest' the latest. A PyTorch file is read without
  PyTorch or pickle's code execution, its network recognised from its keys
  and converted in memory (`mobileiqa_jax.convert`).

  Raises:
    FileNotFoundError: `path` is none of these, or the workdir has no
      checkpoint yet.
    ValueError: a PyTorch file that is not a MobileIQA state dict, damaged,
      or unsafe (the message says which).
  """
  if str(path).endswith(convert.torch_pickle.SUFFIXES):  # the original code's torch.save files
    module, variables, name = convert.load_torch_model(path)
    return module, variables, dict(model=name, source=str(path))
  path = absolute(path)
  if is_model_checkpoint(path):
    metadata = dict(ocp.StandardCheckpointer().metadata(path).custom_metadata or {})
    variables = _restore_on_this_host(path)
  else:
    found = _from_workdir(path, which) if path.exists() else None
    if found is None:
      raise errors.MissingInput(
        f"{path}: neither a model checkpoint (from `python -m mobileiqa_jax.convert`) "
        f"nor a training workdir with checkpoints under {BEST} or {LATEST}"
      )
    variables, metadata = found
  if "model" not in metadata:
    raise errors.InvalidInput(f"{path}: checkpoint metadata does not name its model")
  module = models.create(metadata["model"], **metadata.get("overrides", {}))
  return module, variables, metadata


def _barrier_prefix(name: str):
  # Both managers save at an evaluation step; orbax names its cross-process
  # barriers by step, so without a prefix the two saves would share one.
  return ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=name)


class TrainingCheckpoints:
  """The `latest` and `best` managers of a training workdir."""

  def __init__(self, workdir, model_metadata: dict):
    workdir = absolute(workdir)
    self.model_metadata = dict(model_metadata)
    self.latest = ocp.CheckpointManager(
      workdir / LATEST,
      options=ocp.CheckpointManagerOptions(
        max_to_keep=1,  # resuming needs only the newest
        enable_async_checkpointing=True,
        multiprocessing_options=_barrier_prefix("latest"),
      ),
    )
    self.best = ocp.CheckpointManager(
      workdir / BEST,
      options=ocp.CheckpointManagerOptions(
        max_to_keep=1,
        best_fn=lambda metrics: metrics["sum"],
        best_mode="max",
        enable_async_checkpointing=True,
        multiprocessing_options=_barrier_prefix("best"),
      ),
    )

  def save_latest(self, state, iterator):
    step = int(state.step)
    self.latest.save(
      step,
      args=ocp.args.Composite(
        variables=ocp.args.StandardSave(state.variables),
        training=ocp.args.StandardSave(
          {"step": state.step, "opt_state": state.opt_state, "rng": state.rng}
        ),
        data=grain.checkpoint.CheckpointSave(iterator),
        model=ocp.args.JsonSave(self.model_metadata),
      ),
    )

  def save_best(self, state, metrics: dict):
    """Saves when `metrics['sum']` beats the best so far; returns whether it did."""
    # The previous save may still be in flight, and until it lands orbax
    # knows no metrics for it.
    self.best.wait_until_finished()
    best_step = self.best.best_step()
    if best_step is not None and self.best.metrics(best_step)["sum"] >= metrics["sum"]:
      return False
    step = int(state.step)
    if step in self.best.all_steps():
      return False
    self.best.save(
      step,
      metrics={k: float(v) for k, v in metrics.items()},
      args=ocp.args.Composite(
        variables=ocp.args.StandardSave(state.variables),
        model=ocp.args.JsonSave(self.model_metadata),
      ),
    )
    return True

  def best_record(self) -> tuple[int | None, dict]:
    """(step, evaluation metrics) of the best checkpoint, or (None, {})."""
    self.best.wait_until_finished()
    step = self.best.best_step()
    return (None, {}) if step is None else (step, dict(self.best.metrics(step)))

  def restore_latest(self, abstract_state, iterator):
    """The last saved state (onto `abstract_state`'s shardings), or None.

    Also moves `iterator` to where that state's run had its data.
    """
    step = self.latest.latest_step()
    if step is None:
      return None
    abstract_training = {
      "step": abstract_state.step,
      "opt_state": abstract_state.opt_state,
      "rng": abstract_state.rng,
    }
    restored = self.latest.restore(
      step,
      args=ocp.args.Composite(
        variables=ocp.args.StandardRestore(abstract_state.variables),
        training=ocp.args.StandardRestore(abstract_training),
        data=grain.checkpoint.CheckpointRestore(iterator),
      ),
    )
    variables, training = restored["variables"], restored["training"]
    return abstract_state.replace(
      step=training["step"],
      params=variables["params"],
      batch_stats=variables["batch_stats"],
      opt_state=training["opt_state"],
      rng=training["rng"],
    )

  def wait(self):
    self.latest.wait_until_finished()
    self.best.wait_until_finished()

  def close(self):
    self.latest.close()
    self.best.close()
