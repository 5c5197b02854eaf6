"""Device mesh and sharding rules.

Data parallelism over a `data` axis spanning every device of every host; an
optional `model` axis splits large kernels (the MAL attention linears reach
2420x2420) so that parameters and optimiser state need not be replicated.
The rule depends only on a leaf's shape, so parameters, Adam moments and
checkpoints restored onto the mesh all agree without name tables.
"""

import jax
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

from mobileiqa_jax import errors

DATA, MODEL = "data", "model"


def make_mesh(model_axis: int = 1, devices=None) -> Mesh:
  """A (data, model) mesh over `devices` (default: all global devices)."""
  devices = list(jax.devices() if devices is None else devices)
  if model_axis < 1 or len(devices) % model_axis:
    raise errors.InvalidInput(
      f"sharding.model_axis={model_axis} does not divide {len(devices)} devices"
    )
  shape = (len(devices) // model_axis, model_axis)
  try:
    grid = mesh_utils.create_device_mesh(shape, devices)
  except (ValueError, NotImplementedError, AssertionError):
    grid = np.asarray(devices).reshape(shape)  # CPU and unusual topologies
  return Mesh(grid, (DATA, MODEL))


def leaf_spec(shape, model_axis: int, min_elements: int) -> P:
  """Split the last (else first) dimension of a large leaf over `model`."""
  if model_axis == 1 or len(shape) < 2 or int(np.prod(shape)) < min_elements:
    return P()
  for dim in (len(shape) - 1, 0):
    if shape[dim] % model_axis == 0:
      spec = [None] * len(shape)
      spec[dim] = MODEL
      return P(*spec)
  return P()


def tree_shardings(abstract_tree, mesh: Mesh, min_elements: int = 2**18):
  """NamedShardings for every leaf of an (abstract) tree under the rule above."""
  model_axis = mesh.shape[MODEL]
  return jax.tree.map(
    lambda leaf: NamedSharding(mesh, leaf_spec(np.shape(leaf), model_axis, min_elements)),
    abstract_tree,
  )


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension split over `data`, replicated over `model`."""
  return NamedSharding(mesh, P(DATA))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def global_batch(local_batch: dict, mesh: Mesh) -> dict:
  """This process's part of the batch -> global arrays sharded over `data`."""
  sharding = batch_sharding(mesh)
  return {
    k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
    for k, v in local_batch.items()
  }
