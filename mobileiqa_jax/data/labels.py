"""Checking MOS values against their stated range and scaling them to 0..1."""

from collections.abc import Sequence

import numpy as np

from mobileiqa_jax import errors


class LabelRangeError(errors.InvalidInput):
  """A MOS value outside the range its dataset states."""


def check_range(
  values: Sequence[float], low: float, high: float, rows: Sequence[str]
) -> np.ndarray:
  """Returns `values` as float64, failing on the first one outside [low, high].

  Args:
    values: the raw MOS values.
    low, high: the stated range of the scale.
    rows: for each value, a description of where it came from (file and row),
      which the error names.

  Raises:
    LabelRangeError: a value is outside the range or not a finite number.
  """
  array = np.asarray(values, np.float64)
  for value, row in zip(array, rows):
    if not np.isfinite(value) or value < low or value > high:
      raise LabelRangeError(f"{row}: MOS {value:g} is outside the stated range [{low:g}, {high:g}]")
  return array


def min_max_scale(values: np.ndarray) -> np.ndarray:
  """Scales values linearly so the smallest is 0 and the largest 1.

  This is how the paper treats KonIQ-10k, LIVE Challenge, SPAQ and BID. Unlike
  the reference code, which scales each split with its own extremes, the
  extremes here are the whole dataset's, so a label means the same in every
  split.
  """
  low, high = float(np.min(values)), float(np.max(values))
  if high == low:
    return np.zeros_like(values, np.float64)
  return (values - low) / (high - low)


def range_scale(values: np.ndarray, low: float, high: float) -> np.ndarray:
  """Scales values linearly from [low, high] to [0, 1]."""
  if high <= low:
    raise ValueError(f"empty MOS range [{low}, {high}]")
  return (np.asarray(values, np.float64) - low) / (high - low)
