"""The console scripts pyproject.toml installs name real entry points."""

import importlib
import tomllib

from tests.conftest import REPO


def test_console_scripts_name_callables():
  scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
  assert {"mobileiqa", "mobileiqa-predict", "mobileiqa-export", "mobileiqa-convert"} <= set(scripts)
  for name, target in scripts.items():
    module, _, attribute = target.partition(":")
    assert callable(getattr(importlib.import_module(module), attribute, None)), (name, target)
