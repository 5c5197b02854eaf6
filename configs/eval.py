"""Evaluation: SRCC / PLCC / KRCC of a checkpoint on the validation and test splits.

  python -m mobileiqa_jax.main --config=configs/eval.py:uhd_iqa \
      --config.eval.checkpoint=runs/student --workdir=runs/student

The checkpoint is a training workdir (its best checkpoint) or a model
checkpoint from `python -m mobileiqa_jax.convert`. Prints a table and writes
eval.json into the workdir. Config arg: a dataset, optionally ',runlocal'
(which must match how the checkpoint was trained: the image size).
"""

from configs import default


def get_config(arg=None):
  config = default.get_config(arg)
  config.mode = "eval"
  return config
