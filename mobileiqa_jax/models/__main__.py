"""Prints parameter counts of the presets: `python -m mobileiqa_jax.models [NAME ...]`."""

import argparse
import sys

from mobileiqa_jax import models
from mobileiqa_jax.models import mobileiqa


def parameter_counts(name: str) -> dict[str, int]:
  """{'backbone': n, 'heads': n, 'total': n} parameters of a preset (no compute)."""
  model = models.create(name)
  params = models.abstract_variables(model)["params"]
  backbone = mobileiqa.BACKBONES[model.backbone][1]
  total = models.count_params(params)
  in_backbone = models.count_params(params[backbone])
  return {"backbone": in_backbone, "heads": total - in_backbone, "total": total}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m mobileiqa_jax.models", description=__doc__)
  parser.add_argument(
    "names", nargs="*", default=["student", "teacher"], choices=sorted(models.PRESETS)
  )
  names = parser.parse_args(argv).names
  print(f"{'model':<14}{'backbone':>12}{'heads':>12}{'total':>12}")
  for name in names:
    c = parameter_counts(name)
    print(
      f"{name:<14}{c['backbone'] / 1e6:>11.2f}M{c['heads'] / 1e6:>11.2f}M{c['total'] / 1e6:>11.2f}M"
    )
  return 0


if __name__ == "__main__":
  sys.exit(main())
