"""The recipe's tables: one seed's runs, and mean ± sd over seeds."""

import json

import numpy as np
import pytest

from configs import default
from mobileiqa_jax.jobs import recipe, tables


def _metrics(srcc):
  return {"srcc": srcc, "plcc": srcc + 0.01, "krcc": srcc - 0.1, "sum": 3 * srcc - 0.09}


def test_run_table_says_what_each_run_did():
  results = {"teacher": {"validation": _metrics(0.8), "test": _metrics(0.7)}}
  summaries = {
    "teacher": {
      "steps": 128,
      "images_seen": 2048,
      "wall_seconds": 301.5,
      "selected_step": 96,
      "selection_split": "validation",
    }
  }
  lines = tables.format_runs(results, summaries).splitlines()
  assert lines[0].split() == [
    "run", "steps", "images", "time", "selected", "step", "split", "SRCC", "PLCC", "KRCC"
  ]  # fmt: skip
  assert lines[1].split() == [
    "teacher", "128", "2048", "5m01s", "96", "(validation)", "validation",
    "0.8000", "0.8100", "0.7000",
  ]  # fmt: skip
  assert lines[2].split() == ["test", "0.7000", "0.7100", "0.6000"]
  # Without summaries (the evaluation job's table), the runs' columns only.
  lines = tables.format_runs(results).splitlines()
  assert [line.split() for line in lines] == [
    ["run", "split", "SRCC", "PLCC", "KRCC"],
    ["teacher", "validation", "0.8000", "0.8100", "0.7000"],
    ["test", "0.7000", "0.7100", "0.6000"],
  ]


def test_seed_summary_is_mean_sd_and_gain_per_seed():
  student, baseline = [0.60, 0.70, 0.65], [0.55, 0.72, 0.60]
  per_seed = {
    seed: {
      "student": {"validation": _metrics(s), "test": _metrics(s - 0.05)},
      "baseline": {"validation": _metrics(b), "test": _metrics(b - 0.05)},
    }
    for seed, s, b in zip((1, 2, 3), student, baseline)
  }
  summary = recipe.summarize_seeds(per_seed)
  srcc = summary["runs"]["student"]["validation"]["srcc"]
  assert srcc["mean"] == pytest.approx(np.mean(student))
  assert srcc["sd"] == pytest.approx(np.std(student, ddof=1))
  gain = summary["gain"]["test"]["srcc"]
  assert gain["values"] == pytest.approx(np.subtract(student, baseline))
  assert gain["mean"] == pytest.approx(np.mean(np.subtract(student, baseline)))
  table = recipe.format_seeds(summary)
  assert "3 seeds: 1, 2, 3" in table
  assert "per seed: +0.0500 -0.0200 +0.0500" in table
  json.dumps(summary)  # what seeds.json holds


def test_over_seeds_runs_the_recipe_once_per_seed(monkeypatch, tmp_path, capsys):
  seen = []

  def fake_recipe(config, workdir):
    seen.append((config.seed, config.mode, config.recipe.export, workdir))
    return {"student": {"test": _metrics(0.5)}, "baseline": {"test": _metrics(0.4)}}

  monkeypatch.setattr(recipe, "teacher_then_student", fake_recipe)
  config = default.get_config("runlocal")
  config.seed, config.recipe.num_seeds = 7, 2
  summary = recipe.over_seeds(config, str(tmp_path))
  assert seen == [
    (7, "recipe", False, str(tmp_path / "seed_7")),
    (8, "recipe", False, str(tmp_path / "seed_8")),
  ]
  assert summary["gain"]["test"]["srcc"]["mean"] == pytest.approx(0.1)
  assert json.loads((tmp_path / "seeds.json").read_text())["seeds"] == [7, 8]
  assert "distillation gain, test SRCC: +0.1000" in capsys.readouterr().out


def test_hand_features_row_fits_on_train_and_scores_each_split(tmp_path):
  config = default.get_config("runlocal")
  config.data.height = config.data.width = 64
  config.data.synthetic.update(
    height=64, width=64, num_train=96, num_validation=48, num_test=48, cache_dir=str(tmp_path)
  )
  results = recipe.fit_hand_features(config.data, ("validation", "test"))
  assert list(results) == ["validation", "test"]
  for split in results.values():
    assert split["srcc"] > 0.2, split  # the statistics say something about damage
  table = tables.format_runs({"features": results}, {"features": {"wall_seconds": 3.2}})
  assert table.splitlines()[1].split()[:6] == ["features", "-", "-", "0m03s", "-", "validation"]


@pytest.mark.parametrize("num_epochs, num_train_steps", [(2, 0), (0, 40)])
def test_the_teacher_trains_its_scale_of_the_students_steps(
  monkeypatch, tmp_path, num_epochs, num_train_steps
):
  trained = {}
  monkeypatch.setattr(
    recipe.loop,
    "train_and_evaluate",
    lambda config, workdir: trained.update({workdir.rsplit("/", 1)[-1]: config}),
  )
  monkeypatch.setattr(recipe.evaluation, "evaluate", lambda *args, **kwargs: {})
  monkeypatch.setattr(recipe.loop, "read_summary", lambda workdir: {})
  config = default.get_config("runlocal")
  config.num_epochs, config.num_train_steps = num_epochs, num_train_steps
  config.recipe.teacher_steps_scale = 3
  config.recipe.export = config.recipe.hand_features = False
  recipe.teacher_then_student(config, str(tmp_path))
  assert sorted(trained) == ["baseline", "student", "teacher"]
  assert (trained["teacher"].num_epochs, trained["teacher"].num_train_steps) == (
    3 * num_epochs,
    3 * num_train_steps,
  )
  for student in ("student", "baseline"):
    assert (trained[student].num_epochs, trained[student].num_train_steps) == (
      num_epochs,
      num_train_steps,
    )
