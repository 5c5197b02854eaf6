"""Throughput of the input pipeline and of the synthetic generator.

  python -m mobileiqa_jax.data.benchmark            # the real figures (~1-2 min)
  python -m mobileiqa_jax.data.benchmark --smoke    # seconds, for CI

Pipeline: UHD-IQA-like JPEGs (3840x2160 by default, written to a temporary
folder and read as a CSV dataset) through the training loader: decode,
bicubic resize to 1231x1907, flips, normalisation, batching, with 2 grain
workers. Generator: `synthetic.source.generate` in this process, at each of
--synthetic_sizes.
"""

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np
from PIL import Image

from mobileiqa_jax import sizes
from mobileiqa_jax.data import config, pipeline
from mobileiqa_jax.data.synthetic import scenes
from mobileiqa_jax.data.synthetic import source as synthetic_source


def _write_jpegs(folder: pathlib.Path, count: int, height: int, width: int) -> pathlib.Path:
  """`count` photo-like JPEGs and a CSV listing them; returns the CSV."""
  lines = ["path,mos"]
  for i in range(count):
    # Rendering at full 4K is slow; a quarter-size scene upscaled still
    # gives the decoder a realistic 4K JPEG to chew on.
    small = scenes.render_scene(np.random.default_rng(i), max(16, height // 4), max(16, width // 4))
    image = Image.fromarray((small * 255).astype(np.uint8)).resize((width, height), Image.BICUBIC)
    image.save(folder / f"{i}.jpg", "JPEG", quality=90)
    lines.append(f"{i}.jpg,{i / max(1, count - 1):.4f}")
  (folder / "set.csv").write_text("\n".join(lines) + "\n")
  return folder / "set.csv"


def pipeline_images_per_second(
  csv_path: pathlib.Path, *, height: int, width: int, workers: int, batch: int, batches: int
) -> float:
  """Images/s of the training loader over a CSV dataset, after one warm-up batch."""
  cfg = config.get_config()
  cfg.name, cfg.csv, cfg.csv_mos_range, cfg.split = "csv", str(csv_path), (0.0, 1.0), "random"
  cfg.test_fraction, cfg.validation_fraction = 0.01, 0.0
  cfg.height, cfg.width, cfg.num_workers = height, width, workers
  loader = pipeline.make_loader(
    cfg, "train", global_batch_size=batch, train=True, seed=0, process_index=0, process_count=1
  )
  iterator = iter(loader)
  for _ in range(max(1, workers)):
    next(iterator)  # worker start-up is not throughput
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  return batches * batch / (time.perf_counter() - start)


def synthetic_images_per_second(height: int, width: int, seconds: float) -> float:
  """Images/s of the synthetic generator in one process."""
  synthetic_source.generate(0, "train", 0, height, width)  # warm caches
  count, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds or count < 2:
    synthetic_source.generate(0, "train", count + 1, height, width)
    count += 1
  return count / (time.perf_counter() - start)


def _parse(argv):
  parser = argparse.ArgumentParser(
    prog="python -m mobileiqa_jax.data.benchmark",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument("--smoke", action="store_true", help="tiny sizes and counts: seconds")
  parser.add_argument("--height", type=int, default=1231, help="pipeline output height")
  parser.add_argument("--width", type=int, default=1907, help="pipeline output width")
  parser.add_argument(
    "--source_size",
    type=sizes.parse_size,
    default=(2160, 3840),
    help="HEIGHTxWIDTH of the JPEGs the pipeline decodes (default 2160x3840)",
  )
  parser.add_argument("--workers", type=int, default=2, help="grain worker processes")
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--num_files", type=int, default=12, help="distinct JPEGs to cycle over")
  parser.add_argument("--batches", type=int, default=12, help="batches timed after warm-up")
  parser.add_argument(
    "--synthetic_sizes",
    type=sizes.parse_size,
    nargs="+",
    default=[(224, 224), (512, 512), (1231, 1907)],
    help="HEIGHTxWIDTH sizes the generator is timed at",
  )
  parser.add_argument(
    "--synthetic_seconds", type=float, default=10.0, help="seconds of generator timing per size"
  )
  return parser.parse_args(argv)


def main(argv=None) -> int:
  args = _parse(argv)
  if args.smoke:
    source_h, source_w, height, width = 96, 160, 48, 80
    num_files, batches, synthetic_sizes, seconds = 4, 2, [(64, 64)], 0.2
  else:
    source_h, source_w = args.source_size
    height, width = args.height, args.width
    num_files, batches = args.num_files, args.batches
    synthetic_sizes, seconds = args.synthetic_sizes, args.synthetic_seconds
  with tempfile.TemporaryDirectory() as folder:
    csv_path = _write_jpegs(pathlib.Path(folder), num_files, source_h, source_w)
    rate = pipeline_images_per_second(
      csv_path,
      height=height,
      width=width,
      workers=args.workers,
      batch=args.batch,
      batches=batches,
    )
  print(
    f"pipeline: {rate:.2f} images/s  ({source_w}x{source_h} JPEG -> {width}x{height}, "
    f"{args.workers} workers, batch {args.batch})"
  )
  for h, w in synthetic_sizes:
    rate = synthetic_images_per_second(h, w, seconds)
    print(f"synthetic generator: {rate:.2f} images/s at {w}x{h} (1 process)")

  return 0


if __name__ == "__main__":
  sys.exit(main())
