"""The training loop's choices that need no training: the selection split, fresh weights."""

import logging

import jax
import numpy as np
import pytest

from configs import default
from mobileiqa_jax import config_files, models
from mobileiqa_jax.data import datasets
from mobileiqa_jax.train import loop


def _config():
  config = default.get_config("runlocal")
  config.data.synthetic.height = config.data.synthetic.width = 32
  return config


def test_every_config_selects_on_validation():
  files = sorted(config_files.REPO_CONFIGS.glob("[!_]*.py"))
  assert {f.stem for f in files} >= {"default", "teacher", "distill", "eval", "export", "recipe"}
  for file in files:
    for dataset in datasets.DATASETS:
      for arg in (dataset, f"{dataset},runlocal"):
        assert config_files.load(f"{file}:{arg}").eval_split == "validation", (file, arg)
  assert loop.check_selection_split(_config()) == "validation"


def test_selecting_on_test_is_explicit_and_warned(caplog):
  config = _config()
  config.eval_split = "test"
  with caplog.at_level(logging.WARNING, logger="mobileiqa_jax"):
    assert loop.check_selection_split(config) == "test"
  assert "optimistic" in caplog.text
  config.eval_split = "train"
  with pytest.raises(ValueError, match="eval_split must be 'validation' or 'test'"):
    loop.check_selection_split(config)


def test_an_empty_validation_split_says_what_to_do():
  config = _config()
  config.data.synthetic.num_validation = 0
  with pytest.raises(ValueError, match="validation split .* is empty.*validation_fraction"):
    loop.check_selection_split(config)


def test_fresh_weights_start_at_the_configured_score():
  config = _config()
  model = models.create("teacher_tiny")
  abstract = models.abstract_variables(model)
  default_start = loop._initial_variables(config, model, abstract)  # pylint: disable=protected-access
  config.init.score = 0.66
  started = loop._initial_variables(config, model, abstract)  # pylint: disable=protected-access
  assert np.all(default_start["params"]["fc_score_3"]["bias"] == 0)
  assert np.all(started["params"]["fc_score_3"]["bias"] == np.float32(0.66))
  # Everything else is the seed's draw, unchanged.
  del default_start["params"]["fc_score_3"], started["params"]["fc_score_3"]
  jax.tree.map(np.testing.assert_array_equal, started, default_start)
