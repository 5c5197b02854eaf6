"""Exports a model checkpoint to a verified TFLite file (+ a JSON report beside it).

  python -m mobileiqa_jax.export --checkpoint ckpt/student --out student.tflite \
      --size 1231x1907 --quantization float16 --input uint8

The checkpoint is a directory written by `python -m mobileiqa_jax.convert` or
by training. The export is refused (exit status 1, no file written) if the
LiteRT model disagrees with JAX on the sample images: a float32 export by more
than --float32-tolerance, a quantised one with an SRCC below --min-srcc.
"""

import argparse
import json
import logging
import sys

from mobileiqa_jax import checkpoints, export, sizes


def _parse(argv):
  parser = argparse.ArgumentParser(
    prog="python -m mobileiqa_jax.export",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument("--checkpoint", required=True, help="model checkpoint directory")
  parser.add_argument(
    "--out", required=True, help="the .tflite to write; the report goes beside it as .json"
  )
  parser.add_argument(
    "--size",
    type=sizes.parse_size,
    default=(1231, 1907),
    help="fixed input HEIGHTxWIDTH (default: 1231x1907, UHD-IQA)",
  )
  parser.add_argument("--quantization", choices=export.QUANTIZATIONS, default="float32")
  parser.add_argument(
    "--input",
    choices=export.INPUT_KINDS,
    default="float32",
    help="float32: ImageNet-normalised input; uint8: raw 0..255 RGB, normalised inside the graph",
  )
  parser.add_argument(
    "--samples",
    type=int,
    default=export.DEFAULT_SAMPLES,
    help="synthetic images the export is verified on",
  )
  parser.add_argument("--seed", type=int, default=0, help="seeds the sample images")
  parser.add_argument("--float32-tolerance", type=float, default=export.DEFAULT_FLOAT32_TOLERANCE)
  parser.add_argument("--min-srcc", type=float, default=export.DEFAULT_MIN_SRCC)
  parser.add_argument("--threads", type=int, default=None, help="LiteRT threads for the check")
  parser.add_argument(
    "--quality-map",
    action="store_true",
    help="also output the quality map's cells (1, M, M), verified like the score",
  )
  return parser.parse_args(argv)


def main(argv=None) -> int:
  logging.basicConfig(level=logging.INFO, format="%(message)s")
  args = _parse(argv)
  try:
    module, variables, metadata = checkpoints.load_model(args.checkpoint)
    height, width = args.size
    report = export.export_tflite(
      module,
      variables,
      args.out,
      height,
      width,
      args.quantization,
      args.input,
      model_name=metadata["model"],
      samples=args.samples,
      seed=args.seed,
      float32_tolerance=args.float32_tolerance,
      min_srcc=args.min_srcc,
      num_threads=args.threads,
      quality_map=args.quality_map,
      metadata=dict(checkpoint=str(args.checkpoint), overrides=metadata.get("overrides", {})),
    )
  except (export.VerificationError, ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  check = report["verification"]
  print(
    f"wrote {args.out} ({report['file']['bytes'] / 2**20:.1f} MiB) and its .json: "
    f"{report['model']} {height}x{width}, {args.quantization}, {args.input} input; "
    f"vs JAX on {check['samples']} images: max|diff| {check['max_abs_diff']:.2e}, "
    f"SRCC {json.dumps(check['srcc'])}"
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
