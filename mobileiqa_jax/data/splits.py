"""The seeded random train/held-out split the paper uses."""

import numpy as np

TRAIN = "train"
VALIDATION = "validation"
TEST = "test"
SPLITS = (TRAIN, VALIDATION, TEST)


def random_split(num_examples: int, seed: int, train_fraction: float, split: str) -> np.ndarray:
  """The example indices of `split` in a seeded random split.

  The examples are permuted with `seed`; the first round(train_fraction * n)
  are the training set and the rest the held-out set, which serves as both
  'validation' and 'test' (the paper evaluates on one held-out 20%). Indices
  come back sorted so evaluation reads in storage order.

  Args:
    num_examples: the size of the whole dataset.
    seed: the split seed.
    train_fraction: the training share, in (0, 1).
    split: 'train', 'validation' or 'test'.

  Returns:
    Sorted int64 indices into the whole dataset.
  """
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
  if not 0.0 < train_fraction < 1.0:
    raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
  order = np.random.default_rng(seed).permutation(num_examples)
  num_train = int(round(train_fraction * num_examples))
  chosen = order[:num_train] if split == TRAIN else order[num_train:]
  return np.sort(chosen).astype(np.int64)
