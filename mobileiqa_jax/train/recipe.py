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

  results, summaries = {}, {}
  for name, run_config in runs.items():
    eval_config = ml_collections.ConfigDict(run_config.to_dict())
    eval_config.eval.checkpoint = str(workdir / name)
    results[name] = loop.evaluate(eval_config, str(workdir / name), quiet=True)
    summaries[name] = loop.read_summary(workdir / name)
  if jax.process_index() == 0:
    print(format_runs(results, summaries))
    (workdir / "results.json").write_text(
      json.dumps({"metrics": results, "runs": summaries}, indent=2)
    )
  if config.recipe.export:
    from mobileiqa_jax.export import job  # pylint: disable=g-import-not-at-top

    job.export_from_config(config, str(workdir / "student"))
  return results


def _describe_run(summary: dict) -> list[str]:
  """The run's columns: steps, images seen, wall time, selected checkpoint."""
  if not summary:
    return ["?", "?", "?", "?"]
  seconds = int(summary["wall_seconds"])
  selected = summary["selected_step"]
  return [
    str(summary["steps"]),
    str(summary["images_seen"]),
    f"{seconds // 60}m{seconds % 60:02d}s",
    f"{'?' if selected is None else selected} ({summary['selection_split']})",
  ]


def format_runs(results: dict, summaries: dict) -> str:
  """One row per run and split: what the run did (on its first row) and its
  correlations; the selected checkpoint is the one scored."""
  header = ["run", "steps", "images", "time", "selected step", "split", "SRCC", "PLCC", "KRCC"]
  widths = [8, 5, 6, 6, 15, 10, 7, 7, 7]
  right = {"steps", "images", "time", "SRCC", "PLCC", "KRCC"}

  def row(cells):
    return "  ".join(
      c.rjust(w) if h in right else c.ljust(w) for c, w, h in zip(cells, widths, header)
    ).rstrip()

  lines = [row(header)]
  for run, splits in results.items():
    described = [run, *_describe_run(summaries.get(run, {}))]
    for split, m in splits.items():
      lines.append(row([*described, split, *(f"{m[k]:.4f}" for k in ("srcc", "plcc", "krcc"))]))
      described = [""] * len(described)
  return "\n".join(lines)
