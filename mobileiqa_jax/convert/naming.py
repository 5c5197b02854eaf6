"""The one rule that maps PyTorch state-dict entries onto Flax variables.

Our module names mirror the PyTorch ones, with numeric path segments folded
into the name before them (`blocks.1.0.conv_pw` -> `blocks_1_0/conv_pw`,
`MALs.0.attention_module.2` -> `MALs_0/attention_module_2`), so the converter
is this rule plus a check against the model's own variable tree, not a table.
"""

import numpy as np

# PyTorch leaf name -> (Flax collection, Flax leaf name) for tensors whose role
# does not depend on rank.
_LEAVES = {
  "bias": ("params", "bias"),
  "running_mean": ("batch_stats", "mean"),
  "running_var": ("batch_stats", "var"),
  "gamma": ("params", "gamma"),
}
# Bookkeeping that has no Flax counterpart.
IGNORED_LEAVES = frozenset({"num_batches_tracked"})


def module_path(torch_module: str) -> tuple[str, ...]:
  """'blocks.1.0.conv_pw' -> ('blocks_1_0', 'conv_pw')."""
  path: list[str] = []
  for part in torch_module.split("."):
    if part.isdigit() and path:
      path[-1] = f"{path[-1]}_{part}"
    else:
      path.append(part)
  return tuple(path)


def flax_entry(name: str, value: np.ndarray):
  """Maps one state-dict entry to (collection, path, array), or None if ignored.

  Conv kernels go OIHW -> HWIO, linear kernels (out, in) -> (in, out), and a
  1-D `weight` is a normalisation scale.
  Raises ValueError for a leaf name that no layer of ours has.
  """
  module, _, leaf = name.rpartition(".")
  if leaf in IGNORED_LEAVES:
    return None
  value = np.asarray(value)
  if leaf == "weight":
    if value.ndim == 4:
      collection, flax_leaf, value = "params", "kernel", value.transpose(2, 3, 1, 0)
    elif value.ndim == 2:
      collection, flax_leaf, value = "params", "kernel", value.T
    elif value.ndim == 1:
      collection, flax_leaf = "params", "scale"
    else:
      raise ValueError(f"{name}: a weight of rank {value.ndim} fits no layer")
  elif leaf in _LEAVES:
    collection, flax_leaf = _LEAVES[leaf]
  else:
    raise ValueError(f"{name}: unknown tensor kind '{leaf}'")
  return collection, module_path(module) + (flax_leaf,), np.ascontiguousarray(value)


def to_variables(state_dict, strip_prefix: str = ""):
  """A whole state dict -> nested Flax variables {collection: {module: ...}}.

  Entries whose name does not start with `strip_prefix` are left out; the
  prefix itself is removed (e.g. 'local_cnn.' to load a backbone on its own).
  """
  variables: dict = {}
  for name, value in state_dict.items():
    if not name.startswith(strip_prefix):
      continue
    entry = flax_entry(name[len(strip_prefix) :], value)
    if entry is None:
      continue
    collection, path, array = entry
    node = variables.setdefault(collection, {})
    for key in path[:-1]:
      node = node.setdefault(key, {})
    node[path[-1]] = array
  return variables
