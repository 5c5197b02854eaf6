"""The whole MobileIQA recipe in one job: teacher, distilled student, table.

Runs, each in its own sub-workdir (and each resumable like any run):
  teacher/    the teacher trained on labels;
  student/    the student distilled from that teacher;
  baseline/   (optional) the same student trained on labels alone for the
              same steps, to show what distillation adds;
then evaluates them all on the held-out splits and prints one table, and
exports the student to TFLite if config.recipe.export is set.
"""

import json

from etils import epath
import jax
import ml_collections

from mobileiqa_jax.train import loop


def _variant(config, **changes) -> ml_collections.ConfigDict:
  variant = ml_collections.ConfigDict(config.to_dict())
  for dotted, value in changes.items():
    node = variant
    *parents, leaf = dotted.split("__")
    for p in parents:
      node = node[p]
    node[leaf] = value
  variant.mode = "train"
  return variant


def teacher_then_student(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs the recipe; returns {run: {split: metrics}}."""
  workdir = epath.Path(workdir)
  runs = {
    "teacher": _variant(config, model__name=config.recipe.teacher_model, distill__enabled=False)
  }
  runs["student"] = _variant(
    config,
    model__name=config.recipe.student_model,
    distill__enabled=True,
    distill__teacher=str(workdir / "teacher"),
  )
  if config.recipe.baseline:
    runs["baseline"] = _variant(
      config, model__name=config.recipe.student_model, distill__enabled=False
    )
  for name, run_config in runs.items():
    loop.train_and_evaluate(run_config, str(workdir / name))

  results = {}
  for name, run_config in runs.items():
    eval_config = ml_collections.ConfigDict(run_config.to_dict())
    eval_config.eval.checkpoint = str(workdir / name)
    results[name] = loop.evaluate(eval_config, str(workdir / name), quiet=True)
  if jax.process_index() == 0:
    print(format_runs(results))
    (workdir / "results.json").write_text(json.dumps(results, indent=2))
  if config.recipe.export:
    from mobileiqa_jax.export import job  # pylint: disable=g-import-not-at-top

    job.export_from_config(config, str(workdir / "student"))
  return results


def format_runs(results: dict) -> str:
  lines = [f"{'run':<10}{'split':<12}{'SRCC':>8}{'PLCC':>8}{'KRCC':>8}"]
  for run, splits in results.items():
    lines += [
      f"{run:<10}{split:<12}{m['srcc']:>8.4f}{m['plcc']:>8.4f}{m['krcc']:>8.4f}"
      for split, m in splits.items()
    ]
  return "\n".join(lines)
