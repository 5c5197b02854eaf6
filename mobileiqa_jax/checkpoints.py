"""Model checkpoints: a network's variables plus what is needed to rebuild it.

A model checkpoint is one orbax checkpoint directory whose custom metadata
names the preset and field overrides, so `load_model(path)` needs nothing
else. orbax writes into a temporary directory and renames it when complete,
so a failed or interrupted save leaves no half-written checkpoint.
"""

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from mobileiqa_jax import models


def save_model(directory, variables, model_name: str, overrides: dict | None = None,
               *, force: bool = False, **metadata):
  """Writes `variables` of `models.create(model_name, **overrides)` to `directory`.

  Raises:
    FileExistsError: `directory` exists and `force` is False.
  """
  directory = epath.Path(directory)
  if directory.exists() and not force:
    raise FileExistsError(f"{directory} exists; choose a new directory or pass force=True")
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(
      directory, jax.tree.map(np.asarray, variables), force=force,
      custom_metadata=dict(metadata, model=model_name, overrides=dict(overrides or {})))
  checkpointer.wait_until_finished()


def is_model_checkpoint(directory) -> bool:
  directory = epath.Path(directory)
  return (directory / "_CHECKPOINT_METADATA").exists() and (directory / "_METADATA").exists()


def load_model(directory):
  """(module, variables, metadata) from a directory written by `save_model`.

  Raises:
    FileNotFoundError: `directory` is not a model checkpoint.
  """
  directory = epath.Path(directory)
  if not is_model_checkpoint(directory):
    raise FileNotFoundError(
        f"{directory}: not a model checkpoint (expected one written by "
        "`python -m mobileiqa_jax.convert` or by training)")
  checkpointer = ocp.StandardCheckpointer()
  metadata = dict(checkpointer.metadata(directory).custom_metadata or {})
  if "model" not in metadata:
    raise ValueError(f"{directory}: checkpoint metadata does not name its model")
  module = models.create(metadata["model"], **metadata.get("overrides", {}))
  return module, checkpointer.restore(directory), metadata


def count_params(tree) -> int:
  return int(sum(np.size(x) for x in jax.tree.leaves(tree)))


