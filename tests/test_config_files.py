"""Config files load from any folder, as --config and the console script load them."""

import os
import subprocess
import sys

import pytest

from mobileiqa_jax import config_files, models
from mobileiqa_jax.train import loop
from tests.conftest import REPO


def _without_repo_on_path():
  """An environment where only the installed package is importable, not the
  checkout's top level (so `configs` is not found by accident)."""
  env = dict(os.environ)
  env.pop("PYTHONPATH", None)
  return env


def _run_in(folder, code):
  """`python -c code` in `folder`, without the checkout on the path."""
  return subprocess.run(
    [sys.executable, "-c", code],
    cwd=folder,
    env=_without_repo_on_path(),
    capture_output=True,
    text=True,
    timeout=300,
  )


def test_a_config_loads_from_another_folder(tmp_path):
  code = (
    "import sys; from mobileiqa_jax import config_files; "
    "assert 'configs' not in sys.modules; "
    f"c = config_files.load({str(REPO / 'configs/distill.py')!r} + ':runlocal'); "
    "print(c.model.name, c.distill.enabled, c.data.height)"
  )
  result = _run_in(tmp_path, code)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.split() == ["student_tiny", "True", "128"]


def test_the_console_entry_finds_configs_from_another_folder(tmp_path):
  # What `mobileiqa --config=...` does before absl parses the flag: the
  # eval job then fails on the empty workdir, after the config has loaded.
  code = (
    "import sys; from mobileiqa_jax import main; "
    f"sys.argv = ['mobileiqa', '--config={REPO / 'configs/eval.py'}:runlocal', "
    "'--workdir=empty', '--config.eval.checkpoint=missing']; main.cli()"
  )
  result = _run_in(tmp_path, code)
  assert "No module named 'configs'" not in result.stderr, result.stderr[-3000:]
  assert result.returncode == 1, result.stderr[-3000:]
  assert "error:" in result.stderr and "missing" in result.stderr, result.stderr[-3000:]


def test_relative_paths_fall_back_to_the_checkout(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert config_files.load("configs/teacher.py").model.name == "teacher"
  assert config_files.load("configs/teacher.py:runlocal").model.name == "teacher_tiny"


def test_a_missing_config_file_is_named(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  with pytest.raises(FileNotFoundError, match="configs/nope.py"):
    config_files.load("configs/nope.py:runlocal")


@pytest.mark.parametrize(
  "argv, expected",
  [
    (["--config=configs/a.py:runlocal", "--workdir=w"], "configs/a.py"),
    (["--workdir", "w", "--config", "/x/configs/b.py"], "/x/configs/b.py"),
    (["--config.seed=3", "--workdir=w"], None),
  ],
)
def test_the_config_flag_is_found_in_argv(argv, expected):
  assert config_files.config_flag_path(argv) == expected


def _failed_main(tmp_path, override):
  """stderr of main on the runlocal teacher with `override`, which must fail
  as a user error: exit status 1, no traceback, no data made."""
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "mobileiqa_jax.main",
      "--config=configs/teacher.py:runlocal",
      override,
      f"--config.data.synthetic.cache_dir={tmp_path / 'cache'}",
      f"--workdir={tmp_path / 'run'}",
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 1, result.stderr[-3000:]
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  assert not (tmp_path / "cache").exists()  # no example was generated
  return result.stderr


@pytest.mark.parametrize("override", ["--config.sede=3", "--config.model.overrides.gird=6"])
def test_an_override_naming_no_field_is_one_line(tmp_path, override):
  (line,) = _failed_main(tmp_path, override).strip().splitlines()
  flag = override.partition("=")[0]
  assert line.startswith(f"error: {flag}:") and repr(flag.rpartition(".")[2]) in line
  assert not (tmp_path / "run").exists()


def test_every_model_field_can_be_overridden_from_a_config():
  config = config_files.load("configs/teacher.py:runlocal")
  assert set(config.model.overrides) == set(models.overridable_fields())
  # None keeps the preset's value and is not recorded.
  model, metadata = loop.create_model(config)
  assert model.grid == models.PRESETS["teacher_tiny"]["grid"] and metadata["overrides"] == {}
  config.model.overrides.grid = 6
  config.model.overrides.backbone_width = 1  # an int where a float is due
  model, metadata = loop.create_model(config)
  assert (model.grid, model.backbone_width) == (6, 1.0)
  assert metadata["overrides"] == {"grid": 6, "backbone_width": 1.0}


@pytest.mark.parametrize(
  "override, message",
  [
    ("--config.loss.kind=huber", "loss.kind must be 'mse' or 'mae', got 'huber'"),
    ("--config.model.overrides.backbone=resnet", "backbone must be one of"),
    ("--config.eval_split=train", "eval_split must be 'validation' or 'test'"),
    ("--config.sharding.model_axis=3", "sharding.model_axis=3 does not divide 1 devices"),
  ],
)
def test_a_bad_config_value_stops_the_run_in_one_line_before_any_work(tmp_path, override, message):
  # All used to fail as tracebacks; the first two only once the first step
  # was traced, after the data was made.
  stderr = _failed_main(tmp_path, override)
  assert stderr.strip().splitlines()[-1].startswith(f"error: {message}")
