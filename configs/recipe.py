"""The whole recipe in one job: teacher, distilled student, a baseline student
trained without distillation, the evaluation table, and the TFLite export.

  python -m mobileiqa_jax.main --config=configs/recipe.py:runlocal --workdir=runs/recipe

Config arg: a dataset (default synthetic), optionally ',runlocal'.
- runlocal (the README's first command): tiny networks on 128x128 synthetic
  images (2048 training, 512 validation, 512 test, generated once into a
  cache), 512 steps for the teacher (recipe.teacher_steps_scale) and 256 for
  each student, the distillation's feature terms weighted 0.1 instead of
  the paper's 1 (config.loss.dof_weight and levels_weight), and the
  teacher's score as a second target beside the label
  (config.loss.teacher_score_weight = 1; the paper has none). Its time and
  results, at one seed and over three (configs/seeds.py), are in the README
  ("How well the main job learns today").
- Without runlocal: the paper's networks and recipe per run;
  wants accelerators (see configs/teacher.py and configs/distill.py).
Runs land in WORKDIR/{teacher,student,baseline}; results.json holds the table
and each run's summary (steps, images, time, selected step, loss terms). Every
run chooses its best checkpoint on validation; test is only reported.
"""

from configs import default


def get_config(arg=None):
  config = default.get_config(arg)
  config.mode = "recipe"
  return config
