"""The evaluation job: a checkpoint scored on the held-out splits."""

import json

from etils import epath
import jax
import jax.numpy as jnp
import ml_collections

from mobileiqa_jax import checkpoints
from mobileiqa_jax.jobs import tables
from mobileiqa_jax.train import loop, sharding


def evaluate(config: ml_collections.ConfigDict, workdir: str, quiet: bool = False) -> dict:
  """Scores `config.eval.checkpoint` (default: `workdir`) on each of
  `config.eval.splits`, prints a table and writes eval.json in workdir."""
  source = config.eval.checkpoint or workdir
  model, variables, metadata = checkpoints.load_model(source)
  model = model.clone(dtype=jnp.dtype(config.model.dtype))
  mesh = sharding.make_mesh(config.sharding.model_axis)
  variables = jax.device_put(
    variables, sharding.tree_shardings(variables, mesh, config.sharding.min_shard_elements)
  )
  eval_fn = loop.make_eval_fn(model, mesh, config.cpu_reductions)  # one compilation for every split
  results = {}
  for split in config.eval.splits:
    results[split], _, _ = loop.evaluate_split(model, variables, config, split, mesh, eval_fn)
  if jax.process_index() == 0:
    if not quiet:
      print(f"{metadata['model']} from {source}")
      print(tables.format_runs({metadata["model"]: results}))
    out = epath.Path(workdir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps({"checkpoint": str(source), **results}, indent=2))
  return results
