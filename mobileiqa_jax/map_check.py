"""Does a quality map find damage where it is? The half-damage check.

  python -m mobileiqa_jax.map_check --checkpoint runs/recipe/baseline --count 100

Each case is a clean scene (`data/synthetic/scenes.py`, never a training
image: its own seed stream) with one half, left, right, top or bottom at
random, damaged by one family at a strength drawn from 0.4..1 (clearly
visible, `data/synthetic/distortions.py`): Gaussian blur, luma noise or JPEG.
The damage is applied to the whole scene and only its half pasted in, so the
seam is the only trace of the cut. A case passes when the map's mean over the
damaged half is below its mean over the clean half. The figure per family is
the fraction of cases that pass; a map worth drawing passes at least 90% for
each.

Scenes are made at the scorer's input size (whole-image scorers see them
unresized), or at twice the tile for scorers that tile, so that damage sits
at the pixel scale the network trained on. `--tiled` scores a whole-image
network the tiled way too: scenes of twice its input size, cut into 2 x 2
tiles of it, so that each half has views of its own.
"""

import argparse
import dataclasses
import json
import sys

import numpy as np

from mobileiqa_jax.data.synthetic import distortions, scenes

FAMILIES = {
  "blur": distortions.gaussian_blur,
  "noise": distortions.luma_noise,
  "jpeg": distortions.jpeg,
}
SIDES = ("left", "right", "top", "bottom")
STRENGTHS = (0.4, 1.0)
# Seeds of the check's scenes: far from the synthetic splits' streams.
_SEED_BASE = 7_000_000


def half_mask(side: str, height: int, width: int) -> np.ndarray:
  """(height, width) bool, True on the given half."""
  rows, cols = np.mgrid[:height, :width]
  return {
    "left": cols < width // 2,
    "right": cols >= width - width // 2,
    "top": rows < height // 2,
    "bottom": rows >= height - height // 2,
  }[side]


def half_damaged(
  family: str, seed: int, height: int, width: int
) -> tuple[np.ndarray, np.ndarray, float]:
  """A scene with one half damaged: (uint8 (H, W, 3), damaged-half mask, strength)."""
  rng = np.random.default_rng([_SEED_BASE, seed])
  clean = scenes.render_scene(rng, height, width)
  strength = float(rng.uniform(*STRENGTHS))
  damaged = FAMILIES[family](clean, rng, strength)
  mask = half_mask(SIDES[int(rng.integers(len(SIDES)))], height, width)
  image = np.where(mask[..., None], damaged, clean)
  return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), mask, strength


@dataclasses.dataclass(frozen=True)
class FamilyResult:
  cases: int
  passed: float  # fraction of cases whose damaged half maps lower
  mean_gap: float  # mean of (clean half - damaged half) map means

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


def check(scorer, count: int = 50, size: tuple[int, int] | None = None, seed: int = 0) -> dict:
  """{family: FamilyResult} over `count` half-damaged scenes per family.

  Args:
    scorer: a `scoring.Scorer` that gives maps.
    size: the scenes' (height, width); default as the module docstring says.
  """
  scorer.check_maps()
  if size is None:
    size = tuple(2 * s for s in scorer.size) if scorer.tiled else tuple(scorer.size)
  results = {}
  for f, family in enumerate(FAMILIES):
    cases = [half_damaged(family, seed + 100_000 * f + i, *size) for i in range(count)]
    _, maps = scorer.score([image for image, _, _ in cases], maps=True)
    gaps = []
    for (_, mask, _), quality_map in zip(cases, maps):
      values = quality_map.image()
      gaps.append(float(np.nanmean(values[~mask]) - np.nanmean(values[mask])))
    gaps = np.asarray(gaps)
    results[family] = FamilyResult(count, float(np.mean(gaps > 0)), float(gaps.mean()))
  return results


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
    prog="python -m mobileiqa_jax.map_check",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument("--checkpoint", required=True, help="a workdir, model checkpoint or .tflite")
  parser.add_argument("--count", type=int, default=50, help="scenes per family (default 50)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument(
    "--tiled", action="store_true", help="score scenes of twice the input size in 2x2 tiles"
  )
  parser.add_argument("--json", action="store_true", help="print the results as JSON")
  args = parser.parse_args(argv)
  if args.count < 1:
    parser.error("--count must be at least 1")
  from mobileiqa_jax import scoring  # pylint: disable=g-import-not-at-top

  try:
    scorer = scoring.Scorer.from_checkpoint(args.checkpoint)
    if args.tiled and not scorer.tiled:
      scorer = scorer.in_tiles()
    results = check(scorer, args.count, seed=args.seed)
  except (FileNotFoundError, ValueError) as error:
    print(f"error: {error}", file=sys.stderr)
    return 1
  if args.json:
    print(json.dumps({k: v.to_dict() for k, v in results.items()}, indent=2))
  else:
    print(f"half-damage check of {scorer.description}, seed {args.seed}")
    print(f"{'family':<8} {'cases':>5} {'passed':>7} {'mean gap':>9}")
    for family, result in results.items():
      print(f"{family:<8} {result.cases:>5} {result.passed:>7.0%} {result.mean_gap:>9.4f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
