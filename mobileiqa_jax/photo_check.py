"""Do scores hold on photographs? The damage-ladder check.

  python -m mobileiqa_jax.photo_check --checkpoint runs/quickstart/student photos/*.jpg

Each photo is damaged by one family at each strength of a ladder: 0 (the
photo as it is), 0.2, 0.4, ..., 1. The families are Gaussian blur, luma
noise and JPEG, drawn as the synthetic set draws them
(`data/synthetic/distortions.py`: blur of sigma 0.4 to 4 px, grain of std
0.006 to 0.12, JPEG of quality 90 down to 4), on the photo's own pixels.
Every rung is scored as the scorer scores any photo.

The figure per photo and family is the Spearman correlation between the
strength and minus the score: 1 when every step down the ladder scores
lower, about 0 for a score blind to the damage, -1 for one that ranks it
backwards (a score that does not move at all counts 0). A family's figure
is the mean over the photos. Scores that hold on photographs reach 0.8 for
every family.

The photos are yours: camera photos the network never trained on. The
damage is drawn from the seed, the photo's file name and the family, the
same at every rung, so only the strength changes along a ladder, and a
photo gets the same damage in every run, whatever else is checked with it.

A whole-image network resizes each photo to its input size, and the damage
shrinks with the photo (blur of 4 px on a 2000-px photo is 0.26 px at
128 px), so a small network trained on photo-scale crops sees little of it.
`--tiled` scores such a network as a crop-trained one scores photos: tiles
of its input size at the photo's resolution (at most `--max-tiles`, spread
over the photo), their mean the score.
"""

import argparse
import dataclasses
import json
import pathlib
import sys
import zlib

import numpy as np
from scipy import stats

from mobileiqa_jax.data.synthetic import distortions

FAMILIES = {
  "blur": distortions.gaussian_blur,
  "noise": distortions.luma_noise,
  "jpeg": distortions.jpeg,
}
LADDER = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
# Seeds of the check's damage: far from the synthetic splits' streams.
_SEED_BASE = 8_000_000


def photo_key(name) -> int:
  """A number from a photo's file name (not its folder), which its damage
  is drawn from: the same photo gets the same damage wherever it lies and
  whatever else is checked beside it."""
  return zlib.crc32(pathlib.PurePath(str(name)).name.encode())


def ladder(photo: np.ndarray, family: str, seed: int = 0, key: int = 0) -> np.ndarray:
  """(len(LADDER), H, W, 3) uint8: `photo` (uint8 RGB) at each strength of
  LADDER, the first rung untouched; the damage is drawn from `seed` and the
  photo's `key`."""
  image = photo.astype(np.float32) / 255.0
  # The same draws at every rung (the grain's pattern, JPEG's chroma
  # subsampling), so that only the strength changes along the ladder.
  draws = [_SEED_BASE, seed, key, list(FAMILIES).index(family)]
  rungs = [photo]
  for strength in LADDER[1:]:
    rng = np.random.default_rng(draws)
    damaged = FAMILIES[family](image, rng, strength)
    rungs.append((np.clip(damaged, 0, 1) * 255 + 0.5).astype(np.uint8))
  return np.stack(rungs)


def ranking(scores) -> float:
  """Spearman correlation of LADDER's strengths with minus `scores`; 0 for
  scores that do not move."""
  scores = np.asarray(scores, np.float64)
  if np.ptp(scores) == 0:
    return 0.0
  return float(stats.spearmanr(LADDER, -scores).statistic)


@dataclasses.dataclass(frozen=True)
class PhotoResult:
  photo: str
  family: str
  srcc: float  # `ranking` of the photo's ladder
  scores: tuple[float, ...]  # per rung, from untouched to strength 1

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


def check(scorer, photos, seed: int = 0, on_error=None) -> list[PhotoResult]:
  """A PhotoResult per photo and family.

  Args:
    scorer: a `scoring.Scorer`.
    photos: (name, photo) pairs; a photo is a uint8 (H, W, 3) RGB array or
      anything `scoring.to_rgb_array` reads (a path), decoded when its turn
      comes, so that a folder of full-size photos is never all in memory.
    seed: the damage's seed; each photo's is drawn from it and `photo_key(name)`.
    on_error: called as on_error(name, error) for a photo that cannot be
      read, which is then skipped; without it, the error propagates.
  """
  from mobileiqa_jax import scoring  # pylint: disable=g-import-not-at-top

  results = []
  for name, photo in photos:
    try:
      photo = scoring.to_rgb_array(photo)
    except scoring.INPUT_ERRORS as error:
      if on_error is None:
        raise
      on_error(name, error)
      continue
    for family in FAMILIES:
      scores = scorer.score(list(ladder(photo, family, seed, photo_key(name))))
      results.append(PhotoResult(name, family, ranking(scores), tuple(map(float, scores))))
  return results


def summarize(results: list[PhotoResult]) -> dict:
  """{family: {"mean", "min", "photos"}} of the per-photo figures."""
  summary = {}
  for family in FAMILIES:
    values = [r.srcc for r in results if r.family == family]
    if values:
      summary[family] = {
        "mean": float(np.mean(values)),
        "min": float(np.min(values)),
        "photos": len(values),
      }
  return summary


def format_table(results: list[PhotoResult], summary: dict) -> str:
  names = list(dict.fromkeys(r.photo for r in results))
  width = max([len(n) for n in names] + [6])
  figure = {(r.photo, r.family): r.srcc for r in results}
  lines = [f"{'photo':<{width}}" + "".join(f"{f:>8}" for f in FAMILIES)]
  for name in names:
    lines.append(f"{name:<{width}}" + "".join(f"{figure[name, f]:>8.2f}" for f in FAMILIES))
  for row in ("mean", "min"):
    lines.append(f"{row:<{width}}" + "".join(f"{summary[f][row]:>8.2f}" for f in FAMILIES))
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
    prog="python -m mobileiqa_jax.photo_check",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument("--checkpoint", required=True, help="a workdir, model checkpoint or .tflite")
  parser.add_argument("photos", nargs="+", help="photo files, folders or globs")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument(
    "--tiled", action="store_true", help="score in tiles of the input size at photo resolution"
  )
  parser.add_argument(
    "--max-tiles", type=int, default=16, help="tiles per rung with --tiled (default 16; 0: all)"
  )
  parser.add_argument("--json", action="store_true", help="print the results as JSON")
  args = parser.parse_args(argv)
  from mobileiqa_jax import predict, scoring  # pylint: disable=g-import-not-at-top

  try:
    scorer = scoring.Scorer.from_checkpoint(args.checkpoint)
    if args.tiled and not scorer.tiled:
      scorer = scorer.in_tiles(args.max_tiles)
  except (FileNotFoundError, ValueError) as error:
    print(f"error: {error}", file=sys.stderr)
    return 1
  paths = predict.find_images(args.photos)
  skip = lambda path, error: print(f"skipped {path}: {error}", file=sys.stderr)
  results = check(scorer, [(path, path) for path in paths], seed=args.seed, on_error=skip)
  if not results:
    print("error: no readable photo among the paths given", file=sys.stderr)
    return 1
  summary = summarize(results)
  if args.json:
    print(json.dumps({"summary": summary, "photos": [r.to_dict() for r in results]}, indent=2))
  else:
    print(f"damage-ladder check of {scorer.description}, strengths {LADDER}, seed {args.seed}")
    print(format_table(results, summary))
  return 0


if __name__ == "__main__":
  sys.exit(main())
