"""The whole recipe at several seeds: how much of a result is the seed.

  python -m mobileiqa_jax.main --config=configs/seeds.py:runlocal --workdir=runs/seeds

Runs configs/recipe.py's job (teacher, distilled student, baseline student;
no export) at seeds config.seed, config.seed + 1, ... (config.recipe.num_seeds,
default 3), each in WORKDIR/seed_<seed>, and prints for every run and split
the mean ± sd of SRCC, PLCC and KRCC over the seeds, and the distillation
gain (distilled minus baseline student) at each seed and as mean ± sd.
WORKDIR/seeds.json holds the same. Each seed's runs select their best
checkpoint on validation; the seed changes initialisation and data order,
not the data or its split.

Config arg: as configs/recipe.py (a dataset, optionally ',runlocal').
With runlocal, about three times the README's main job on a 2-core CPU.
"""

from configs import default


def get_config(arg=None):
  config = default.get_config(arg)
  config.mode = "seeds"
  config.recipe.export = False
  return config
