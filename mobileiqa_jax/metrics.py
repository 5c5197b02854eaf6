"""Correlation metrics of IQA: SRCC, PLCC and KRCC over a whole split."""

import numpy as np
from scipy import stats


def correlations(predictions, labels) -> dict[str, float]:
  """{'srcc', 'plcc', 'krcc', 'sum'} of predictions against labels.

  A constant prediction (as from an untrained model, or a broken export) has
  no defined correlation; it scores 0 rather than NaN or None, so that
  best-checkpoint selection, logs and the export's SRCC check all read one
  number by one rule.
  """
  predictions = np.asarray(predictions, np.float64).ravel()
  labels = np.asarray(labels, np.float64).ravel()
  if predictions.shape != labels.shape:
    raise ValueError(f"{predictions.shape} predictions for {labels.shape} labels")
  if predictions.size < 2 or np.ptp(predictions) == 0 or np.ptp(labels) == 0:
    result = {"srcc": 0.0, "plcc": 0.0, "krcc": 0.0}
  else:
    result = {
      "srcc": float(stats.spearmanr(predictions, labels)[0]),
      "plcc": float(stats.pearsonr(predictions, labels)[0]),
      "krcc": float(stats.kendalltau(predictions, labels)[0]),
    }
  result["sum"] = result["srcc"] + result["plcc"] + result["krcc"]
  return result
