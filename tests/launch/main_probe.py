"""Stands in for `python -m mobileiqa_jax.main` where the launch tests start processes.

It parses main's own flags (so --config must load) and joins jax.distributed
through main's `initialize_distributed`, as the real run would, then proves
the processes are connected with one cross-process barrier, prints what it
found on a `PROBE {...}` line and exits without training.
"""

import json
import os

import jax
from jax.experimental import multihost_utils

from mobileiqa_jax import main as mobileiqa_main


def probe(argv):
  del argv
  mobileiqa_main.initialize_distributed()
  multihost_utils.sync_global_devices("launch probe")
  # pylint: disable-next=protected-access
  config, workdir = mobileiqa_main._CONFIG.value, mobileiqa_main._WORKDIR.value
  report = dict(
    process_index=jax.process_index(),
    process_count=jax.process_count(),
    config_model=config.model.name,
    batch_size=config.batch_size,
    data_dir=config.data.data_dir,
    workdir=workdir,
    cuda_visible_devices=jax.config.values.get("jax_cuda_visible_devices"),
    local_device_ids_env=os.environ.get("JAX_LOCAL_DEVICE_IDS"),
  )
  print("PROBE " + json.dumps(report), flush=True)


if __name__ == "__main__":
  mobileiqa_main.run_app(probe)
