"""The seeded random train/validation/test split."""

import numpy as np
import pytest

from mobileiqa_jax.data import splits


@pytest.mark.parametrize("num_examples", [10, 101, 1162, 10073])
def test_test_part_is_the_papers_held_out_20_percent(num_examples):
  # The paper's split: permute with the seed, train on the first 80%, test
  # on the rest. Validation comes out of the training part, so test figures
  # stay comparable with it at any validation share.
  order = np.random.default_rng(7).permutation(num_examples)
  paper_test = np.sort(order[int(round(0.8 * num_examples)) :])
  parts = {
    s: splits.random_split(num_examples, 7, s, test_fraction=0.2, validation_fraction=0.1)
    for s in splits.SPLITS
  }
  np.testing.assert_array_equal(parts["test"], paper_test)
  assert len(parts["validation"]) == round(0.1 * num_examples)
  everything = np.concatenate(list(parts.values()))
  np.testing.assert_array_equal(np.sort(everything), np.arange(num_examples))
  no_validation = splits.random_split(num_examples, 7, "test", 0.2, 0.0)
  np.testing.assert_array_equal(no_validation, paper_test)
  assert len(splits.random_split(num_examples, 7, "validation", 0.2, 0.0)) == 0


def test_bad_fractions_name_the_setting():
  with pytest.raises(ValueError, match="data.test_fraction"):
    splits.random_split(10, 0, "train", 0.0, 0.1)
  with pytest.raises(ValueError, match="data.validation_fraction"):
    splits.random_split(10, 0, "train", 0.5, 0.5)
  with pytest.raises(ValueError, match="split must be one of"):
    splits.random_split(10, 0, "val", 0.2, 0.1)
