"""The whole MobileIQA recipe in one job: teacher, distilled student, table.

Runs, each in its own sub-workdir (and each resumable like any run):
  teacher/    the teacher trained on labels;
  student/    the student distilled from that teacher;
  baseline/   (optional) the same student trained on labels alone for the
              same steps, to show what distillation adds;
then evaluates them all on the held-out splits and prints one table, and
exports the student to TFLite if config.recipe.export is set. With
config.recipe.hand_features the table also has the reference every network
must beat: a ridge fit on hand-made statistics (`hand_features`) of the same
training images, scored on the same splits.
"""

import json
import time

from etils import epath
import jax
import ml_collections
import numpy as np

from mobileiqa_jax import hand_features, metrics
from mobileiqa_jax.data import pipeline, preprocess
from mobileiqa_jax.jobs import evaluation, tables
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
  scale = config.recipe.teacher_steps_scale
  runs = {
    "teacher": _variant(
      config,
      model__name=config.recipe.teacher_model,
      distill__enabled=False,
      num_epochs=config.num_epochs * scale,
      num_train_steps=config.num_train_steps * scale,
    )
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
  if config.recipe.hand_features:
    start = time.time()
    results["features"] = fit_hand_features(config.data, config.eval.splits)
    summaries["features"] = {"wall_seconds": time.time() - start}
  for name, run_config in runs.items():
    eval_config = ml_collections.ConfigDict(run_config.to_dict())
    eval_config.eval.checkpoint = str(workdir / name)
    results[name] = evaluation.evaluate(eval_config, str(workdir / name), quiet=True)
    summaries[name] = loop.read_summary(workdir / name)
  if jax.process_index() == 0:
    print(tables.format_runs(results, summaries))
    (workdir / "results.json").write_text(
      json.dumps({"metrics": results, "runs": summaries}, indent=2)
    )
  if config.recipe.export:
    from mobileiqa_jax.jobs import export  # pylint: disable=g-import-not-at-top

    export.export_from_config(config, str(workdir / "student"))
  return results


def fit_hand_features(data_cfg: ml_collections.ConfigDict, eval_splits) -> dict:
  """The hand-features reference: a `hand_features.RidgeFit` on the training
  split's images, as the networks see them (decoded and resized, unflipped),
  scored on each of `eval_splits`. Returns {split: metrics}."""
  decode = preprocess.DecodeAndResize(data_cfg.height, data_cfg.width)

  def rows(split):
    source = pipeline.make_source(data_cfg, split)
    examples = [decode.map(source[i]) for i in range(len(source))]
    features = np.stack([hand_features.features(e["image"]) for e in examples])
    return features, np.asarray([e["label"] for e in examples])

  fit = hand_features.RidgeFit().fit(*rows("train"))
  results = {}
  for split in eval_splits:
    features, labels = rows(split)
    results[split] = metrics.correlations(fit.predict(features), labels)
  return results


METRICS = ("srcc", "plcc", "krcc")


def _mean_sd(values) -> dict:
  values = np.asarray(values, np.float64)
  sd = float(values.std(ddof=1)) if values.size > 1 else float("nan")
  return {"mean": float(values.mean()), "sd": sd, "values": values.tolist()}


def summarize_seeds(per_seed: dict) -> dict:
  """{seed: {run: {split: metrics}}} -> mean ± sd of every run, split and
  metric over the seeds, and the distillation gain (student minus baseline)."""
  seeds = list(per_seed)
  first = per_seed[seeds[0]]
  rows = {
    run: {
      split: {k: _mean_sd([per_seed[s][run][split][k] for s in seeds]) for k in METRICS}
      for split in splits
    }
    for run, splits in first.items()
  }
  gain = {}
  if "student" in first and "baseline" in first:
    diff = lambda s, split, k: per_seed[s]["student"][split][k] - per_seed[s]["baseline"][split][k]
    gain = {
      split: {k: _mean_sd([diff(s, split, k) for s in seeds]) for k in METRICS}
      for split in first["student"]
    }
  return {"seeds": seeds, "runs": rows, "gain": gain}


def format_seeds(summary: dict) -> str:
  """Mean ± sd per run and split, the distillation gain (student minus
  baseline) likewise, then the gain in SRCC at each seed."""
  seeds = summary["seeds"]
  lines = [f"{len(seeds)} seeds: {', '.join(map(str, seeds))} (mean ± sd)"]
  lines.append(f"{'run':<10}{'split':<12}" + "".join(f"{k.upper():>17}" for k in METRICS))
  for run, splits in summary["runs"].items():
    for split, m in splits.items():
      cells = "".join(f"{m[k]['mean']:>10.4f} ± {m[k]['sd']:<5.3f}" for k in METRICS)
      lines.append(f"{run:<10}{split:<12}{cells}")
  for split, m in summary["gain"].items():
    cells = "".join(f"{m[k]['mean']:>+10.4f} ± {m[k]['sd']:<5.3f}" for k in METRICS)
    lines.append(f"{'gain':<10}{split:<12}{cells}")
  for split, m in summary["gain"].items():
    srcc = m["srcc"]
    per_seed = " ".join(f"{v:+.4f}" for v in srcc["values"])
    lines.append(
      f"distillation gain, {split} SRCC: {srcc['mean']:+.4f} ± {srcc['sd']:.4f} "
      f"(per seed: {per_seed})"
    )
  return "\n".join(lines)


def over_seeds(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """The recipe at config.recipe.num_seeds seeds (config.seed, config.seed + 1,
  ...), each in WORKDIR/seed_<seed> (resumable as any recipe); prints the
  mean ± sd table and writes it to WORKDIR/seeds.json."""
  workdir, start = epath.Path(workdir), time.time()
  per_seed = {}
  for seed in range(config.seed, config.seed + config.recipe.num_seeds):
    seed_config = _variant(config, seed=seed, recipe__export=False)
    seed_config.mode = "recipe"
    per_seed[seed] = teacher_then_student(seed_config, str(workdir / f"seed_{seed}"))
  summary = {**summarize_seeds(per_seed), "wall_seconds": time.time() - start}
  if jax.process_index() == 0:
    print(format_seeds(summary))
    print(f"wall time {summary['wall_seconds'] / 60:.1f} min; per run: WORKDIR/seed_*/results.json")
    (workdir / "seeds.json").write_text(json.dumps(summary, indent=2))
  return summary
