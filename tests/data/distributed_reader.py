"""One JAX process of the two-process sharding test (run by test_pipeline.py).

  python -m tests.data.distributed_reader PORT PROCESS_ID CSV OUT.npz

Reads a CSV dataset whose labels identify rows through the loaders with the
process index/count jax.distributed reports, and saves what it saw.
"""

import sys

import jax
import numpy as np


def main(port: str, process_id: str, csv_path: str, out: str) -> None:
  jax.distributed.initialize(
    coordinator_address=f"127.0.0.1:{port}",
    num_processes=2,
    process_id=int(process_id),
    initialization_timeout=60,
  )
  # Imported after initialize so nothing touches the backend before it.
  from mobileiqa_jax.data import (
    config,  # pylint: disable=g-import-not-at-top
    pipeline,  # pylint: disable=g-import-not-at-top
  )

  cfg = config.get_config()
  cfg.name, cfg.csv, cfg.csv_mos_range, cfg.split = "csv", csv_path, (0.0, 100.0), "random"
  cfg.height = cfg.width = 8
  cfg.num_workers = 0
  evaluation = list(pipeline.make_loader(cfg, "train", global_batch_size=4, train=False, seed=0))
  training = list(
    pipeline.make_loader(cfg, "train", global_batch_size=4, train=True, seed=0, num_epochs=1)
  )
  np.savez(
    out,
    process_index=jax.process_index(),
    process_count=jax.process_count(),
    eval_labels=np.concatenate([b["label"] for b in evaluation]),
    eval_valid=np.concatenate([b["valid"] for b in evaluation]),
    eval_batches=len(evaluation),
    train_labels=np.concatenate([b["label"] for b in training]),
  )
  jax.distributed.shutdown()


if __name__ == "__main__":
  main(*sys.argv[1:])
