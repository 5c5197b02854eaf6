"""The seeded random train/validation/test split of sets without an official one."""

import numpy as np

TRAIN = "train"
VALIDATION = "validation"
TEST = "test"
SPLITS = (TRAIN, VALIDATION, TEST)


def random_split(
  num_examples: int, seed: int, split: str, test_fraction: float, validation_fraction: float
) -> np.ndarray:
  """The example indices of `split` in a seeded random split.

  The examples are permuted with `seed` and cut, in this order, into
  train | validation | test. The test part is the paper's held-out 20%
  (with test_fraction=0.2: the same examples at any validation_fraction, so
  test figures stay comparable with the paper's protocol); validation is
  taken out of the paper's training 80%, so that the checkpoint reported on
  test is not the one chosen on it. validation_fraction=0 leaves validation
  empty (the original's protocol, which selects on test).

  Args:
    num_examples: the size of the whole dataset.
    seed: the split seed.
    split: 'train', 'validation' or 'test'.
    test_fraction: the test share of the whole set, in (0, 1).
    validation_fraction: the validation share of the whole set, in [0, 1).

  Returns:
    Sorted int64 indices into the whole dataset (evaluation reads in storage order).
  """
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
  if not 0.0 < test_fraction < 1.0:
    raise ValueError(f"data.test_fraction must be in (0, 1), got {test_fraction}")
  if not 0.0 <= validation_fraction < 1.0 - test_fraction:
    raise ValueError(
      f"data.validation_fraction must be in [0, 1 - test_fraction = {1 - test_fraction:g}), "
      f"got {validation_fraction}"
    )
  order = np.random.default_rng(seed).permutation(num_examples)
  num_test = int(round(test_fraction * num_examples))
  num_validation = int(round(validation_fraction * num_examples))
  num_train = num_examples - num_test - num_validation
  chosen = {
    TRAIN: order[:num_train],
    VALIDATION: order[num_train : num_train + num_validation],
    TEST: order[num_train + num_validation :],
  }[split]
  return np.sort(chosen).astype(np.int64)
