"""The whole recipe in one job: teacher, distilled student, a baseline student
trained without distillation, the evaluation table, and the TFLite export.

  python -m mobileiqa_jax.main --config=configs/recipe.py:runlocal --workdir=runs/recipe

Config arg: a dataset (default synthetic), optionally ',runlocal'.
- runlocal (the README's first command): tiny networks on 128x128 synthetic
  images, about 10-15 minutes on a 2-core CPU. Expected test SRCC on the
  synthetic set roughly 0.5-0.8 (teacher and students), seed-dependent.
- Without runlocal: the paper's networks and recipe (DESIGN.md) per run;
  wants accelerators (see configs/teacher.py and configs/distill.py).
Runs land in WORKDIR/{teacher,student,baseline}; results.json holds the table.
"""

from mobileiqa_jax.train import defaults


def get_config(arg=None):
  dataset, flags = defaults.parse_arg(arg)
  config = defaults.base_config(dataset, "runlocal" in flags)
  config.mode = "recipe"
  return config
